"""A dry run of a service version over recorded history: decide again, compare with what happened.

Pure: the recorded inputs and the service's own events come in as decoded records, state lives in
`MemoryState`, and nothing is written anywhere. `choreo.ops.dry_run_log` reads the records.

For one partition:

- the inputs replayed are the records of the service's input topics from the starting point on;
  a recorded own event whose cause (the envelope's `cause_field`) is the id of a replayed input
  is that input's *actual* answer;
- the starting state is the fold (the version's `evolve`) of every other own event: those that
  answered inputs before the starting point (without a starting point, none are left);
- the inputs are decided in the order the worker took them. Within one topic that is offset order;
  across topics the worker's order is whatever its fetches returned, but its own log records it
  for every input that emitted something (the own offset of its first event), so those keep that
  order, and the rest fall in by record timestamp;
- each decided event is evolved into the dry-run state, so later decisions see this version's
  state, and is compared with the actual answer of the same input;
- at the end the dry-run state is compared with the fold of the whole recorded own log.

A timer's firing is an input as well: the worker wrote each `TimerFired` to the own log, just
before what it decided on it, with everything `decide` was given (name, due time, firing time,
data). Those from the starting point on come in as inputs on the own topic, are replayed at
their place in the own log (the TimerFired applied, then decided on) and compared with the own
events they caused. A version that would set other timers is not fired anew: only the
recorded firings are replayed.

Events are matched by their id (the envelope's `id_field`) first (ids derived from the cause stay
equal when the decision does), then by type in order; what is left is an event the version would
no longer emit or would newly emit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from choreo.contract import Service
from choreo.domain import installation
from choreo.envelope import Envelope
from choreo.exceptions import ChoreoError
from choreo.serde.schemas import to_record
from choreo.testing import MemoryState
from choreo.timers import TimerFired

Coords = tuple[str, int, int]  # (logical topic, partition, offset)


class DryRunError(ChoreoError):
    """The version cannot be run on this log (its evolve fails on a recorded event)."""

IDENTICAL = "identical"
CHANGED = "changed"
REMOVED = "removed"  # emitted then, would no longer be
ADDED = "added"  # not emitted then, would be now


@dataclass(frozen=True)
class Recorded:
    """One record read back from the log: where it is, when, and its decoded event."""

    topic: str  # logical
    partition: int
    offset: int
    timestamp_ms: int
    event: Any = None
    decode_error: str | None = None

    @property
    def coords(self) -> Coords:
        return self.topic, self.partition, self.offset

    @property
    def type_name(self) -> str:
        return type(self.event).__name__ if self.event is not None else "?"


@dataclass(frozen=True)
class EventChange:
    """One event of an input's answer: identical, changed (with the differing fields), or one side only."""

    kind: str
    actual: Any = None
    dry: Any = None
    fields: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (actual, dry)

    @property
    def type_name(self) -> str:
        return type(self.dry if self.dry is not None else self.actual).__name__


@dataclass(frozen=True)
class InputOutcome:
    """One replayed input: how it was answered, how this version answers it."""

    input: Recorded
    changes: tuple[EventChange, ...]
    actual_dead: bool = False  # the worker dead-lettered it
    dry_error: str | None = None  # this version would dead-letter it, and why

    @property
    def differs(self) -> bool:
        return self.actual_dead != (self.dry_error is not None) or any(
            c.kind != IDENTICAL for c in self.changes
        )


@dataclass(frozen=True)
class StateChange:
    """A document that differs between the dry-run state and the fold of the recorded log."""

    partition: int
    table: str
    key: str
    actual: dict[str, Any] | None
    dry: dict[str, Any] | None

    @property
    def fields(self) -> dict[str, tuple[Any, Any]]:
        return field_changes(self.actual or {}, self.dry or {})


@dataclass(frozen=True)
class PartitionDryRun:
    partition: int
    outcomes: tuple[InputOutcome, ...]
    state_changes: tuple[StateChange, ...]
    initial_events: int  # own events folded into the starting state


