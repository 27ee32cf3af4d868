"""`choreo rebuild`: a service's local state replayed from its own topic, or checked against it."""

from __future__ import annotations

import typer

from choreo import bootstrap
from choreo.cli.context import cli_settings
from choreo.cli.errors import fail, one_sentence_errors
from choreo.domain import installation


@one_sentence_errors
def rebuild(
    service: str = typer.Argument(..., help="Service whose state to rebuild."),
    partition: list[int] = typer.Option(
        None, "--partition", "-p",
        help="Only these partitions (repeat the option for several; each must exist).",
    ),
    verify: bool = typer.Option(
        False, "--verify",
        help="Do not replace anything: rebuild up to the live checkpoint and compare state hashes.",
    ),
    jobs: int = typer.Option(
        0, "--jobs", "-j", min=0,
        help="Processes rebuilding partitions side by side (0: one per usable CPU, counting a "
        "container's CPU quota; at most one per partition).",
    ),
    skip_offset: list[int] = typer.Option(
        None, "--skip-offset",
        help="Skip the record at this offset of the one --partition as not the service's own "
             "(repeat for several); only a record that holds the partition back may be named.",
    ),
) -> None:
    """Rebuild SERVICE's local state by replaying its own topic (decide is never called).

    A record on the topic that the service cannot have written (it is no record, or a command or
    another service's event) is skipped, as a worker's restore skips it: one error line and
    `skipped=N` in the partition's line, and a copy in the service's DLQ unless one is there
    already (`copied=M` says how many this run added; --verify writes nothing). A partition
    holding a record that may be the service's own but cannot be read now (a schema id the
    registry does not know, a type this version does not know), or one whose evolve raises, is
    reported FAILED and its store is kept; the other partitions are rebuilt.

    If you know such a record is not the service's own (junk from a stray producer: a zero byte
    and a schema id nobody issued), --skip-offset O with exactly one --partition P skips it like
    a foreign record (error line, DLQ copy, skipped=N); the FAILED line and the worker's hold-back
    name the command. An offset outside the partition, or one whose record is an own event or
    is skipped anyway, is refused and nothing is replaced. A worker holding P back has closed
    its store, so this runs beside it; restart the worker (or let the group rebalance) and it
    serves P again from the rebuilt store.

    Example: choreo rebuild packaging --verify

    Example: choreo rebuild packaging --partition 0 --skip-offset 1234
    """
    from choreo.ops.rebuild import checked_skips
    from choreo.ops.rebuild import rebuild as run_rebuild

    checked_skips(partition or None, skip_offset or None)  # before anything talks to Kafka
    settings = cli_settings()
    svc = installation().service(service)
    codec = bootstrap.build_codec(settings)
    results = run_rebuild(settings, svc, codec, partition or None, verify=verify, jobs=jobs or None,
                          skip_offsets=skip_offset or None)
    bad = failed = 0
    for r in results:
        skipped = f" skipped={r.skipped}" if r.skipped else ""
        if r.skipped and not verify:
            skipped += f" copied={r.copied}"
        if r.failed is not None:
            failed += 1
            typer.echo(f"{service}[{r.partition}] FAILED {r.failed}")
        elif verify:
            status = "ok" if r.matches else "MISMATCH"
            bad += not r.matches
            typer.echo(
                f"{service}[{r.partition}] {status} events={r.events} checkpoint={r.checkpoint} "
                f"rebuilt={r.rebuilt_hash[:16]} live={(r.live_hash or '')[:16]}{skipped}"
            )
        else:
            typer.echo(
                f"{service}[{r.partition}] rebuilt events={r.events} hash={r.rebuilt_hash[:16]}{skipped}"
            )
    if failed:
        fail(f"{failed} partition(s) of {service} could not be replayed: a record could not be "
             "read, or evolve raised on an event of its own (see the lines above); fix that, or "
             "skip a record that is not the service's own as its line says, and run this again")
    if bad:
        fail(f"{bad} partition(s) of {service} differ from a rebuild of the log")
