"""Durable timers without a broker: their rows in the state, the contract that applies a firing,
the worker's firing of them (RecordProcessor.fire, TimerFiring, the commit protocol), and the
rebuild from the own log, which must end where the worker did.

Time is a value throughout: due times are datetimes, the worker's clocks are FakeClocks, and no
test waits. A timer is two rows of the partition's state, so its tests run on both stores the
store contract knows (MemoryState and the SQLite PartitionStore).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.schema_registry import Schema

from choreo.contract import (
    Service,
    State,
    StateView,
    TimerFired,
    cancel_timer,
    derive_id,
    pending_timer,
    set_timer,
)
from choreo.kafka.messages import Consumed, Headers
from choreo.kafka.partitioner import partition_for
from choreo.runtime.batch import Batch, TransactionalStore
from choreo.runtime.outputs import TransactionalOutput
from choreo.runtime.poison import PoisonTracker
from choreo.runtime.processing import RecordProcessor
from choreo.runtime.routing import PartitionRouting
from choreo.runtime.store import PartitionStore
from choreo.runtime.timer_firing import TimerFiring
from choreo.serde.codec import Codec, subject_for
from choreo.serde.schemas import load_event_schemas
from choreo.testing import MemoryState, fire_due, handle
from choreo.timers import DUE, SCHEMA_DIR, TIMERS, DueTimer, apply_fired, due_timers, next_due_ms, to_ms
from tests.support import toy
from tests.support.fake_clock import FakeClock
from tests.support.fake_registry import FakeRegistry
from tests.support.records import T0
from tests.support.toy import AddNumber, NumberCounted, SumDoubled
from tests.unit.test_commit_protocol import INPUT as RIG_INPUT
from tests.unit.test_commit_protocol import OWN as RIG_OWN
from tests.unit.test_commit_protocol import RecordingStore, Rig, abortable

PARTITIONS = 6
COMMANDS, COUNTER, OWN, DLQ = "counter.commands", "counter", "reminder", "reminder.dlq"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ms(minutes: float) -> int:
    return to_ms(at(minutes))


def hub_on(partition: int, other_than: str = "") -> str:
    """A hub whose key murmur2 puts on `partition`: outputs must stay on their cause's partition."""
    return next(h for h in (f"hub-{i}" for i in range(100))
                if partition_for(h.encode(), PARTITIONS) == partition and h != other_than)


P = 0  # the partition the processor tests fire on (the commit protocol's Rig owns 0 and 1)
HUB = hub_on(P)
HUB2 = hub_on(P, other_than=HUB)
ELSEWHERE = hub_on(1)  # a hub of another partition


# -- a toy service with a timer ------------------------------------------------------------------
#
# `reminder` counts numbers per hub (toy.AddNumber -> toy.NumberCounted) and, from evolve, sets a
# timer per hub `value` minutes after the command. When it fires, decide answers with a
# toy.SumDoubled, whose evolve re-arms the timer an hour after the firing, REPEATS times in all.
# A command whose id starts with "decide:" or "evolve:" sets a timer whose firing fails there.

REPEATS = 3
ORDER = "order-7"  # the saga id every reminder carries (the saga id field is `order_id`)


def reminder_timer(hub: str) -> str:
    return f"remind/{hub}"  # with a '/', as names built from ids have


def _arm(state: State, hub: str, when: datetime, fail: str = "") -> None:
    data = {"hub": hub, "order_id": ORDER} | ({"fail": fail} if fail else {})
    set_timer(state, reminder_timer(hub), when, data)


def reminder_decide(state: StateView, event: Any) -> list[Any]:
    if isinstance(event, TimerFired):
        return _remind(state, event)
    total = (state.get("totals", event.hub) or {"total": 0})["total"] + event.value
    return [NumberCounted(event_id=derive_id(event.event_id, "counted"), hub=event.hub,
                          occurred_at=event.occurred_at, causation_id=event.event_id,
                          value=event.value, total=total)]


def _remind(state: StateView, fired: TimerFired) -> list[Any]:
    if fired.data.get("fail") == "decide":
        raise RuntimeError("this reminder's decide fails")
    hub = fired.data.get("hub")
    row = None if hub is None else state.get("totals", hub)
    if hub is None or row is None:
        return []  # nothing counted for it on this partition: nothing to remind of
    doubled = -1 if fired.data.get("fail") == "evolve" else 2 * row["total"]
    return [SumDoubled(event_id=derive_id(fired.event_id, "reminded"), hub=hub,
                       occurred_at=fired.fired_at, causation_id=fired.event_id, doubled=doubled)]


