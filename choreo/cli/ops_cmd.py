"""`choreo replay|trace|state`: the operators' tools for looking at a saga's log and state."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from choreo import bootstrap
from choreo.cli.arguments import partition_option, start_position
from choreo.cli.context import cli_settings
from choreo.cli.envelope_options import key_flags, key_name, named, saga_flags
from choreo.cli.errors import error_sentence, fail, one_sentence_errors
from choreo.cli.markup import plain
from choreo.domain import installation
from choreo.kafka.topics import common_partition_count
from choreo.ops.log_reader import LogRecord


def console() -> Console:
    # Wide enough for the event column when piped (rich would assume 80 columns unless COLUMNS says).
    default = Console()
    return default if default.is_terminal or os.environ.get("COLUMNS") else Console(width=160)


# -- replay ---------------------------------------------------------------------------------------


def _record_table(first: bool, with_topic: bool = False) -> Table:
    table = Table(box=box.SIMPLE_HEAD if first else None, show_header=first, pad_edge=False)
    if with_topic:
        table.add_column("topic", width=16, no_wrap=True)
    for name, width in (("p", 2), ("offset", 7), ("timestamp (UTC)", 23), ("type", 22), ("key", 10)):
        justify = "right" if name in ("p", "offset") else "left"
        # The type may wrap: a lying header shows as `PlaceOrder (header says CancelOrder)`.
        table.add_column(name, width=width, no_wrap=name != "type", justify=justify)  # type: ignore[arg-type]
    table.add_column("event", overflow="fold", min_width=30)
    return table


def _row(record: LogRecord) -> list[str]:
    # Every cell but the numbers comes from the log, so each is escaped before rich reads markup.
    from choreo.ops.records import saga_id_of, short_time, summary

    body = record.decode_error and f"[red]undecodable: {plain(record.decode_error)}[/]"
    if not body:
        saga = saga_id_of(record)
        field = installation().envelope.saga_field
        body = plain((f"{field}={saga} " if saga else "") + summary(record.event, limit=400))
    key = "" if record.key is None else record.key.decode(errors="replace")
    return [str(record.partition), str(record.offset), short_time(record.timestamp_ms),
            plain(record.type_label), plain(key), body]


def _print_table(records: Iterable[LogRecord], chunk: int) -> int:
    out, rows, n = console(), [], 0
    for record in records:
        rows.append(_row(record))
        n += 1
        if len(rows) >= chunk:
            table = _record_table(first=n == len(rows))
            for r in rows:
                table.add_row(*r)
            out.print(table)
            rows = []
    if rows:
        table = _record_table(first=n == len(rows))
        for r in rows:
            table.add_row(*r)
        out.print(table)
    return n


@one_sentence_errors
def replay(
    topic: str = typer.Argument(
        ..., help="Logical topic, e.g. orders or packaging.dlq (the prefix is added); with "
        "--dry-run a service, e.g. packaging.",
    ),
    start: str = typer.Option(
        None, "--from",
        help="Where to start on each partition: an offset (1200), an ISO time (2026-11-21T10:00, "
        "UTC unless it has a zone; from 1970 on) or `beginning` (default). With --dry-run a time "
        "or `beginning`.",
    ),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep reading new records until Ctrl-C."),
    saga: str = typer.Option(
        None, *saga_flags(), help="Only this saga (its saga id; the alias is the domain's name for it)."
    ),
    key: str = typer.Option(
        None, *key_flags(),
        help="Only records of this partition key (the alias is the domain's name for it); reads "
        "only the key's partition.",
    ),
    event_type: str = typer.Option(None, "--type", help="Only this type, e.g. OrderFailed."),
    partition: list[int] = typer.Option(
        None, "--partition", "-p", help="Only these partitions.", callback=partition_option()
    ),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per line, for jq (with --dry-run: one document)."
    ),
    uncommitted: bool = typer.Option(
        False, "--uncommitted", help="Read uncommitted: also records of aborted transactions."
    ),
    limit: int = typer.Option(None, "--max", "-n", min=1, help="Stop after this many records."),
    dry_run: bool = typer.Option(
        False, "--dry-run",
        help="Decide the service's recorded inputs again and compare with what it emitted; "
        "never writes to Kafka. Exit 0: no difference, 1: differences, 2: could not run.",
    ),
    code: str = typer.Option(
        None, "--code", metavar="MODULE[:ATTR]",
        help="With --dry-run: the version to try, a module holding a Service of the same name "
        "(or module:attribute naming it), importable from the current folder; default: the "
        "installed code.",
    ),
) -> None:
    """Print TOPIC's records decoded, from the beginning, an offset or a time, until now (or --follow).

    Without --follow each partition is printed in offset order, partitions one after another.
    JSON keys: topic, partition, offset, timestamp, type, header_says, key, headers, event, error.
    The type is the decoded record's; when the event_type header names another one, the table
    shows `PlaceOrder (header says CancelOrder)` and header_says holds the header's claim.

    Example: choreo replay orders --from 2026-11-21T10:00 --type OrderFailed --json | jq .event.reason

    With --dry-run, TOPIC is a service: its inputs (from --from on, else from the beginning) are
    decided again, on the state its own earlier events give, by the installed code or by --code,
    and each answer is compared with the events it actually emitted for that input; then the
    resulting state with the state rebuilt from its log. Nothing is written to Kafka.

    Example: choreo replay packaging --dry-run --from 2026-11-21T10:00 --code packaging_v2
    """
    if dry_run:
        unsupported = [name for name, given in (
            ("--follow", follow), (named(saga_flags()), saga), (named(key_flags()), key),
            ("--type", event_type),
            ("--uncommitted", uncommitted), ("--max", limit is not None)) if given]
        if unsupported:
            fail(f"{', '.join(unsupported)} cannot be used with --dry-run", code=2)
        _dry_run(topic, start, code, partition or None, as_json)
        return
    if code is not None:
        fail("--code names the version for a dry run; add --dry-run", code=2)
    from itertools import islice

    from choreo.kafka.topic_names import topic_partitions
    from choreo.ops.records import RecordFilter, json_line
    from choreo.ops.records import replay as read_replay

    start_at = start_position(start)  # a bad --from fails before any broker is asked
    settings = cli_settings()
    physical, partitions = next(iter(topic_partitions(settings, [topic]).items()))
    outside = sorted(p for p in partition or () if not 0 <= p < partitions)
    if outside:
        fail(f"{physical} has partitions 0 to {partitions - 1}, not {', '.join(map(str, outside))}")
    records: Iterable[LogRecord] = read_replay(
        settings, physical, partitions, bootstrap.build_codec(settings),
        start=start_at, where=RecordFilter(saga, key, event_type),
        only_partitions=partition or None, follow=follow, committed_only=not uncommitted,
    )
    if limit is not None:
        records = islice(records, limit)
    if as_json:
        for record in records:
            typer.echo(json_line(record, topic))
        return
    n = _print_table(records, chunk=1 if follow else 100)
    typer.echo(f"{n} record(s) of {physical}", err=True)


def _dry_run(service: str, start: str | None, code: str | None, partitions: list[int] | None,
             as_json: bool) -> None:
    """`replay SERVICE --dry-run`: exit 0 without difference, 1 with, 2 when it cannot run."""
    from confluent_kafka import KafkaException

    from choreo.exceptions import ChoreoError
    from choreo.kafka.topic_names import topic_partitions
    from choreo.ops.dry_run_log import dry_run
    from choreo.ops.dry_run_report import json_text, text_lines
    from choreo.ops.service_version import load_version

    try:
        at = start_position(start)
        if at.offset is not None:
            fail(f"--from {start!r}: a dry run starts at a time (or `beginning`), not at an offset, "
                 "since the inputs of several topics are replayed", code=2)
        installed = installation().service(service)
        version = installed if code is None else load_version(code, service)
        settings = cli_settings()
        # One sentence for a stack that does not answer or a topic that is missing, before reading.
        counts = topic_partitions(settings, [version.own_topic, *version.inputs])
        common_partition_count(counts, f"the partitions of {service} cannot be replayed one by one")
        report = dry_run(settings, version, bootstrap.build_codec(settings),
                         code="installed" if code is None else code, start=at.time,
                         partitions=partitions)
    except (ChoreoError, KafkaException) as e:
        fail(error_sentence(e), code=2)  # 2, not 1: for a dry run 1 means "differences"
    envelope = installation().envelope
    if as_json:
        typer.echo(json_text(report, envelope))
    else:
        for line in text_lines(report, envelope):
            typer.echo(line)
    if report.differs:
        raise typer.Exit(1)


# -- trace ----------------------------------------------------------------------------------------


@one_sentence_errors
def trace(
    saga_id: str = typer.Argument(..., help="The saga's id (the domain's saga id field, e.g. an order id)."),
    key: str = typer.Option(
        None, *key_flags(),
        help="The saga's partition key (the alias is the domain's name for it). Without it the key "
        "is looked up first by reading the services' own topics from the beginning (headers only, "
        "every partition) until the saga's first event: on a long log that is a full scan, so "
        "pass the key when you know it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document: outcome and steps."),
) -> None:
    """Show one saga across every topic in time order: who emitted what in reaction to what.

    Reads only the partition the key maps to (murmur2 of the key, as the producers partition).
    Example: choreo trace 5b0c6f0e-1d2a-4c1e-9f7a-3f0d6c1a2b3c --key north
    """
    from choreo.kafka.topic_names import known_topics, topic_partitions
    from choreo.ops.trace import find_key, trace_saga

    settings = cli_settings()
    services = list(installation().services)
    logical = known_topics()
    counts = topic_partitions(settings, logical)
    common_partition_count(counts, "a saga's partition is ambiguous")
    if key is None:
        key = find_key(settings, services, saga_id)
    result = trace_saga(
        settings, services, bootstrap.build_codec(settings), saga_id, key,
        {t: counts[settings.topic(t)] for t in logical},
    )
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
        return
    from choreo.ops.records import short_time, summary

    table = Table(
        title=plain(f"{saga_id} at {key_name()} {key} (partition {result.partition} of {result.partitions}): "
                    f"{result.outcome or 'not ended yet'}"),
        box=box.SIMPLE_HEAD, title_justify="left",
    )
    for col in ("#", "time (UTC)", "emitter", "topic@offset", "event", "caused by", "role", "details"):
        table.add_column(col, overflow="fold", no_wrap=col != "details")
    names = {s.number: s.record.type_label for s in result.steps}
    for s in result.steps:
        cause = f"#{s.cause} {names[s.cause]}" if s.cause else ""
        details = s.record.decode_error or summary(s.record.event, limit=200)
        cells = (s.emitter, f"{s.logical_topic}@{s.record.offset}", names[s.number], cause,
                 s.role or "", details)
        table.add_row(str(s.number), short_time(s.record.timestamp_ms)[11:], *map(plain, cells))
    console().print(table)


# -- sagas in flight --------------------------------------------------------------------------------


@one_sentence_errors
def sagas(
    stuck: bool = typer.Option(
        False, "--stuck", help="Only sagas in flight for longer than --older-than.",
    ),
    older_than: float = typer.Option(
        60.0, "--older-than", min=0.0, help="Seconds, with --stuck (default 60).",
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document per saga, one per line."),
) -> None:
    """List the sagas in flight (not ended), oldest first, and who they wait for.

    For each: its age, its last event, and the services that have not read one of its events
    yet (they owe it the next step), with their lag on that partition and whether any instance
    of them is running. A saga that every subscriber has read waits for something else (a
    timer, or a service that decided nothing). Reads every service's own topic from the
    beginning, like `audit`.

    Example: choreo sagas --stuck --older-than 120
    """
    import time

    from choreo.ops.stuck import sagas_in_flight, waiting_for

    settings = cli_settings()
    now_ms = int(time.time() * 1000)
    found = sagas_in_flight(settings, installation(), bootstrap.build_codec(settings),
                            older_than if stuck else 0.0, now_ms)
    if as_json:
        for saga in found:
            typer.echo(json.dumps(saga.as_json(now_ms), ensure_ascii=False))
        return
    table = Table(
        title=plain(f"{len(found)} saga(s) in flight" + (f" for over {older_than:g} s" if stuck else "")),
        box=box.SIMPLE_HEAD, title_justify="left",
    )
    for col in ("saga", "key", "age (s)", "last event", "waiting for"):
        table.add_column(col, overflow="fold")
    for saga in found:
        table.add_row(*map(plain, (saga.saga_id, saga.key or "", f"{saga.age_s(now_ms):.0f}",
                                   f"{saga.last_event} ({saga.last_topic})", waiting_for(saga.owed_by))))
    console().print(table)


# -- state ----------------------------------------------------------------------------------------


@one_sentence_errors
def state(
    service: str = typer.Argument(..., help="Service whose local state to show, e.g. packaging."),
    key: str = typer.Option(
        None, *key_flags(),
        help="Only documents of this partition key: keys whose first part it is, or documents "
        "whose field of the domain's key name holds it.",
    ),
    where_fields: list[str] = typer.Option(
        [], "--where",
        help="FIELD=VALUE: only documents whose top-level FIELD is VALUE, or whose key has VALUE as a "
        "/-separated part (repeatable; all must match).",
    ),
    table_name: str = typer.Option(None, "--table", help="Only this table, e.g. stock."),
    show_hash: bool = typer.Option(
        False, "--hash", help="Print documents, checkpoint and state hash per partition."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per document."),
) -> None:
    """Show SERVICE's local state (the SQLite stores of this machine) as a table.

    The hash is the one `choreo rebuild --verify` compares: SHA-256 of the canonical dump.
    Example: choreo state packaging --key north --where sku=SKU-0001
    """
    from choreo.ops.state_view import DocumentFilter, documents, summaries

    installation().service(service)  # an unknown name fails here, in one sentence
    settings = cli_settings()
    if show_hash:
        rows = summaries(settings, service)
        if as_json:
            for r in rows:
                typer.echo(json.dumps({"partition": r.partition, "documents": r.documents,
                                       "checkpoint": r.checkpoint, "hash": r.state_hash}))
            return
        t = Table("partition", "documents", "checkpoint", "state hash", box=box.SIMPLE_HEAD)
        for r in rows:
            t.add_row(str(r.partition), str(r.documents), str(r.checkpoint), plain(r.state_hash))
        console().print(t)
        return
    where = DocumentFilter(key=key, key_field=key_name(), table=table_name,
                           fields=tuple(_field_value(w) for w in where_fields))
    docs = list(documents(settings, service, where))
    if as_json:
        for d in docs:
            typer.echo(json.dumps({"partition": d.partition, "table": d.table, "key": d.key,
                                   "value": d.value}, sort_keys=True))
        return
    t = Table("p", "table", "key", box=box.SIMPLE_HEAD)
    t.add_column("value", overflow="fold")  # compact JSON has no spaces to wrap at
    for d in docs:
        compact = json.dumps(d.value, sort_keys=True, separators=(",", ":"))
        t.add_row(str(d.partition), plain(d.table), plain(d.key), plain(compact))
    console().print(t)
    typer.echo(f"{len(docs)} document(s)", err=True)


def _field_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        fail(f"--where {text!r} is not FIELD=VALUE, e.g. --where sku=SKU-0001")
    return name.strip(), value
