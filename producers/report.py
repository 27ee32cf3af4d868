"""Reading the saga back from its event topics and showing what happened: outcomes and the audit.

Shared by `choreo audit` (producers/cli.py), `choreo demo` (producers/demo.py) and the fault suite.
"""

from __future__ import annotations

from rich.table import Table

from choreo.cli.markup import plain
from choreo.settings import Settings
from consumers.audit import AuditReport, audit, summarise_outcomes
from producers.audit_log import Refusals, read_audit_log


def saga_events(settings: Settings) -> list[object]:
    """Every event of the saga's own topics, each topic partition in log order.

    Raises (one sentence) when the registry does not answer or a record there could not be read
    and no service dead-lettered it: an audit of part of the log must not pass (audit_log.py).
    """
    log = read_audit_log(settings)
    log.require_complete()
    return log.events


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


def refusals_table(refusals: Refusals) -> Table:
    """What the services refused and the records that break the partitioning rule: reported for
    the operator, never violations (the services did not act on them)."""
    table = Table(title="Refused records (reported, not violations)")
    for col, justify in (("what", "left"), ("where", "left"), ("why", "left"), ("records", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for (service, error_class), n in sorted(refusals.dead_letters.items()):
        table.add_row("dead letters", plain(f"{service}.dlq"), plain(error_class), str(n))
    for topic, n in sorted(refusals.junk_on_own_topics.items()):
        table.add_row("refused on own topic", plain(topic), "undecodable or foreign", str(n))
    for topic, n in sorted(refusals.misrouted.items()):
        table.add_row("misrouted", plain(topic), "not on its key's partition", str(n))
    return table