def reminder_evolve(state: State, event: Any) -> None:
    if isinstance(event, NumberCounted):
        state.put("totals", event.hub, {"total": event.total})
        fail, colon, _ = (event.causation_id or "").partition(":")
        _arm(state, event.hub, event.occurred_at + timedelta(minutes=event.value), fail if colon else "")
    elif isinstance(event, SumDoubled):
        n = (state.get("reminded", event.hub) or {"n": 0})["n"] + 1
        state.put("reminded", event.hub, {"n": n, "doubled": event.doubled})
        if n < REPEATS:
            _arm(state, event.hub, event.occurred_at + timedelta(hours=1))
        if event.doubled < 0:
            raise ValueError("this reminder's answer fails in evolve, after its writes")
    else:
        raise AssertionError(f"the domain's evolve was handed {event!r}")


REMINDER = Service(
    name=OWN,
    inputs={COMMANDS: (AddNumber,), COUNTER: (NumberCounted,)},
    emits=(NumberCounted, SumDoubled),
    decide=reminder_decide,
    evolve=reminder_evolve,
    on_timer=(SumDoubled,),
)


def add(hub: str, value: int, minutes: float = 0, fail: str = "") -> AddNumber:
    """A command counting `value` at `hub`, `minutes` after T0: its timer is due `value` minutes later."""
    event_id = f"{fail}:add-{hub}-{value}-{minutes}" if fail else f"add-{hub}-{value}-{minutes}"
    return AddNumber(event_id=event_id, hub=hub, occurred_at=at(minutes), value=value)


# -- 1. the timer rows, on both stores -------------------------------------------------------------


@pytest.fixture()
def store(state_store: Any) -> Any:
    return state_store  # both stores (tests/support/stores.py)


def due_names(state: StateView, now: datetime, limit: int = 100) -> list[str]:
    return [timer.name for timer in due_timers(state, to_ms(now), limit)]


def timer_rows(state: StateView) -> tuple[list[str], int]:
    """The timers set, by name, and how many rows the due-time index holds (one per timer)."""
    return [name for name, _ in state.scan(TIMERS)], sum(1 for _ in state.scan(DUE))


def test_due_timers_come_earliest_first_ties_in_name_order_and_none_before_its_time(store: Any) -> None:
    set_timer(store, "late", at(30))
    set_timer(store, "b", at(10))
    set_timer(store, "a", at(10))
    set_timer(store, "first", at(5))
    assert due_names(store, at(4)) == []
    assert due_names(store, at(10)) == ["first", "a", "b"]  # due at `now` is due
    assert due_names(store, at(10), limit=2) == ["first", "a"]
    assert due_names(store, at(60)) == ["first", "a", "b", "late"]
    assert next_due_ms(store) == ms(5)


def test_a_timer_keeps_its_due_time_and_data(store: Any) -> None:
    assert next_due_ms(store) is None and pending_timer(store, "t") is None
    set_timer(store, "t", at(10), {"order_id": "o-1"})
    set_timer(store, "bare", at(20))
    assert pending_timer(store, "t") == at(10)
    assert due_timers(store, ms(20), 10) == [DueTimer("t", ms(10), {"order_id": "o-1"}),
                                             DueTimer("bare", ms(20), {})]


def test_setting_a_name_again_moves_its_timer_and_the_old_time_no_longer_fires(store: Any) -> None:
    set_timer(store, "t", at(10), {"v": "1"})
    set_timer(store, "t", at(20), {"v": "2"})
    assert due_names(store, at(15)) == []
    assert pending_timer(store, "t") == at(20)
    assert due_timers(store, ms(60), 10) == [DueTimer("t", ms(20), {"v": "2"})]
    assert timer_rows(store) == (["t"], 1)
    set_timer(store, "t", at(5))  # earlier works as well
    assert due_timers(store, ms(60), 10) == [DueTimer("t", ms(5), {})]


def test_cancel_removes_both_rows_of_a_timer_and_cancelling_nothing_is_fine(store: Any) -> None:
    set_timer(store, "t", at(10))
    set_timer(store, "keep", at(10))
    cancel_timer(store, "t")
    cancel_timer(store, "t")
    cancel_timer(store, "never-set")
    assert pending_timer(store, "t") is None
    assert due_names(store, at(60)) == ["keep"]
    assert timer_rows(store) == (["keep"], 1)


NAMES = ["a/b", "a%2Fb", "a", "a/", "a%", "a/b/c", "%", ""]


