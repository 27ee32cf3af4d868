"""`choreo dlq list|retry` and `choreo reset`: the operators' tools for repairing a saga."""

from __future__ import annotations

import json

import typer
from rich import box
from rich.table import Table

from choreo import bootstrap
from choreo.cli.arguments import kafka_time, offset_option, partition_option
from choreo.cli.context import cli_settings
from choreo.cli.errors import fail, one_sentence_errors
from choreo.cli.markup import plain
from choreo.cli.ops_cmd import console
from choreo.domain import installation

dlq_app = typer.Typer(help="List dead letters and send them back once their cause is fixed.",
                      no_args_is_help=True)


# -- dlq ------------------------------------------------------------------------------------------


@dlq_app.command("list")
@one_sentence_errors
def dlq_list(
    service: str = typer.Argument(..., help="Service whose DLQ to list, e.g. orders."),
    partition: int = typer.Option(
        None, "--partition", "-p", help="Only this DLQ partition.", callback=partition_option()
    ),
    offset: int = typer.Option(
        None, "--offset", help="Only the dead letter at this offset.", callback=offset_option()
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per dead letter."),
) -> None:
    """List SERVICE's dead letters with their error headers and whether they were retried.

    Example: choreo dlq list orders --json | jq '.headers["dlq.error.message"]'
    """
    from choreo.kafka.topic_names import topic_partitions
    from choreo.ops.dlq_retry import dead_letters
    from choreo.ops.records import as_json as record_json
    from choreo.ops.records import short_time

    svc = installation().service(service)
    settings = cli_settings()
    topic_partitions(settings, [svc.dlq_topic])
    letters = dead_letters(settings, svc.dlq_topic, bootstrap.build_codec(settings), partition, offset)
    if as_json:
        for d in letters:
            typer.echo(json.dumps({**record_json(d.record, svc.dlq_topic), "retried": d.retried},
                                  ensure_ascii=False))
        return
    t = Table("p", "offset", "time (UTC)", "type", "error", "message", "source", "retried",
              box=box.SIMPLE_HEAD)
    for d in letters:
        # Type, error and source come from the dead letter's own headers: escaped, not markup.
        from_log = (
            d.record.event_type.rsplit(".", 1)[-1], d.error_class, d.error_message,
            f"{d.header('dlq.source.topic')}[{d.header('dlq.source.partition')}]@"
            f"{d.header('dlq.source.offset')}",
        )
        t.add_row(
            str(d.record.partition), str(d.record.offset), short_time(d.record.timestamp_ms),
            *map(plain, from_log), "yes" if d.retried else "no",
        )
    console().print(t)
    typer.echo(f"{len(letters)} dead letter(s), {sum(not d.retried for d in letters)} not retried", err=True)


@dlq_app.command("retry")
@one_sentence_errors
def dlq_retry(
    service: str = typer.Argument(..., help="Service whose dead letters to send back."),
    partition: int = typer.Option(
        None, "--partition", "-p", help="Only this DLQ partition.", callback=partition_option()
    ),
    offset: int = typer.Option(
        None, "--offset", help="Only the dead letter at this offset.", callback=offset_option()
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be sent."),
) -> None:
    """Send SERVICE's dead letters back to SERVICE alone, each at most once.

    A letter goes to SERVICE's retry topic (<service>.retry, read by SERVICE
    alone), on the partition its key belongs to (murmur2: for a record that
    was on the right partition, the one it came from; a misrouted record
    lands where its key's state is); SERVICE decides it as if it came from
    that input topic again. The source topic, which other services may read,
    is never written. Copies of SERVICE's own records, truncated copies and
    letters without a key cannot be retried.
    Fix the cause first (a schema, a bug); a letter that fails again becomes a new dead letter.
    Retried letters are recorded in <service>.dlq.retried in the same transaction as the resend.
    Example: choreo dlq retry orders --partition 3 --offset 12
    """
    from choreo.kafka.topic_names import topic_partitions
    from choreo.ops.dlq_retry import retry

    svc = installation().service(service)
    settings = cli_settings()
    topic_partitions(settings, [svc.dlq_topic])
    report = retry(settings, svc, bootstrap.build_codec(settings),
                   partition=partition, offset=offset, dry_run=dry_run)
    if offset is not None and len(report.refused) == 1 and not report.sent:
        fail(report.refused[0][1])
    verb = "would send" if dry_run else "sent"
    for d, target in zip(report.sent, report.sent_to, strict=True):
        topic, p, o = d.source
        typer.echo(f"{verb} {svc.dlq_topic}[{d.record.partition}]@{d.record.offset} "
                   f"({d.record.event_type.rsplit('.', 1)[-1]}, from {topic}[{p}]@{o}) back to "
                   f"{svc.name} through {target.topic}[{target.partition}]")
    for d in report.already_retried:
        typer.echo(f"skipped {svc.dlq_topic}[{d.record.partition}]@{d.record.offset}: already retried")
    for _d, why in report.refused:
        typer.echo(f"refused {why}")
    typer.echo(f"{len(report.sent)} {verb}, {len(report.already_retried)} already retried, "
               f"{len(report.refused)} cannot be retried")
    if offset is not None and not report.sent and not report.already_retried:
        fail(f"no dead letter at offset {offset} of {settings.topic(svc.dlq_topic)}")


# -- reset ----------------------------------------------------------------------------------------


@one_sentence_errors
def reset(
    service: str = typer.Argument(..., help="Service whose consumer group to move."),
    to_datetime: str = typer.Option(
        None, "--to-datetime",
        help="ISO time from 1970 on, UTC unless it has a zone: the first offset at or after it.",
    ),
    to_earliest: bool = typer.Option(False, "--to-earliest", help="The start of every input partition."),
    execute: bool = typer.Option(False, "--execute", help="Apply; without it nothing changes (dry run)."),
) -> None:
    """Move SERVICE's input offsets to a time or the earliest; only while no instance runs.

    Prints per input partition what the service will process again. Local state is a fold of the
    service's own topic, not of its inputs, so it is not reset: pair this with `choreo rebuild`.
    Example: choreo reset packaging --to-datetime 2026-11-21T10:00 --execute
    """
    from choreo.kafka import clients
    from choreo.kafka.topic_names import topic_partitions
    from choreo.ops.offsets_reset import execute as apply_moves
    from choreo.ops.offsets_reset import plan, require_empty_group

    svc = installation().service(service)
    if (to_datetime is None) == (not to_earliest):
        fail("say where to move: --to-datetime T or --to-earliest (one of them)")
    # A bad time (or one before 1970, which Kafka would read as "the end") fails before Kafka is asked.
    at = kafka_time(to_datetime, "--to-datetime", "use --to-earliest") if to_datetime else None
    settings = cli_settings()
    topic_partitions(settings, list(svc.inputs))
    require_empty_group(clients.admin_client(settings), settings.group(svc.name))
    moves = plan(settings, svc, to_time=at, to_earliest=to_earliest)
    t = Table("topic", "p", "committed", "target", "end", "reprocess", "skip", box=box.SIMPLE_HEAD,
              title=plain(f"group {settings.group(svc.name)} -> {to_datetime or 'earliest'}"),
              title_justify="left")
    shown = [m for m in moves if m.high > m.low or m.committed is not None]
    for m in shown:
        t.add_row(m.topic, str(m.partition), "-" if m.committed is None else str(m.committed),
                  str(m.target), str(m.high), str(m.reprocessed), str(m.skipped))
    console().print(t)
    if len(shown) < len(moves):
        typer.echo(f"({len(moves) - len(shown)} empty partition(s) not shown; they move too)")
    total = sum(m.reprocessed for m in moves)
    typer.echo(f"{svc.name} will process {total} offset(s) again (transaction markers included)")
    if not execute:
        typer.echo("dry run: nothing changed; add --execute to apply, then `choreo rebuild "
                   f"{svc.name}` before starting the workers")
        return
    apply_moves(settings, svc, moves)
    typer.echo(f"moved {len(moves)} partition(s) of group {settings.group(svc.name)}")
