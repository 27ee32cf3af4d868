"""One saga's timeline across every topic, read from the single partition its key maps to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from choreo.contract import Service
from choreo.domain import installation
from choreo.envelope import Envelope
from choreo.exceptions import ChoreoError
from choreo.kafka.partitioner import partition_for
from choreo.ops.log_reader import LogRecord, read_log
from choreo.ops.records import as_json, key_of, saga_id_of
from choreo.serde.codec import Codec
from choreo.settings import Settings


class NoSuchSagaError(ChoreoError):
    """No record of the saga was found where it should be."""


@dataclass(frozen=True)
class TraceStep:
    number: int
    record: LogRecord
    logical_topic: str
    emitter: str
    cause: int | None  # number of the step that caused this one, if it is in the trace
    role: str | None


@dataclass
class Trace:
    saga_id: str
    key: str  # the value of the domain's partition key field
    partition: int
    partitions: int
    steps: list[TraceStep] = field(default_factory=list)
    outcome: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "saga_id": self.saga_id,
            "key": self.key,
            "partition": self.partition,
            "outcome": self.outcome,
            "steps": [
                {"step": s.number, "emitter": s.emitter, "caused_by": s.cause, "role": s.role,
                 **as_json(s.record, s.logical_topic)}
                for s in self.steps
            ],
        }


def find_key(settings: Settings, services: list[Service], saga_id: str) -> str:
    """The partition key of a saga, from the first own-topic record whose saga id header matches.

    Workers put the saga id (under the domain's name for it) in a header of every event they
    emit, so this reads headers only (nothing is decoded), but it reads the services' own
    topics from the beginning, on every partition, until the first match: on a long log, pass
    the key instead.
    """
    topics = [settings.topic(s.own_topic) for s in services]
    wanted, header = saga_id.encode(), installation().envelope.saga_field
    for record in read_log(settings, topics, codec=None):
        if record.headers.get(header) == wanted and record.key:
            return record.key.decode(errors="replace")
    raise NoSuchSagaError(f"no such saga ({header}={saga_id!r}): no service emitted an event for it")


def trace_saga(
    settings: Settings,
    services: list[Service],
    codec: Codec,
    saga_id: str,
    key: str,
    topics: dict[str, int],
) -> Trace:
    """Read partition(key) of every topic in `topics` (logical -> partition count) for one saga."""
    partitions = next(iter(topics.values()))
    partition = partition_for(key.encode(errors="surrogatepass"), partitions)
    physical_to_logical = {settings.topic(t): t for t in topics}
    domain = installation()
    envelope = domain.envelope
    records = [
        r for r in read_log(settings, list(physical_to_logical), codec, partitions=[partition])
        if saga_id_of(r, envelope.saga_field) == saga_id and key_of(r, envelope.key_field) == key
    ]
    if not records:
        raise NoSuchSagaError(
            f"no such saga ({envelope.saga_field}={saga_id!r}) at {envelope.key_field} {key!r} "
            f"(partition {partition} of {partitions})"
        )
    trace = Trace(saga_id, key, partition, partitions)
    emitters = {s.own_topic: s.name for s in services} | {s.dlq_topic: f"{s.name} (DLQ)" for s in services}
    dead_letter_topics = {s.dlq_topic for s in services}
    by_event_id: dict[str, int] = {}
    for number, record in enumerate(_causal_order(records, envelope), start=1):
        logical = physical_to_logical[record.topic]
        event_id, cause_id = envelope.id_of(record.event), envelope.cause_of(record.event)
        is_dead_letter = logical in dead_letter_topics
        step = TraceStep(
            number, record, logical, emitters.get(logical, "edge"),
            by_event_id.get(cause_id) if cause_id else None,
            "dead letter" if is_dead_letter else domain.role_of(record.event),
        )
        if event_id and not is_dead_letter:  # a dead letter repeats its source record's id
            by_event_id[event_id] = number
        trace.steps.append(step)
        outcome = None if is_dead_letter else domain.outcome_of(record.event)
        if outcome is not None:
            trace.outcome = outcome
    return trace


def _causal_order(records: list[LogRecord], envelope: Envelope) -> list[LogRecord]:
    """By record time; at the same millisecond, a cause before its effects.

    Events of one saga carry their cause's time (domain code has no clock), so the record
    timestamps set when they were produced are the only time that orders them.
    """
    by_id = {envelope.id_of(r.event): r for r in records}
    depth: dict[int, int] = {}

    def depth_of(r: LogRecord, seen: int = 0) -> int:
        if id(r) not in depth:
            cause = by_id.get(envelope.cause_of(r.event))
            depth[id(r)] = 0 if cause is None or cause is r or seen > 50 else depth_of(cause, seen + 1) + 1
        return depth[id(r)]

    return sorted(records, key=lambda r: (r.timestamp_ms, depth_of(r), r.topic, r.offset))