def test_names_holding_slash_and_percent_are_distinct_timers(store: Any) -> None:
    for i, name in enumerate(NAMES):
        set_timer(store, name, at(10), {"i": str(i)})
    due = due_timers(store, ms(10), 100)
    assert {timer.name: timer.data for timer in due} == {name: {"i": str(i)} for i, name in enumerate(NAMES)}
    assert len(due) == len(NAMES)
    cancel_timer(store, "a/b")
    assert sorted(due_names(store, at(10))) == sorted(n for n in NAMES if n != "a/b")
    assert pending_timer(store, "a%2Fb") == at(10)
    assert timer_rows(store)[1] == len(NAMES) - 1


def test_a_naive_due_time_is_refused_and_the_timer_set_before_stays(store: Any) -> None:
    set_timer(store, "t", at(10))
    with pytest.raises(ValueError, match="no time zone"):
        set_timer(store, "t", datetime(2026, 11, 21, 12, 0))
    with pytest.raises(ValueError, match="no time zone"):
        set_timer(store, "new", datetime(2026, 11, 21, 12, 0))
    assert due_timers(store, ms(60), 10) == [DueTimer("t", ms(10), {})]
    assert timer_rows(store) == (["t"], 1)


@pytest.mark.parametrize("data", [{"n": 1}, {1: "x"}, {"ids": ["a"]}, {"v": None}])
def test_timer_data_must_map_strings_to_strings(store: Any, data: Any) -> None:
    set_timer(store, "t", at(10), {"v": "old"})
    with pytest.raises(TypeError, match="strings to strings"):
        set_timer(store, "t", at(20), data)
    assert due_timers(store, ms(60), 10) == [DueTimer("t", ms(10), {"v": "old"})]


def test_a_due_time_before_1970_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        set_timer(MemoryState(), "t", datetime(1969, 12, 31, 23, 59, tzinfo=UTC))


def test_a_firing_removes_only_the_timer_that_fired_not_one_set_again_since() -> None:
    state = MemoryState()
    set_timer(state, "t", at(10))
    [old] = due_timers(state, ms(10), 10)
    set_timer(state, "t", at(20))
    apply_fired(state, old.fired(ms(10)))
    assert pending_timer(state, "t") == at(20)


# 2039-01-01T00:00:00.003Z: after 2038-01-19 (2**31 s) about one millisecond in four is a time
# whose float timestamp() times 1000 lands a hair under the integer (…002.9998): a to_ms that
# truncated it kept such a timer a millisecond early, where its firing did not find it again.
AFTER_2038 = datetime(2039, 1, 1, 0, 0, 0, 3000, tzinfo=UTC)


def test_a_timer_is_kept_at_the_millisecond_it_was_set_for() -> None:
    state = MemoryState()
    set_timer(state, "renewal", AFTER_2038)
    assert pending_timer(state, "renewal") == AFTER_2038


def test_a_firing_removes_its_timer_whatever_millisecond_it_was_due() -> None:
    """Otherwise the timer stays due: the worker fires it again at every check, for ever (and
    choreo.testing.fire_due never returns)."""
    state = MemoryState()
    set_timer(state, "renewal", AFTER_2038)
    now_ms = to_ms(AFTER_2038 + timedelta(seconds=1))
    [timer] = due_timers(state, now_ms, 10)
    REMINDER.evolve(state, timer.fired(now_ms))
    assert due_timers(state, now_ms, 10) == []


# -- 2. the contract: on_timer makes TimerFired an own event, applied by the runtime ----------------


class Recorder:
    """A domain's decide and evolve that only note what they were handed."""

    def __init__(self) -> None:
        self.evolved: list[Any] = []

    def decide(self, state: StateView, event: Any) -> list[Any]:
        return []

    def evolve(self, state: State, event: Any) -> None:
        self.evolved.append(event)


def recorded_service(recorder: Recorder, **declared: Any) -> Service:
    return Service("svc", {"in": (AddNumber,)}, declared.pop("emits", (NumberCounted,)),
                   recorder.decide, recorder.evolve, **declared)


def counted(hub: str = HUB) -> NumberCounted:
    return NumberCounted(event_id="e-1", hub=hub, occurred_at=T0, causation_id=None, value=1, total=1)


def test_a_service_answering_timers_emits_timer_fired_once_and_its_evolve_removes_the_timer() -> None:
    recorder = Recorder()
    service = recorded_service(recorder, on_timer=(SumDoubled,))
    assert service.emits == (NumberCounted, TimerFired) and service.uses_timers
    copy = dataclasses.replace(service, description="a copy")  # copies do not wrap it again
    assert copy.emits == (NumberCounted, TimerFired)
    for svc in (service, copy):
        state = MemoryState()
        set_timer(state, "t", at(10))
        set_timer(state, "other", at(20))
        svc.evolve(state, DueTimer("t", ms(10), {}).fired(ms(11)))
        assert pending_timer(state, "t") is None and pending_timer(state, "other") == at(20)
        svc.evolve(state, counted())  # its own events still reach the domain's evolve
    assert recorder.evolved == [counted(), counted()]  # and only they do


