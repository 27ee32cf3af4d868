"""`choreo rebuild`: a service's local state replayed from its own topic, or checked against it."""

from __future__ import annotations

import typer

from choreo import bootstrap
from choreo.cli.context import cli_settings
from choreo.cli.errors import fail, one_sentence_errors


@one_sentence_errors
def rebuild(
    service: str = typer.Argument(..., help="Service whose state to rebuild."),
    partition: list[int] = typer.Option(None, "--partition", "-p", help="Only these partitions."),
    verify: bool = typer.Option(
        False, "--verify",
        help="Do not replace anything: rebuild up to the live checkpoint and compare state hashes.",
    ),
    jobs: int = typer.Option(
        0, "--jobs", "-j", min=0,
        help="Processes rebuilding partitions side by side (0: one per core, at most one per partition).",
    ),
) -> None:
    """Rebuild SERVICE's local state by replaying its own topic (decide is never called).

    Example: choreo rebuild packaging --verify
    """
    from choreo.ops.rebuild import rebuild as run_rebuild

    settings = cli_settings()
    svc = bootstrap.load_service(service)
    codec = bootstrap.build_codec(settings)
    results = run_rebuild(settings, svc, codec, partition or None, verify=verify, jobs=jobs or None)
    bad = 0
    for r in results:
        if verify:
            status = "ok" if r.matches else "MISMATCH"
            bad += not r.matches
            typer.echo(
                f"{service}[{r.partition}] {status} events={r.events} checkpoint={r.checkpoint} "
                f"rebuilt={r.rebuilt_hash[:16]} live={(r.live_hash or '')[:16]}"
            )
        else:
            typer.echo(f"{service}[{r.partition}] rebuilt events={r.events} hash={r.rebuilt_hash[:16]}")
    if bad:
        fail(f"{bad} partition(s) of {service} differ from a rebuild of the log")
