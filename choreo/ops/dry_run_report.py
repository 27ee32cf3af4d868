"""A dry run's report for people (text) and for machines (one JSON document)."""

from __future__ import annotations

import json
from typing import Any

from choreo.envelope import Envelope
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


def as_json(report: DryRunReport, envelope: Envelope) -> dict[str, Any]:
    """The whole report: counts, every input answered differently, every state difference."""
    return {
        "service": report.service,
        "code": report.code,
        "from": report.start,
        "partitions": [p.partition for p in report.partitions],
        "inputs": len(report.outcomes),
        "inputs_differing": len(report.differing),
        "events": report.event_counts(),
        "differences": [_outcome_json(o, envelope) for o in report.differing],
        "state": [_state_json(c) for c in report.state_changes],
        "differs": report.differs,
    }


def json_text(report: DryRunReport, envelope: Envelope) -> str:
    return json.dumps(as_json(report, envelope), ensure_ascii=False, default=jsonable)


def _outcome_json(o: InputOutcome, envelope: Envelope) -> dict[str, Any]:
    return {
        "input": {
            "topic": o.input.topic, "partition": o.input.partition, "offset": o.input.offset,
            "type": o.input.type_name,
            envelope.id_field: envelope.id_of(o.input.event),
            envelope.saga_field: envelope.saga_of(o.input.event),
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


def text_lines(report: DryRunReport, envelope: Envelope) -> list[str]:
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
        lines += ["", _input_line(o, envelope)]
        if o.actual_dead and o.dry_error is None:
            lines.append("  ! was dead-lettered; this version answers it")
        elif o.dry_error is not None and not o.actual_dead:
            lines.append(f"  ! would be dead-lettered: {o.dry_error}")
        lines += [line for c in o.changes if c.kind != IDENTICAL for line in _change_lines(c, envelope)]
    changes = report.state_changes
    lines += ["", f"state: {len(changes)} document(s) differ from the state rebuilt from the log"]
    lines += [_state_line(c) for c in changes]
    lines += ["", "differences found" if report.differs else "no difference"]
    return lines


def _input_line(o: InputOutcome, envelope: Envelope) -> str:
    r = o.input
    saga = envelope.saga_of(r.event)
    return (f"{r.topic}[{r.partition}]@{r.offset} {r.type_name}"
            + (f" {envelope.saga_field}={saga}" if saga else "")
            + f" {envelope.id_field}={envelope.id_of(r.event) or '?'}")


def _change_lines(c: EventChange, envelope: Envelope) -> list[str]:
    if c.kind == REMOVED:
        return [f"  - would no longer emit {c.type_name} {_summary(c.actual, envelope)}"]
    if c.kind == ADDED:
        return [f"  + would newly emit {c.type_name} {_summary(c.dry, envelope)}"]
    lines = [f"  ~ {type(c.actual).__name__} changed:"]
    lines += [f"      {name}: {_shown(a)} -> {_shown(d)}" for name, (a, d) in c.fields.items()]
    return lines


def _summary(event: Any, envelope: Envelope) -> str:
    """The fields that tell the event apart: not the envelope's (the input's line names the saga)."""
    return " ".join(f"{k}={_shown(v)}" for k, v in to_record(event).items() if k not in envelope.fields)


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