def test_a_service_without_timers_is_declared_as_written() -> None:
    recorder = Recorder()
    service = recorded_service(recorder)
    assert service.emits == (NumberCounted,) and not service.uses_timers
    assert service.evolve == recorder.evolve


def test_a_service_that_lists_timer_fired_among_its_events_still_has_fired_timers_removed() -> None:
    """contract.Service: declaring on_timer makes TimerFired "applied by the runtime (it removes
    the fired timer)". Listing it in `emits` too must not turn that off."""
    recorder = Recorder()
    service = recorded_service(recorder, emits=(NumberCounted, TimerFired), on_timer=(SumDoubled,))
    assert service.emits == (NumberCounted, TimerFired)
    state = MemoryState()
    set_timer(state, "t", at(10))
    service.evolve(state, DueTimer("t", ms(10), {}).fired(ms(11)))
    assert pending_timer(state, "t") is None


# -- 3. choreo.testing.fire_due ----------------------------------------------------------------------


def test_fire_due_fires_each_due_timer_once_earliest_first_and_leaves_later_ones() -> None:
    state = MemoryState()
    for hub, minutes in [("hub-c", 10), ("hub-b", 2), ("hub-a", 1)]:
        handle(REMINDER, state, add(hub, minutes))  # each hub's timer is due `minutes` after T0
    answers = fire_due(REMINDER, state, at(5))
    assert [(a.hub, a.doubled, a.occurred_at) for a in answers] == [("hub-a", 2, at(5)), ("hub-b", 4, at(5))]
    assert pending_timer(state, reminder_timer("hub-c")) == at(10)
    assert fire_due(REMINDER, state, at(5)) == []  # the same time again: nothing is due any more


def test_a_timer_rearmed_by_its_answers_evolve_fires_at_its_new_time_until_no_longer_set() -> None:
    state = MemoryState()
    handle(REMINDER, state, add("hub-a", 1))
    fired_at = [a.occurred_at for now in (at(1), at(30), at(61), at(121), at(600))
                for a in fire_due(REMINDER, state, now)]
    assert fired_at == [at(1), at(61), at(121)]
    assert state.get("reminded", "hub-a") == {"n": REPEATS, "doubled": 2}
    assert pending_timer(state, reminder_timer("hub-a")) is None


# -- 4. rebuild: the own events, TimerFired included, fold into the live state -------------------


class Recording:
    """`service` as handle and fire_due use it (decide and evolve), noting every own event it
    applies, in order: the own log a worker would write, TimerFired records included."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.log: list[Any] = []

    def decide(self, state: StateView, event: Any) -> Sequence[Any]:
        return self.service.decide(state, event)

    def evolve(self, state: State, event: Any) -> None:
        self.log.append(event)
        self.service.evolve(state, event)


def test_replaying_the_own_events_rebuilds_the_live_state_timers_included() -> None:
    recording = Recording(REMINDER)
    live_service, own_log = cast(Service, recording), recording.log
    live = MemoryState()
    handle(live_service, live, add("hub-a", 1))
    handle(live_service, live, add("hub-b", 2))
    fire_due(live_service, live, at(5))
    handle(live_service, live, add("hub-a", 30, minutes=6))  # moves hub-a's re-armed timer
    fire_due(live_service, live, at(70))
    assert sum(type(e) is TimerFired for e in own_log) == 4
    assert pending_timer(live, reminder_timer("hub-a")) is not None  # timers are compared too

    rebuilt = MemoryState()
    for event in own_log:
        REMINDER.evolve(rebuilt, event)
    assert rebuilt.dump() == live.dump()


# -- 5. RecordProcessor.fire, and 7. another service's TimerFired on an input ------------------------


def reminder_codec(*topics: str) -> Codec:
    """The real codec over an in-memory registry (as test_codec has it), TimerFired's schema
    included: what the processor writes is read back from bytes, as a rebuild reads it."""
    schemas = load_event_schemas([TimerFired, AddNumber, NumberCounted, SumDoubled],
                                 SCHEMA_DIR, *toy.DOMAIN.schema_dirs)
    registry = FakeRegistry()
    for topic in topics:
        for es in schemas.values():
            registry.register_schema(subject_for(topic, es.name), Schema(es.text, "AVRO"))
    return Codec(registry, schemas.values())  # type: ignore[arg-type]


@dataclass(frozen=True)
class Produced:
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: Headers


class OwnLog:
    """The processor's output: every record it produced, in order (own events and dead letters)."""

    def __init__(self) -> None:
        self.records: list[Produced] = []

    def produce(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                headers: Headers, batch: Batch | None, cause: Any = None) -> None:
        self.records.append(Produced(topic, partition, key, value, headers))


