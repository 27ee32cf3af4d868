"""A dry run's report for people (text) and for machines (one JSON document)."""

from __future__ import annotations

import json
from typing import Any

from choreo.ops.dry_run import (
    ADDED,
    CHANGED,
    IDENTICAL,
    REMOVED,
    DryRunReport,
    EventChange,
    InputOutcome,
    StateChange,
)
from choreo.ops.records import event_body, jsonable
from choreo.serde.schemas import to_record

# The fields every saga event shares; a line shows them only when they differ.
_COMMON = ("event_id", "hub", "occurred_at", "causation_id")


def as_json(report: DryRunReport, saga_field: str) -> dict[str, Any]:
    """The whole report: counts, every input answered differently, every state difference."""
    return {
        "service": report.service,
        "code": report.code,
        "from": report.start,
        "partitions": [p.partition for p in report.partitions],
        "inputs": len(report.outcomes),
        "inputs_differing": len(report.differing),
        "events": report.event_counts(),
        "differences": [_outcome_json(o, saga_field) for o in report.differing],
        "state": [_state_json(c) for c in report.state_changes],
        "differs": report.differs,
    }


def json_text(report: DryRunReport, saga_field: str) -> str:
    return json.dumps(as_json(report, saga_field), ensure_ascii=False, default=jsonable)


def _outcome_json(o: InputOutcome, saga_field: str) -> dict[str, Any]:
    return {
        "input": {
            "topic": o.input.topic, "partition": o.input.partition, "offset": o.input.offset,
            "type": o.input.type_name, "event_id": getattr(o.input.event, "event_id", None),
            saga_field: getattr(o.input.event, saga_field, None),
        },
        "dead_lettered": o.actual_dead,
        "would_dead_letter": o.dry_error,
        "events": [_change_json(c) for c in o.changes],
    }


def _change_json(c: EventChange) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "type": c.type_name,
        "actual": event_body(c.actual),
        "dry": event_body(c.dry),
        "fields": {k: {"actual": jsonable(a), "dry": jsonable(d)} for k, (a, d) in c.fields.items()},
    }


def _state_json(c: StateChange) -> dict[str, Any]:
    return {
        "partition": c.partition, "table": c.table, "key": c.key, "actual": c.actual, "dry": c.dry,
        "fields": {k: {"actual": a, "dry": d} for k, (a, d) in c.fields.items()},
    }


def text_lines(report: DryRunReport, saga_field: str) -> list[str]:
    """The report for a terminal: a summary, then each input answered differently, then state."""
    start = f"from {report.start}" if report.start else "from the beginning of the log"
    parts = ", ".join(str(p.partition) for p in report.partitions)
    counts = report.event_counts()
    lines = [
        f"dry run of {report.service} ({report.code} code) {start}, partition(s) {parts}",
        f"{len(report.outcomes)} input(s) decided again: {len(report.outcomes) - len(report.differing)} "
        f"answered as recorded, {len(report.differing)} differently",
        f"events: {counts[IDENTICAL]} identical, {counts[CHANGED]} changed, "
        f"{counts[REMOVED]} would no longer be emitted, {counts[ADDED]} would be newly emitted",
    ]
    for o in report.differing:
        lines += ["", _input_line(o, saga_field)]
        if o.actual_dead and o.dry_error is None:
            lines.append("  ! was dead-lettered; this version answers it")
        elif o.dry_error is not None and not o.actual_dead:
            lines.append(f"  ! would be dead-lettered: {o.dry_error}")
        lines += [line for c in o.changes if c.kind != IDENTICAL for line in _change_lines(c, saga_field)]
    changes = report.state_changes
    lines += ["", f"state: {len(changes)} document(s) differ from the state rebuilt from the log"]
    lines += [_state_line(c) for c in changes]
    lines += ["", "differences found" if report.differs else "no difference"]
    return lines


def _input_line(o: InputOutcome, saga_field: str) -> str:
    r = o.input
    saga = getattr(r.event, saga_field, None)
    return (f"{r.topic}[{r.partition}]@{r.offset} {r.type_name}"
            + (f" {saga_field}={saga}" if saga else "")
            + f" event_id={getattr(r.event, 'event_id', '?')}")


def _change_lines(c: EventChange, saga_field: str) -> list[str]:
    if c.kind == REMOVED:
        return [f"  - would no longer emit {c.type_name} {_summary(c.actual, saga_field)}"]
    if c.kind == ADDED:
        return [f"  + would newly emit {c.type_name} {_summary(c.dry, saga_field)}"]
    lines = [f"  ~ {type(c.actual).__name__} changed:"]
    lines += [f"      {name}: {_shown(a)} -> {_shown(d)}" for name, (a, d) in c.fields.items()]
    return lines


def _summary(event: Any, saga_field: str) -> str:
    """The fields that tell the event apart (the input's line already names the saga)."""
    return " ".join(f"{k}={_shown(v)}" for k, v in to_record(event).items()
                    if k not in _COMMON and k != saga_field)


def _state_line(c: StateChange) -> str:
    where = f"  p{c.partition} {c.table} {c.key}"
    if c.actual is None:
        return f"{where}: only in the dry run {_compact(c.dry)}"
    if c.dry is None:
        return f"{where}: only in the log's state {_compact(c.actual)}"
    return f"{where}: " + ", ".join(f"{k} {_compact(a)} -> {_compact(d)}" for k, (a, d) in c.fields.items())


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _shown(value: Any) -> str:
    return str(jsonable(value))
