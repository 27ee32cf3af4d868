"""Reading the saga back from its event topics and showing what happened: outcomes and the audit.

Shared by `choreo audit` (producers/cli.py), `choreo demo` (producers/demo.py) and the fault suite.
"""

from __future__ import annotations

from rich.table import Table

from choreo import bootstrap
from choreo.cli.markup import plain
from choreo.ops.log_reader import read_log
from choreo.settings import Settings
from consumers.audit import AuditReport, audit, summarise_outcomes
from producers.saga_watch import EVENT_TOPICS


def saga_events(settings: Settings) -> list[object]:
    """Every decoded event of the saga's event topics, each topic partition in log order."""
    codec = bootstrap.build_codec(settings)
    topics = [settings.topic(t) for t in EVENT_TOPICS]
    return [r.event for r in read_log(settings, topics, codec) if r.event is not None]


def outcome_table(events: list[object]) -> Table:
    table = Table(title="Saga outcomes")
    for col, justify in (("outcome", "left"), ("reason", "left"), ("orders", "right"),
                         ("compensated", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in summarise_outcomes(events):
        comp = str(row.compensated) if row.outcome == "failed" else ""
        table.add_row(plain(row.outcome), plain(row.reason or ""), str(row.orders), comp)
    return table


def audit_table(events: list[object], in_flight_ok: bool) -> tuple[Table, AuditReport]:
    report = audit(events, in_flight_ok=in_flight_ok)
    table = Table(title=f"Audit of {report.sagas} accepted sagas ({report.in_flight} in flight)")
    for col in ("invariant", "checked", "violations", "result"):
        table.add_column(col)
    for inv in report.invariants:
        table.add_row(plain(inv.name), str(inv.checked), str(len(inv.violations)),
                      "[green]ok[/]" if inv.ok else "[red]VIOLATED[/]")
    return table, report