class Worker:
    """A RecordProcessor of `reminder` with the real codec, writing to `output` (by default
    `log`, which keeps the records so that tests read them back)."""

    def __init__(self, output: TransactionalOutput | None = None, own_topic: str = OWN) -> None:
        self.own_topic = own_topic
        self.codec = reminder_codec(COMMANDS, COUNTER, own_topic)
        self.log = OwnLog()
        self.processor = RecordProcessor(
            REMINDER, self.codec, output or cast(TransactionalOutput, self.log), PoisonTracker(),
            own_topic=own_topic,
            dlq_topic=DLQ, logical_topics={COMMANDS: COMMANDS, COUNTER: COUNTER}, saga_field="order_id",
            routing=PartitionRouting({t: PARTITIONS for t in (COMMANDS, COUNTER, own_topic)}, "hub"),
            timer_topics=frozenset({COUNTER}),  # as if `counter` set timers: it writes TimerFired
        )
        self.offset = 0

    def receive(self, topic: str, event: Any, store: TransactionalStore, batch: Batch,
                key: bytes | None = None) -> None:
        self.offset += 1
        msg = Consumed(topic, P, self.offset, key, self.codec.encode(topic, event), [])
        self.processor.process(msg, store, batch)

    def command(self, command: AddNumber, store: TransactionalStore, batch: Batch) -> None:
        self.receive(COMMANDS, command, store, batch, key=command.hub.encode())

    def fire(self, store: TransactionalStore, now: datetime, batch: Batch) -> list[TimerFired]:
        return [self.processor.fire(timer, to_ms(now), P, store, batch)
                for timer in due_timers(store, to_ms(now), 100)]

    def written(self, since: int = 0) -> list[Any]:
        """The events produced (from record `since` on), decoded from their bytes."""
        return [self.codec.decode(r.value) for r in self.log.records[since:]]


def test_a_firing_writes_its_timer_fired_first_then_its_answer_to_the_timers_partition() -> None:
    worker, store, batch = Worker(), MemoryState(), Batch()
    store.begin()
    worker.command(add(HUB, 3), store, batch)  # counted 3; reminder due 3 minutes after T0
    [fired] = worker.fire(store, at(5), batch)

    records = worker.log.records[1:]
    assert [(r.topic, r.partition, r.key) for r in records] == [(OWN, P, HUB.encode())] * 2
    first, answer = worker.written(since=1)
    assert first == fired == TimerFired(
        event_id=fired.event_id, timer=reminder_timer(HUB), due=at(3), fired_at=at(5),
        data={"hub": HUB, "order_id": ORDER},
    )
    assert isinstance(answer, SumDoubled) and (answer.doubled, answer.causation_id) == (6, fired.event_id)
    assert pending_timer(store, reminder_timer(HUB)) == at(65)  # re-armed by the answer
    assert (batch.emitted, batch.timer_errors, batch.dead) == (3, 0, 0)


def test_a_timer_fired_record_carries_its_type_and_the_saga_id_its_data_holds() -> None:
    worker, store = Worker(), MemoryState()
    set_timer(store, "t", at(1), {"order_id": "order-42"})
    worker.fire(store, at(1), Batch())
    [record] = worker.log.records
    assert dict(record.headers) == {"event_type": b"choreo.timers.TimerFired", "order_id": b"order-42"}


def test_a_firing_retried_after_a_crash_gets_the_same_event_id() -> None:
    """The id is derived from name and due time, so what a retried firing decides has the same ids."""
    one, two = Worker(), Worker()
    states = [MemoryState(), MemoryState()]
    for state in states:
        set_timer(state, "t", at(1))
    [a], [b] = one.fire(states[0], at(2), Batch()), two.fire(states[1], at(3), Batch())
    assert a.event_id == b.event_id


@pytest.mark.parametrize(("data", "key"), [
    ({"hub": HUB}, HUB.encode()),
    ({"hub": ELSEWHERE}, None),  # a service bug, never to stop the firing: no key
    ({}, None),
])
def test_a_timer_fired_is_keyed_by_its_datas_key_only_when_that_key_is_on_its_partition(
    data: dict[str, str], key: bytes | None
) -> None:
    worker, store, batch = Worker(), MemoryState(), Batch()
    set_timer(store, "t", at(1), data)
    worker.fire(store, at(1), batch)
    assert [(r.topic, r.partition, r.key) for r in worker.log.records] == [(OWN, P, key)]
    assert pending_timer(store, "t") is None and batch.timer_errors == 0