def field_changes(actual: Mapping[str, Any], dry: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """name -> (actual, dry) for every field whose value differs (a missing field is None)."""
    names = list(dict.fromkeys([*actual, *dry]))
    return {n: (actual.get(n), dry.get(n)) for n in names if actual.get(n) != dry.get(n)}


def event_fields(event: Any) -> dict[str, Any]:
    """The event's fields, with its type as `type` so that a changed type shows as a field."""
    return {"type": type(event).__name__, **to_record(event)}


def compare_events(
    actual: Sequence[Any], dry: Sequence[Any], envelope: Envelope | None = None,
) -> tuple[EventChange, ...]:
    """Pair the actual and dry answers of one input: by event id, then by type in order."""
    id_of = (envelope or installation().envelope).id_of
    left_actual = list(actual)
    by_id, unmatched = _pair(left_actual, dry, lambda a, d: id_of(a) is not None and id_of(a) == id_of(d))
    by_type, added = _pair(left_actual, unmatched, lambda a, d: type(a) is type(d))
    pairs = by_id + by_type
    changes = []
    for a, d in pairs:
        diff = field_changes(event_fields(a), event_fields(d))
        changes.append(EventChange(CHANGED if diff else IDENTICAL, a, d, diff))
    changes += [EventChange(REMOVED, actual=a) for a in left_actual]
    changes += [EventChange(ADDED, dry=d) for d in added]
    return tuple(changes)


def _pair(
    left_actual: list[Any], dry: Sequence[Any], same: Callable[[Any, Any], bool]
) -> tuple[list[tuple[Any, Any]], list[Any]]:
    """Pair each dry event with the first actual one that is `same`, taking it out of
    `left_actual`; returns the pairs and the dry events left without one."""
    pairs: list[tuple[Any, Any]] = []
    unpaired: list[Any] = []
    for d in dry:
        match = next((a for a in left_actual if same(a, d)), None)
        if match is None:
            unpaired.append(d)
        else:
            left_actual.remove(match)
            pairs.append((match, d))
    return pairs, unpaired


def replay_order(streams: Sequence[Sequence[Recorded]], rank: Mapping[Coords, int]) -> list[Recorded]:
    """Merge per-topic streams (each in offset order) into the order the worker took them.

    `rank` gives, for the inputs that emitted something, the own offset of their first event: the
    worker took those in that order. A ranked record waits until no lower rank is pending in any
    stream; among the records free to go, the earliest timestamp goes first.
    """
    ranked_at = [[i for i, r in enumerate(s) if r.coords in rank] for s in streams]
    heads = [0] * len(streams)
    next_ranked = [0] * len(streams)  # index into ranked_at[i] of the first ranked at/after head
    out: list[Recorded] = []
    while True:
        live = [i for i, s in enumerate(streams) if heads[i] < len(s)]
        if not live:
            return out
        pending = [rank[streams[i][ranked_at[i][next_ranked[i]]].coords]
                   for i in live if next_ranked[i] < len(ranked_at[i])]
        lowest = min(pending, default=None)
        free = [i for i in live if rank.get(streams[i][heads[i]].coords, lowest) == lowest]
        pick = min(free, key=lambda i: (streams[i][heads[i]].timestamp_ms, i))
        record = streams[pick][heads[pick]]
        out.append(record)
        if record.coords in rank:
            next_ranked[pick] += 1
        heads[pick] += 1


def dry_run_partition(
    service: Service,
    partition: int,
    own: Sequence[Recorded],
    inputs: Mapping[str, Sequence[Recorded]],
    dead_lettered: Iterable[Coords] = (),
    envelope: Envelope | None = None,
) -> PartitionDryRun:
    """Decide `inputs` (logical topic -> records of this partition, offset order) again with
    `service` and compare with the recorded `own` events (offset order) of this partition.
    `envelope`: how events name their id and cause (default: the installed domain's)."""
    envelope = envelope or installation().envelope
    dead = set(dead_lettered)
    streams = [list(records) for _topic, records in sorted(inputs.items())]
    by_cause: dict[str, list[Recorded]] = defaultdict(list)
    for record in own:
        cause = envelope.cause_of(record.event)
        if cause is not None:
            by_cause[cause].append(record)
    # An input recorded twice (a dead letter sent back, a command sent again) was answered once:
    # its events belong to the first copy the worker did not dead-letter.
    answers: dict[Coords, list[Recorded]] = {}
    for stream in streams:
        for r in stream:
            eid = envelope.id_of(r.event)
            if eid in by_cause and r.coords not in dead:
                answers[r.coords] = by_cause.pop(eid)
    answered = {id(e) for events in answers.values() for e in events}
    rank = {coords: min(e.offset for e in events) for coords, events in answers.items()}
    # A replayed firing is an input, not part of the starting state, and takes its own place.
    firings = {r.coords for r in inputs.get(service.own_topic, ())}
    rank.update((coords, coords[2]) for coords in firings)

    state = MemoryState()
    initial = 0
    for record in own:
        if id(record) not in answered and record.coords not in firings:
            _fold(service, state, record)
            initial += 1
    outcomes = [
        _decide_one(service, state, r, [e.event for e in answers.get(r.coords, [])], r.coords in dead,
                    envelope)
        for r in replay_order(streams, rank)
    ]
    actual_state = MemoryState()
    for record in own:
        _fold(service, actual_state, record)
    return PartitionDryRun(partition, tuple(outcomes), state_changes(partition, actual_state, state),
                           initial)


def _fold(service: Service, state: MemoryState, record: Recorded) -> None:
    """Apply a recorded own event; a version that cannot is told so, as its worker's restore would."""
    if record.event is None:
        raise DryRunError(f"{record.topic}[{record.partition}]@{record.offset} cannot be decoded: "
                          f"{record.decode_error}")
    try:
        service.evolve(state, record.event)
    except Exception as e:  # noqa: BLE001 - any failure of the version's code, named in one sentence
        raise DryRunError(
            f"this version's evolve fails on the recorded {record.type_name} at "
            f"{record.topic}[{record.partition}]@{record.offset} ({type(e).__name__}: {e}), so it "
            "could not rebuild its state from this log"
        ) from e


def _decide_one(
    service: Service, state: MemoryState, record: Recorded, actual: list[Any], actual_dead: bool,
    envelope: Envelope,
) -> InputOutcome:
    """What the worker would do with the record: decide, evolve each event, or dead-letter it."""
    error = _refusal(service, record)
    dry: list[Any] = []
    if error is None:
        journal = _Journal(state)
        try:
            if type(record.event) is TimerFired:
                service.evolve(journal, record.event)  # the timer goes first, as in the worker
            dry = list(service.decide(state, record.event))
            for event in dry:
                if type(event) not in service.emits:
                    # The worker could not encode it for the own topic: say so here, before deploying.
                    raise TypeError(f"{type(event).__name__} is not among the events {service.name} emits")
                service.evolve(journal, event)
        except Exception as e:  # noqa: BLE001 - the worker dead-letters whatever a record causes
            journal.undo()
            dry, error = [], f"{type(e).__name__}: {e}"
            if type(record.event) is TimerFired:
                service.evolve(state, record.event)  # the worker records a failed firing alone
    return InputOutcome(record, compare_events(actual, dry, envelope), actual_dead, error)


class _Journal:
    """The state as `evolve` sees it, remembering what each write replaced so that a failed
    record is undone alone (the worker's savepoint) without copying the whole state per record."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self.before: list[tuple[str, str, str | None]] = []

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        return self.state.get(table, key)

    def scan(self, table: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        return self.state.scan(table, prefix)

    def put(self, table: str, key: str, value: dict[str, Any]) -> None:
        self.before.append((table, key, self.state.tables.get(table, {}).get(key)))
        self.state.put(table, key, value)

    def delete(self, table: str, key: str) -> None:
        self.before.append((table, key, self.state.tables.get(table, {}).get(key)))
        self.state.delete(table, key)

    def undo(self) -> None:
        for table, key, raw in reversed(self.before):
            rows = self.state.tables.setdefault(table, {})
            if raw is None:
                rows.pop(key, None)
            else:
                rows[key] = raw
        self.before.clear()


def _refusal(service: Service, record: Recorded) -> str | None:
    if record.event is None:
        return f"undecodable: {record.decode_error}"
    if type(record.event) is TimerFired and record.topic == service.own_topic:
        return None
    if not service.accepts(record.topic, type(record.event)):
        return f"{type(record.event).__name__} is not an event {service.name} takes on {record.topic}"
    return None


def state_changes(partition: int, actual: MemoryState, dry: MemoryState) -> tuple[StateChange, ...]:
    """Every document that differs between the two states, by table and key."""
    out = []
    for table in sorted(set(actual.tables) | set(dry.tables)):
        a_rows, d_rows = actual.tables.get(table, {}), dry.tables.get(table, {})
        for key in sorted(set(a_rows) | set(d_rows)):
            a, d = actual.get(table, key), dry.get(table, key)
            if a != d:
                out.append(StateChange(partition, table, key, a, d))
    return tuple(out)


@dataclass(frozen=True)
class DryRunReport:
    """Every partition's dry run of one service version."""

    service: str
    code: str  # where the version came from: "installed" or the --code reference
    start: str | None  # the starting point as given, None for the beginning of the log
    partitions: tuple[PartitionDryRun, ...]

    @property
    def outcomes(self) -> list[InputOutcome]:
        return [o for p in self.partitions for o in p.outcomes]

    @property
    def differing(self) -> list[InputOutcome]:
        return [o for o in self.outcomes if o.differs]

    @property
    def state_changes(self) -> list[StateChange]:
        return [c for p in self.partitions for c in p.state_changes]

    @property
    def differs(self) -> bool:
        return bool(self.differing or self.state_changes)

    def event_counts(self) -> dict[str, int]:
        counts = dict.fromkeys((IDENTICAL, CHANGED, REMOVED, ADDED), 0)
        for o in self.outcomes:
            for c in o.changes:
                counts[c.kind] += 1
        return counts