@pytest.mark.parametrize("failing", ["decide", "evolve"])
def test_a_firing_whose_answer_fails_is_recorded_alone_and_its_answers_writes_are_undone(
    store: Any, failing: str
) -> None:
    worker, batch = Worker(), Batch()
    store.begin()
    worker.command(add(HUB, 3, fail=failing), store, batch)  # the batch's earlier work stays
    worker.fire(store, at(5), batch)

    [record] = worker.log.records[1:]
    [fired] = worker.written(since=1)
    assert (record.partition, record.key, type(fired)) == (P, HUB.encode(), TimerFired)
    assert fired.data["fail"] == failing
    assert pending_timer(store, reminder_timer(HUB)) is None  # removed, and not re-armed
    assert store.get("reminded", HUB) is None  # the answer's evolve wrote this, then raised
    assert store.get("totals", HUB) == {"total": 3}
    assert (batch.emitted, batch.timer_errors, batch.dead) == (2, 1, 0)


def test_rebuilding_from_the_records_a_worker_wrote_gives_its_state_back(tmp_path: Path) -> None:
    """What restore and `rebuild --verify` rely on: state = fold(evolve, own log), firings too."""
    worker = Worker()
    live = PartitionStore(tmp_path / "live.sqlite")
    steps: list[tuple[list[AddNumber], datetime]] = [
        ([add(HUB, 1), add(HUB2, 2, fail="decide")], at(0)),  # a batch of commands, nothing due
        ([], at(5)),  # both fire: one answered and re-armed, one failing, recorded alone
        ([add(HUB, 30, minutes=6)], at(7)),  # moves HUB's re-armed timer to 36 minutes
        ([], at(40)),
    ]
    for commands, now in steps:
        live.begin()
        batch = Batch()
        for command in commands:
            worker.command(command, live, batch)
        worker.fire(live, now, batch)
        live.commit()
    assert sum(type(e) is TimerFired for e in worker.written()) == 3
    assert pending_timer(live, reminder_timer(HUB)) == at(100)

    rebuilt = PartitionStore(tmp_path / "rebuilt.sqlite")
    rebuilt.begin()
    for event in worker.written():
        REMINDER.evolve(rebuilt, event)
    rebuilt.commit()
    assert list(rebuilt.dump()) == list(live.dump())
    assert rebuilt.state_hash() == live.state_hash()


def test_another_services_timer_fired_on_an_input_is_skipped_not_decided_nor_dead_lettered() -> None:
    worker, store, batch = Worker(), MemoryState(), Batch()
    store.begin()
    theirs = DueTimer("their-timer", ms(1), {"hub": HUB}).fired(ms(2))
    worker.receive(COUNTER, theirs, store, batch)  # keyless, as a TimerFired without a key is
    assert worker.log.records == [] and (batch.emitted, batch.dead) == (0, 0)
    assert store.dump() == MemoryState().dump()
    # Where another type it does not subscribe to is dead-lettered:
    worker.receive(COUNTER, SumDoubled("e-1", HUB, T0, None, 2), store, batch, key=HUB.encode())
    assert [r.topic for r in worker.log.records] == [DLQ] and batch.dead == 1


def test_a_timer_fired_on_an_input_whose_writer_sets_no_timers_is_dead_lettered() -> None:
    """A commands topic holds no firings: a TimerFired there is a stray record, not bookkeeping."""
    worker, store, batch = Worker(), MemoryState(), Batch()
    theirs = DueTimer("their-timer", ms(1), {"hub": HUB}).fired(ms(2))
    worker.receive(COMMANDS, theirs, store, batch, key=HUB.encode())
    assert [r.topic for r in worker.log.records] == [DLQ] and (batch.emitted, batch.dead) == (0, 1)


# -- 6. TimerFiring: when it looks, how much it fires per batch --------------------------------------


class Firings:
    """TimerFiring's `fire` (RecordProcessor.fire in a worker): applies each firing as its
    TimerFired record would, and notes (partition, timer, now_ms)."""

    def __init__(self) -> None:
        self.fired: list[tuple[int, str, int]] = []

    def __call__(self, timer: DueTimer, now_ms: int, partition: int, store: TransactionalStore,
                 batch: Batch) -> TimerFired:
        fired = timer.fired(now_ms)
        apply_fired(store, fired)
        self.fired.append((partition, timer.name, now_ms))
        return fired

    def names(self) -> list[tuple[int, str]]:
        return [(p, name) for p, name, _ in self.fired]


@dataclass
class FiringRig:
    timers: TimerFiring
    fire: Firings
    wall: FakeClock  # what a firing's time comes from
    clock: FakeClock  # what the check interval is measured on


def firing_rig(stores: dict[int, Any], now: datetime, per_partition: int = 200,
               check_every_s: float = 0.5) -> FiringRig:
    fire, wall, clock = Firings(), FakeClock(now.timestamp()), FakeClock()
    timers = TimerFiring(stores, fire, check_every_s, per_partition, wall=wall, clock=clock)
    return FiringRig(timers, fire, wall, clock)


def test_due_is_no_while_nothing_is_due_and_the_stores_are_read_again_only_after_the_interval() -> None:
    stores = {0: MemoryState()}
    set_timer(stores[0], "t", at(1))
    rig = firing_rig(stores, now=T0)
    assert not rig.timers.due()  # due a minute from now
    rig.wall.advance(120)  # the wall passes its due time...
    assert not rig.timers.due()  # ...but the stores are not read again before the interval
    rig.clock.advance(0.5)
    assert rig.timers.due()


def test_a_timer_cancelled_or_moved_by_an_earlier_firing_of_the_batch_does_not_fire() -> None:
    """Both were read as due at the start of the batch; the first firing's answer cancels one
    and moves the other: as a worker must, the batch fires neither (fire_due agrees)."""
    stores = {0: MemoryState()}
    for name in ("a", "b", "c"):
        set_timer(stores[0], name, at(0))

    class CancellingFirings(Firings):
        def __call__(self, timer: DueTimer, now_ms: int, partition: int, store: TransactionalStore,
                     batch: Batch) -> TimerFired:
            if timer.name == "a":  # what a's answer would do in its evolve
                cancel_timer(store, "b")
                set_timer(store, "c", at(30))
            return super().__call__(timer, now_ms, partition, store, batch)

    fire, wall, clock = CancellingFirings(), FakeClock(at(1).timestamp()), FakeClock()
    timers = TimerFiring(stores, fire, 0.5, wall=wall, clock=clock)
    timers.fire_into(batch := Batch())
    assert fire.names() == [(0, "a")] and batch.timers_fired == 1
    assert pending_timer(stores[0], "c") == at(30)


def test_a_timer_due_after_a_batch_fired_waits_for_the_check_interval() -> None:
    stores = {0: MemoryState()}
    set_timer(stores[0], "a", at(0))
    rig = firing_rig(stores, now=at(1))
    rig.timers.fire_into(first := Batch())
    set_timer(stores[0], "b", at(0))  # set (already due) by a record of the next batch
    rig.timers.fire_into(second := Batch())
    assert (first.timers_fired, second.timers_fired) == (1, 0)
    assert not rig.timers.due()
    rig.clock.advance(0.5)
    assert rig.timers.due()
    rig.timers.fire_into(Batch())
    assert rig.fire.names() == [(0, "a"), (0, "b")]
    assert [now for _, _, now in rig.fire.fired] == [ms(1)] * 2  # the wall's time, in ms


def test_a_backlog_fires_per_partition_timers_per_batch_and_the_rest_on_the_next_turns() -> None:
    stores = {0: MemoryState(), 1: MemoryState()}
    for i in range(5):
        set_timer(stores[0], f"p0-{i}", at(i))
    set_timer(stores[1], "p1-0", at(0))
    rig = firing_rig(stores, now=at(10), per_partition=2)
    batches = [Batch() for _ in range(4)]
    rig.timers.fire_into(batches[0])
    assert rig.fire.names() == [(0, "p0-0"), (0, "p0-1"), (1, "p1-0")]
    assert rig.timers.due()  # more are waiting: no check interval before the next turn
    for batch in batches[1:]:
        rig.timers.fire_into(batch)  # the clock does not move
    assert rig.fire.names()[3:] == [(0, "p0-2"), (0, "p0-3"), (0, "p0-4")]
    assert [b.timers_fired for b in batches] == [3, 2, 1, 0]
    assert not rig.timers.due()


def test_each_firing_records_its_lateness_and_the_gauges_what_is_left() -> None:
    stores = {0: MemoryState()}
    for name, minutes in [("a", 0), ("b", 1), ("c", 1.25), ("later", 30)]:
        set_timer(stores[0], name, at(minutes))
    rig = firing_rig(stores, now=at(1.5), per_partition=2)
    rig.timers.fire_into(batch := Batch())
    assert batch.timer_lateness == [90.0, 30.0]
    assert rig.timers.overdue_s == 15.0  # "c", left for the next turn
    assert rig.timers.pending == 2


def test_only_stores_with_due_timers_join_a_batch_their_records_did_not_begin() -> None:
    calls: list[str] = []
    stores = {p: RecordingStore(p, calls) for p in (0, 1, 2)}
    set_timer(stores[0], "due-0", at(0))
    set_timer(stores[1], "due-1", at(0))
    set_timer(stores[2], "later", at(60))
    rig = firing_rig(stores, now=at(1))
    batch = Batch()
    stores[0].begin()
    batch.stores[0] = stores[0]  # as the commit protocol does for a record of partition 0
    calls.clear()
    rig.timers.fire_into(batch)
    assert calls == ["store[1] begin"]
    assert batch.stores == {0: stores[0], 1: stores[1]}
    assert rig.fire.names() == [(0, "due-0"), (1, "due-1")]


def test_the_pending_gauge_counts_the_timers_left_after_the_batch_fired_some(store: Any) -> None:
    for i in range(3):
        set_timer(store, f"t{i}", at(i))
    rig = firing_rig({0: store}, now=at(10), per_partition=2)
    rig.timers.fire_into(Batch())
    assert len(rig.fire.fired) == 2
    assert rig.timers.pending == 1


# -- the commit protocol with timers (the fakes of test_commit_protocol) ----------------------------


def rig_with_timers() -> tuple[Rig, list[TimerFired], FakeClock]:
    """test_commit_protocol's Rig (partitions 0 and 1), firing through a real RecordProcessor
    into its TransactionalOutput; returns it, the firings in order, and the interval's clock."""
    rig = Rig()
    processor = Worker(output=rig.output, own_topic=RIG_OWN).processor
    fired: list[TimerFired] = []

    def fire(timer: DueTimer, now_ms: int, p: int, store: TransactionalStore, batch: Batch) -> TimerFired:
        fired.append(processor.fire(timer, now_ms, p, store, batch))
        return fired[-1]

    clock = FakeClock()
    rig.protocol.timers = TimerFiring(rig.stores, fire, 0.5, wall=FakeClock(at(5).timestamp()),
                                      clock=clock)
    return rig, fired, clock


def test_a_batch_of_firings_alone_commits_its_partitions_positions_and_passes_the_timers_fault_point(
) -> None:
    """No record was read, yet the transaction carries the firing partition's input positions
    with the group's generation: a zombie that lost the partition is refused by the broker,
    where a transaction without offsets would commit its firing beside the new owner's."""
    rig, fired, _ = rig_with_timers()
    rig.stores[0].put("totals", HUB, {"total": 2})
    _arm(rig.stores[0], HUB, at(1))
    rig.calls.clear()
    outcome = rig.protocol.commit([])
    assert outcome.committed and outcome.batch.timers_fired == 1
    assert rig.calls == [
        "begin_transaction",
        "store[0] begin",
        f"produce {RIG_OWN}[0]",  # the TimerFired
        f"produce {RIG_OWN}[0]",  # its answer
        "send_offsets_to_transaction",
        "flush",
        "fault timers_fired",
        "fault before_kafka_commit",
        "commit_transaction",
        "fault after_kafka_commit",
        "store[0] commit checkpoint=102",
    ]
    # Only partition 0 fired; its input position is where the last commit left it.
    assert [offsets for offsets, _meta in rig.producer.sent_offsets] == [
        [(RIG_INPUT, 0, rig.consumer.committed_offsets[0])]]
    assert [f.timer for f in fired] == [reminder_timer(HUB)]
    assert pending_timer(rig.stores[0], reminder_timer(HUB)) == at(65)


def test_an_idle_partition_without_a_position_fences_its_firing_with_its_committed_offset() -> None:
    """librdkafka has no position for a partition read nothing from since the assignment (the
    idle ones, where timers fire alone): the committed offset stands in, so the fence holds."""
    rig, fired, _ = rig_with_timers()
    _arm(rig.stores[0], HUB, at(1))
    rig.consumer.position = lambda partitions: [  # type: ignore[method-assign]
        TopicPartition(tp.topic, tp.partition, -1001) for tp in partitions]
    assert rig.protocol.commit([]).committed and len(fired) == 1
    assert [offsets for offsets, _meta in rig.producer.sent_offsets] == [
        [(RIG_INPUT, 0, rig.consumer.committed_offsets[0])]]


def test_a_firing_whose_transaction_aborts_is_undone_and_fires_again_with_the_same_id() -> None:
    rig, fired, clock = rig_with_timers()
    _arm(rig.stores[0], HUB, at(1))
    rig.failures.add("commit_transaction", abortable())
    assert not rig.protocol.commit([]).committed
    assert pending_timer(rig.stores[0], reminder_timer(HUB)) == at(1)  # rolled back: still set
    clock.advance(0.5)
    outcome = rig.protocol.commit([])
    assert outcome.committed and outcome.batch.timers_fired == 1
    assert pending_timer(rig.stores[0], reminder_timer(HUB)) is None
    assert len(fired) == 2 and fired[0] == fired[1]
