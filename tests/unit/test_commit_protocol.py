"""The commit protocol without a broker: the order of its calls, and what each failure leads to.

docs/adr/0005-exactly-once-worker.md: begin the Kafka transaction and the stores' transactions,
process the records, send the offsets, flush, commit Kafka, and only then commit SQLite with the
checkpoint. Fakes record every call in one list, so each test reads as the sequence it expects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from choreo.exceptions import (
    FencedError,
    RegistryUnavailableError,
    SchemaNotRegisteredError,
    StoreDamagedError,
    StoreError,
)
from choreo.kafka.messages import Consumed
from choreo.kafka.turns import TakingTurns
from choreo.runtime import commit, renewal
from choreo.runtime.batch import Batch
from choreo.runtime.commit import CommitProtocol
from choreo.runtime.faults import FaultInjector
from choreo.runtime.outputs import TransactionalOutput
from choreo.runtime.renewal import ProducerRenewal
from choreo.runtime.watchdog import NoWatchdog, Watchdog
from choreo.testing import MemoryState
from tests.support.fake_clock import FakeClock

INPUT, OWN, DLQ = "in", "own", "own.dlq"
GROUP_METADATA = object()


def retriable(code: int = KafkaError._TIMED_OUT) -> KafkaException:
    return KafkaException(KafkaError(code, "try again", retriable=True))


def abortable(code: int = KafkaError._STATE) -> KafkaException:
    return KafkaException(KafkaError(code, "abort it", txn_requires_abort=True))


def fatal(code: int = KafkaError.PRODUCER_FENCED) -> KafkaException:
    return KafkaException(KafkaError(code, "fenced", fatal=True))


class FakeMessage:
    """A delivered record, as far as a delivery report reads one."""

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class Failures:
    """Exceptions a fake raises, per call name, one per call, in order."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.queued: dict[str, list[BaseException]] = {}

    def add(self, name: str, *errors: BaseException) -> None:
        self.queued.setdefault(name, []).extend(errors)

    def call(self, name: str) -> None:
        self.calls.append(name)
        queued = self.queued.get(name)
        if queued:
            raise queued.pop(0)


class FakeProducer:
    """A transactional producer: outputs are delivered (with own-topic offsets) on flush."""

    def __init__(self, calls: list[str], failures: Failures) -> None:
        self.calls, self.failures = calls, failures
        self.next_offset: dict[tuple[str, int], int] = {}
        self.pending: list[tuple[Callable[..., None] | None, FakeMessage]] = []
        self.delivery_errors: list[KafkaError] = []  # handed to the next deliveries, in order
        self.undelivered = 0  # what flush() reports as still queued
        self.sent_offsets: list[tuple[list[tuple[str, int, int]], object]] = []

    def init_transactions(self, timeout: float) -> None:
        self.failures.call("init_transactions")

    def begin_transaction(self) -> None:
        self.failures.call("begin_transaction")

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                partition: int = -1, headers: Any = None, on_delivery: Any = None) -> None:
        self.failures.call(f"produce {topic}[{partition}]")
        offset = self.next_offset.get((topic, partition), 100)
        self.next_offset[(topic, partition)] = offset + 1
        self.pending.append((on_delivery, FakeMessage(topic, partition, offset)))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        self.failures.call("flush")
        for on_delivery, msg in self.pending:
            err = self.delivery_errors.pop(0) if self.delivery_errors else None
            if on_delivery is not None:
                on_delivery(err, msg)
        self.pending.clear()
        return self.undelivered

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], metadata: object,
                                    timeout: float) -> None:
        self.failures.call("send_offsets_to_transaction")
        self.sent_offsets.append(([(tp.topic, tp.partition, tp.offset) for tp in offsets], metadata))

    def commit_transaction(self, timeout: float) -> None:
        self.failures.call("commit_transaction")

    def abort_transaction(self, timeout: float) -> None:
        self.failures.call("abort_transaction")


class FakeConsumer:
    def __init__(self, calls: list[str], failures: Failures, committed: dict[int, int]) -> None:
        self.calls, self.failures = calls, failures
        self.committed_offsets = committed  # input partition -> committed offset (-1001: none)

    def consumer_group_metadata(self) -> object:
        return GROUP_METADATA

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(INPUT, p) for p in sorted(self.committed_offsets)]

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.failures.call("committed")
        return [TopicPartition(tp.topic, tp.partition, self.committed_offsets[tp.partition])
                for tp in partitions]

    def seek(self, tp: TopicPartition) -> None:
        self.calls.append(f"seek {tp.topic}[{tp.partition}]@{tp.offset}")

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Where reading goes on: here, the committed offsets (nothing read since)."""
        return [TopicPartition(tp.topic, tp.partition, self.committed_offsets[tp.partition])
                for tp in partitions]


class RecordingStore(MemoryState):
    """The memory store, logging its transaction calls; `commit` can be made to fail."""

    def __init__(self, partition: int, calls: list[str]) -> None:
        super().__init__()
        self.partition, self.calls = partition, calls
        self.commit_error: StoreError | None = None
        self.write_error: StoreError | None = None

    def begin(self) -> None:
        self.calls.append(f"store[{self.partition}] begin")
        super().begin()

    def write_back(self) -> None:
        if self.write_error is not None:
            self.calls.append(f"store[{self.partition}] write_back failed")
            raise self.write_error

    def commit(self, next_offset: int | None = None) -> None:
        self.calls.append(f"store[{self.partition}] commit checkpoint={next_offset}")
        if self.commit_error is not None:
            raise self.commit_error
        super().commit(next_offset)

    def rollback(self) -> None:
        if self._at_begin is not None:
            self.calls.append(f"store[{self.partition}] rollback")
        super().rollback()

    def replace_damaged(self) -> Any:
        self.calls.append(f"store[{self.partition}] replace_damaged")
        return super().replace_damaged()


class RecordingFaults(FaultInjector):
    """Unarmed fault injection that logs each kill point the protocol passes."""

    def __init__(self, calls: list[str]) -> None:
        super().__init__({})
        self.calls = calls

    def at(self, point: str) -> None:
        self.calls.append(f"fault {point}")
        super().at(point)


class Rig:
    """A CommitProtocol wired to fakes, with two assigned partitions (0 and 1)."""

    def __init__(self, carry_s: float = 0.0, watchdog: Watchdog | None = None) -> None:
        self.calls: list[str] = []
        self.failures = Failures(self.calls)
        self.producer = FakeProducer(self.calls, self.failures)
        self.consumer = FakeConsumer(self.calls, self.failures, committed={0: 5, 1: -1001})
        self.stores = {p: RecordingStore(p, self.calls) for p in (0, 1)}
        self.faults = RecordingFaults(self.calls)
        self.turns = TakingTurns([self.producer])  # type: ignore[list-item]
        self.renewal = ProducerRenewal(
            self.turns, self.new_producers, watchdog or NoWatchdog(), self.faults, 1.0
        )
        self.output = TransactionalOutput(self.turns, NoWatchdog())
        self.process_error: dict[int, BaseException] = {}  # input offset -> raised by "decide"
        self.silent: set[int] = set()  # input offsets whose decision is to emit nothing
        self.clock = FakeClock()
        self.assignments = 0  # what the worker's AssignedStores.changes counts
        self.protocol = CommitProtocol(
            renewal=self.renewal,
            consumer=self.consumer,  # type: ignore[arg-type]
            stores=self.stores, process=self.process, restore=self.restore,
            faults=self.faults, watchdog=watchdog or NoWatchdog(), flush_timeout_s=1.0,
            transactional_id="svc-0", clock=self.clock, carry_s=carry_s,
            assignment=lambda: self.assignments,
        )

    def process(self, msg: Any, store: Any, batch: Batch) -> None:
        """A service that records each input in its state and emits one event per input."""
        topic, p, offset = msg.coordinates
        if offset in self.process_error:
            raise self.process_error[offset]
        if offset in self.silent:
            return
        store.put("seen", f"{offset:06d}", {"offset": offset})
        self.output.produce(OWN, p, b"k", b"event", [], batch, cause=(topic, p, offset))
        batch.emitted += 1

    def restore(self, partition: int) -> None:
        self.calls.append(f"restore {partition}")

    def new_producers(self) -> list[Any]:
        self.calls.append("new producers")
        return [FakeProducer(self.calls, self.failures)]

    def committed_state(self, p: int) -> list[str]:
        return [key for key, _ in self.stores[p].scan("seen")]


def records(*coordinates: tuple[int, int]) -> list[Consumed]:
    return [Consumed(INPUT, p, offset, None, b"v", []) for p, offset in coordinates]


# -- a good commit ----------------------------------------------------------------------------------


def test_a_good_batch_commits_kafka_first_then_the_stores_with_their_checkpoints() -> None:
    rig = Rig()
    outcome = rig.protocol.commit(records((0, 5), (1, 0), (0, 6)))

    assert outcome.committed and outcome.error is None
    assert rig.calls == [
        "begin_transaction",
        "store[0] begin",
        "store[1] begin",
        f"produce {OWN}[0]",
        f"produce {OWN}[1]",
        f"produce {OWN}[0]",
        "send_offsets_to_transaction",
        "flush",
        "fault before_kafka_commit",
        "commit_transaction",
        "fault after_kafka_commit",
        "store[0] commit checkpoint=102",  # own offsets 100 and 101 delivered: next is 102
        "store[1] commit checkpoint=101",
    ]
    # The next input offset of each partition, with the group metadata (KIP-447 fencing).
    assert rig.producer.sent_offsets == [([(INPUT, 0, 7), (INPUT, 1, 1)], GROUP_METADATA)]
    assert rig.committed_state(0) == ["000005", "000006"]
    assert rig.stores[0].checkpoint() == 102
    assert outcome.batch.emitted == 3 and outcome.batch.size == 3
    assert rig.faults.batches == 1  # counts towards CHOREO_FAULT_AFTER_BATCHES


def test_records_of_a_partition_no_longer_owned_are_neither_processed_nor_committed() -> None:
    rig = Rig()
    outcome = rig.protocol.commit(records((0, 5), (7, 3)))
    assert outcome.committed
    assert rig.producer.sent_offsets == [([(INPUT, 0, 6)], GROUP_METADATA)]
    assert f"produce {OWN}[7]" not in rig.calls


def test_a_partition_end_marker_is_skipped() -> None:
    rig = Rig()
    eof = Consumed(INPUT, 1, 9, None, None, [], error=KafkaError(KafkaError._PARTITION_EOF))
    outcome = rig.protocol.commit([*records((0, 5)), eof])
    assert outcome.committed
    assert rig.producer.sent_offsets == [([(INPUT, 0, 6)], GROUP_METADATA)]


def test_a_store_without_outputs_commits_without_moving_its_checkpoint() -> None:
    rig = Rig()
    rig.stores[0].commit(next_offset=42)
    rig.calls.clear()
    rig.protocol.process = lambda msg, store, batch: store.put("seen", "x", {})
    assert rig.protocol.commit(records((0, 5))).committed
    assert "store[0] commit checkpoint=None" in rig.calls
    assert rig.stores[0].checkpoint() == 42


# -- failures before the Kafka commit: abort, roll back, rewind ------------------------------------


def abort_tail(calls: list[str]) -> list[str]:
    """What a correct abort looks like, from the rollback on."""
    return calls[calls.index("store[0] rollback"):]


ABORTED = ["store[0] rollback", "abort_transaction", "committed", f"seek {INPUT}[0]@5",
           f"seek {INPUT}[1]@{OFFSET_BEGINNING}"]


def assert_aborted(rig: Rig, outcome: Any) -> None:
    assert not outcome.committed
    assert abort_tail(rig.calls) == ABORTED
    assert "commit_transaction" not in rig.calls
    assert not any(c.startswith("store[0] commit") for c in rig.calls)
    assert rig.committed_state(0) == []  # SQLite rolled back
    assert rig.faults.batches == 0


def test_undelivered_outputs_after_flush_abort_the_batch() -> None:
    rig = Rig()
    rig.producer.undelivered = 1
    outcome = rig.protocol.commit(records((0, 5)))
    assert_aborted(rig, outcome)
    assert outcome.error is not None and outcome.error.code() == KafkaError._TIMED_OUT


def test_a_failed_delivery_aborts_the_batch_and_blames_the_input_it_names() -> None:
    rig = Rig()
    rig.producer.delivery_errors = [KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large")]
    outcome = rig.protocol.commit(records((0, 5)))
    assert_aborted(rig, outcome)
    assert outcome.error is not None and outcome.error.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert set(outcome.batch.refused) == {(INPUT, 0, 5)}


def test_an_output_refused_at_produce_time_aborts_and_blames_its_input() -> None:
    rig = Rig()
    rig.failures.add(f"produce {OWN}[0]", KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)))
    outcome = rig.protocol.commit(records((0, 5)))
    assert_aborted(rig, outcome)
    assert set(outcome.batch.refused) == {(INPUT, 0, 5)}
    assert "flush" not in rig.calls


class DeadlineBook(NoWatchdog):
    """Writes down each guarded call's deadline (its timeout plus the grace that applies)."""

    def __init__(self, grace_s: float) -> None:
        super().__init__(grace_s=grace_s)
        self.deadlines: dict[str, float] = {}

    @contextmanager
    def guard(self, name: str, timeout_s: float, grace_s: float | None = None) -> Iterator[None]:
        self.deadlines[name] = timeout_s + (self.grace_s if grace_s is None else grace_s)
        yield


RENEWED = ["store[0] rollback", "new producers", "init_transactions", "committed",
           f"seek {INPUT}[0]@5", f"seek {INPUT}[1]@{OFFSET_BEGINNING}"]


def test_a_failed_send_offsets_aborts_the_batch_on_new_producers_and_the_next_commits() -> None:
    # A retry on the same producer is what wedges after a coordinator moved (librdkafka #5511):
    # the batch is redone on new producers, whose init_transactions aborts the old transaction.
    rig = Rig()
    old = rig.turns.current
    rig.failures.add("send_offsets_to_transaction", retriable())
    outcome = rig.protocol.commit(records((0, 5)))

    assert not outcome.committed
    assert abort_tail(rig.calls) == RENEWED
    assert "abort_transaction" not in rig.calls and "commit_transaction" not in rig.calls
    assert rig.committed_state(0) == []
    assert outcome.error is not None and outcome.error.code() == KafkaError._TIMED_OUT
    assert "send_offsets_to_transaction failed" in outcome.why
    assert rig.turns.current is not old and rig.renewal.renewals == 1

    assert rig.protocol.commit(records((0, 5))).committed
    assert rig.calls.count("send_offsets_to_transaction") == 2


def test_an_abortable_send_offsets_error_is_redone_on_new_producers() -> None:
    rig = Rig()
    rig.failures.add("send_offsets_to_transaction", abortable())
    outcome = rig.protocol.commit(records((0, 5)))
    assert abort_tail(rig.calls) == RENEWED
    assert outcome.error is not None and outcome.error.txn_requires_abort()


class WedgingProducer(FakeProducer):
    """send_offsets_to_transaction never returns, as librdkafka's can after a coordinator moved."""

    def __init__(self, calls: list[str], failures: Failures) -> None:
        super().__init__(calls, failures)
        self.released = threading.Event()

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], metadata: object,
                                    timeout: float) -> None:
        self.calls.append("send_offsets_to_transaction (wedged)")
        self.released.wait(60)


def test_a_wedged_send_offsets_is_left_behind_and_the_batch_redone_on_new_producers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(commit, "SEND_OFFSETS_S", 0.05)
    rig = Rig()
    wedged = WedgingProducer(rig.calls, rig.failures)
    rig.turns.replace([wedged])  # type: ignore[list-item]
    try:
        outcome = rig.protocol.commit(records((0, 5)))

        assert not outcome.committed
        assert "send_offsets_to_transaction has not returned" in outcome.why
        assert abort_tail(rig.calls) == RENEWED
        assert rig.turns.current is not wedged
        assert rig.protocol.commit(records((0, 5))).committed  # no restart needed
    finally:
        wedged.released.set()


def test_once_wedged_calls_pile_up_the_call_runs_under_the_watchdog_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each wedged call holds a thread and an old producer; past max_wedged the worker stops
    # leaving them behind, and a call that never returns ends the process (watchdog.py).
    monkeypatch.setattr(commit, "SEND_OFFSETS_S", 0.05)
    book = DeadlineBook(grace_s=30.0)
    rig = Rig(watchdog=book)
    rig.renewal.max_wedged = 1
    wedged = WedgingProducer(rig.calls, rig.failures)
    rig.turns.replace([wedged])  # type: ignore[list-item]
    try:
        assert not rig.protocol.commit(records((0, 5))).committed
        assert "send_offsets_to_transaction" not in book.deadlines  # waited in a thread
        assert rig.protocol.commit(records((0, 5))).committed
        # Its timeout doubled after the wedge, and the grace is its own, whatever
        # CHOREO_WATCHDOG_GRACE_S says.
        assert book.deadlines["send_offsets_to_transaction"] == 0.1 + commit.SEND_OFFSETS_GRACE_S
    finally:
        wedged.released.set()


class TimeoutBook(FakeProducer):
    """Writes down the timeout each send_offsets_to_transaction was given."""

    def __init__(self, calls: list[str], failures: Failures, timeouts: list[float]) -> None:
        super().__init__(calls, failures)
        self.timeouts = timeouts

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], metadata: object,
                                    timeout: float) -> None:
        self.timeouts.append(timeout)
        super().send_offsets_to_transaction(offsets, metadata, timeout)


def test_the_timeout_doubles_after_each_failure_in_a_row_and_resets_once_a_call_returns() -> None:
    # A cluster that is slow rather than gone must still get its offsets through: each redo
    # waits twice as long as the last, up to a bound.
    rig = Rig()
    timeouts: list[float] = []
    rig.renewal.make = lambda: [TimeoutBook(rig.calls, rig.failures, timeouts)]  # type: ignore[list-item]
    rig.turns.replace(rig.renewal.make())
    rig.failures.add("send_offsets_to_transaction", *[retriable()] * 5)
    for _ in range(6):
        rig.protocol.commit(records((0, 5)))
    assert rig.protocol.commit(records((0, 5))).committed
    base = commit.SEND_OFFSETS_S
    doubled = [min(base * 2**strikes, renewal.MAX_TIMEOUT_S) for strikes in range(6)]
    assert timeouts == [*doubled, base]
    assert timeouts[1] == 2 * base and timeouts[5] == renewal.MAX_TIMEOUT_S


def test_a_lost_session_has_the_next_batch_start_on_new_producers() -> None:
    rig = Rig()
    rig.renewal.on_session_lost()
    assert rig.protocol.commit(records((0, 5))).committed
    assert rig.calls[:3] == ["new producers", "init_transactions", "begin_transaction"]
    assert rig.protocol.commit(records((0, 6))).committed
    assert rig.calls.count("new producers") == 1


@pytest.mark.parametrize("error", [fatal(), fatal(KafkaError._FENCED),
                                   KafkaException(KafkaError(KafkaError.FENCED_INSTANCE_ID))])
def test_send_offsets_fatal_error_rolls_back_and_stops_the_worker(error: KafkaException) -> None:
    rig = Rig()
    rig.failures.add("send_offsets_to_transaction", error)
    with pytest.raises(FencedError, match="svc-0 can no longer write"):
        rig.protocol.commit(records((0, 5)))
    assert rig.calls[-1] == "store[0] rollback"
    assert "commit_transaction" not in rig.calls and "abort_transaction" not in rig.calls
    assert rig.committed_state(0) == []


def test_commit_transaction_failure_aborts_and_rolls_back_the_stores() -> None:
    rig = Rig()
    rig.failures.add("commit_transaction", abortable())
    outcome = rig.protocol.commit(records((0, 5), (1, 0)))
    assert not outcome.committed
    assert rig.calls[rig.calls.index("commit_transaction"):] == [
        "commit_transaction", "store[0] rollback", "store[1] rollback", "abort_transaction",
        "committed", f"seek {INPUT}[0]@5", f"seek {INPUT}[1]@{OFFSET_BEGINNING}",
    ]
    assert rig.committed_state(0) == [] and rig.committed_state(1) == []
    assert "fault after_kafka_commit" not in rig.calls


def test_a_commit_that_times_out_is_retried_as_the_same_commit() -> None:
    rig = Rig()
    rig.failures.add("commit_transaction", retriable())
    outcome = rig.protocol.commit(records((0, 5)))
    assert outcome.committed
    tail = rig.calls[rig.calls.index("fault before_kafka_commit"):]
    assert tail == ["fault before_kafka_commit", "commit_transaction", "commit_transaction",
                    "fault after_kafka_commit", "store[0] commit checkpoint=101"]
    assert rig.calls.count("begin_transaction") == 1


def test_commit_transaction_fatal_error_stops_the_worker_with_stores_rolled_back() -> None:
    rig = Rig()
    rig.failures.add("commit_transaction", fatal())
    with pytest.raises(FencedError):
        rig.protocol.commit(records((0, 5)))
    assert rig.calls[-1] == "store[0] rollback"
    assert rig.committed_state(0) == []


def test_a_fatal_abort_stops_the_worker() -> None:
    rig = Rig()
    rig.failures.add("commit_transaction", abortable())
    rig.failures.add("abort_transaction", fatal())
    with pytest.raises(FencedError, match="abort failed"):
        rig.protocol.commit(records((0, 5)))
    assert rig.committed_state(0) == []


def test_an_abort_without_committed_offsets_fails_loudly() -> None:
    # The loop cannot rewind without them: the worker exits and its successor starts from Kafka.
    rig = Rig()
    rig.producer.undelivered = 1
    rig.failures.add("committed", abortable())
    with pytest.raises(KafkaException):
        rig.protocol.commit(records((0, 5)))
    assert not any(c.startswith("seek") for c in rig.calls)


@pytest.mark.parametrize("error, why", [
    (RegistryUnavailableError("down"), "the schema registry is unavailable"),
    (SchemaNotRegisteredError("not registered"), "a schema is not registered"),
    (StoreError("disk full", 0), "a store failed"),
])
def test_failures_that_are_not_the_records_fault_abort_without_blame(error: Exception, why: str) -> None:
    rig = Rig()
    rig.process_error[5] = error
    outcome = rig.protocol.commit(records((0, 5)))
    assert_aborted(rig, outcome)
    assert outcome.error is None and why in outcome.why
    assert outcome.batch.refused == {}


def test_a_store_found_damaged_mid_batch_is_healed_and_restored_after_the_abort() -> None:
    rig = Rig()
    rig.process_error[5] = StoreDamagedError("not a database", 0)
    outcome = rig.protocol.commit(records((0, 5)))
    assert not outcome.committed
    assert rig.calls[-3:] == [f"seek {INPUT}[1]@{OFFSET_BEGINNING}", "store[0] replace_damaged", "restore 0"]


def test_a_store_write_failing_before_the_kafka_commit_aborts_the_batch() -> None:
    # The store keeps the batch's writes in memory; they reach SQLite before the Kafka commit,
    # so a full disk aborts the batch (to be retried) instead of surfacing after Kafka committed.
    rig = Rig()
    rig.stores[0].write_error = StoreError("database or disk is full", 0)
    outcome = rig.protocol.commit(records((0, 5)))
    assert_aborted(rig, outcome)
    assert rig.calls.index("store[0] write_back failed") < rig.calls.index("abort_transaction")
    assert "disk is full" in outcome.why


def test_a_failing_input_record_aborts_the_batch() -> None:
    rig = Rig()
    broken = Consumed(INPUT, 1, 3, None, None, [], error=KafkaError(KafkaError._TRANSPORT, "broker down"))
    outcome = rig.protocol.commit([*records((0, 5)), broken])
    assert_aborted(rig, outcome)
    assert outcome.error is not None and outcome.error.code() == KafkaError._TRANSPORT


def test_an_unexpected_error_rolls_back_the_stores_and_propagates() -> None:
    rig = Rig()
    rig.process_error[5] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        rig.protocol.commit(records((0, 5)))
    assert rig.calls[-1] == "store[0] rollback"
    assert "abort_transaction" not in rig.calls


def test_a_failed_begin_transaction_touches_no_store() -> None:
    rig = Rig()
    rig.failures.add("begin_transaction", abortable())
    with pytest.raises(KafkaException):
        rig.protocol.commit(records((0, 5)))
    assert rig.calls == ["begin_transaction"]


# -- failures after the Kafka commit: nothing to abort, the store catches up -----------------------


def test_store_commit_failure_after_the_kafka_commit_rolls_back_and_restores_that_store() -> None:
    rig = Rig()
    rig.stores[0].commit_error = StoreError("disk I/O error", 0)
    outcome = rig.protocol.commit(records((0, 5), (1, 0)))
    # Kafka has committed, so the batch has: the store is behind its log as after a crash, and
    # restore brings it up from its checkpoint. The other store commits as usual.
    assert outcome.committed
    assert rig.calls[rig.calls.index("fault after_kafka_commit"):] == [
        "fault after_kafka_commit",
        "store[0] commit checkpoint=101",
        "store[0] rollback",
        "restore 0",
        "store[1] commit checkpoint=101",
    ]
    assert "abort_transaction" not in rig.calls
    assert rig.committed_state(0) == [] and rig.stores[0].checkpoint() == 0
    assert rig.committed_state(1) == ["000000"]


def test_a_store_damaged_at_its_commit_is_replaced_before_it_is_restored() -> None:
    rig = Rig()
    rig.stores[1].commit_error = StoreDamagedError("malformed", 1)
    outcome = rig.protocol.commit(records((1, 0)))
    assert outcome.committed
    assert rig.calls[-4:] == [
        "store[1] commit checkpoint=101", "store[1] rollback", "store[1] replace_damaged", "restore 1",
    ]


# -- batches that write nothing: their offsets ride with a later transaction -------------------------


def carrying_rig() -> Rig:
    rig = Rig(carry_s=0.1)
    rig.silent = set(range(10, 20))
    return rig


def test_a_batch_that_writes_nothing_sends_no_offsets_and_its_commit_sends_nothing() -> None:
    rig = carrying_rig()
    outcome = rig.protocol.commit(records((0, 10), (1, 11)))
    assert outcome.committed and outcome.carried
    assert "send_offsets_to_transaction" not in rig.calls
    assert "flush" not in rig.calls
    assert rig.producer.sent_offsets == []
    # begin and commit with nothing produced and no offsets: librdkafka sends no request.
    assert rig.calls.count("commit_transaction") == 1
    assert rig.protocol.carried == {(INPUT, 0): 11, (INPUT, 1): 12}
    assert rig.calls[-1] == "fault offsets_carried"
    assert rig.faults.batches == 0  # not a commit for CHOREO_FAULT_AFTER_BATCHES


def test_carried_offsets_ride_with_the_next_transaction_and_newer_offsets_win() -> None:
    rig = carrying_rig()
    rig.protocol.commit(records((0, 10), (1, 11)))
    outcome = rig.protocol.commit(records((0, 5)))  # emits an event
    assert outcome.committed and not outcome.carried
    assert rig.producer.sent_offsets == [([(INPUT, 0, 6), (INPUT, 1, 12)], GROUP_METADATA)]
    assert not rig.protocol.carrying


def test_carried_offsets_are_committed_once_they_have_waited_the_commit_interval() -> None:
    rig = carrying_rig()
    rig.protocol.commit(records((0, 10)))
    rig.clock.advance(0.05)
    assert rig.protocol.commit(records((0, 11))).carried  # still within the interval
    rig.clock.advance(0.06)
    outcome = rig.protocol.commit(records((0, 12)))  # writes nothing, but the first waited 0.11 s
    assert not outcome.carried
    assert rig.producer.sent_offsets == [([(INPUT, 0, 13)], GROUP_METADATA)]


def test_an_empty_batch_commits_what_is_carried() -> None:
    """What the worker runs when its input has gone quiet."""
    rig = carrying_rig()
    rig.protocol.commit(records((1, 10)))
    outcome = rig.protocol.commit([])
    assert outcome.committed and not outcome.carried
    assert rig.producer.sent_offsets == [([(INPUT, 1, 11)], GROUP_METADATA)]
    assert not rig.protocol.carrying


def test_an_abort_drops_the_carried_offsets_and_rewinds_to_the_committed_ones() -> None:
    rig = carrying_rig()
    rig.protocol.commit(records((0, 10)))
    rig.producer.undelivered = 1
    outcome = rig.protocol.commit(records((0, 5)))
    assert not outcome.committed
    assert f"seek {INPUT}[0]@5" in rig.calls  # the carried record is read again
    assert not rig.protocol.carrying


def test_an_assignment_change_drops_the_carried_offsets() -> None:
    """The partitions may be another member's now: their committed offsets are not ours to move."""
    rig = carrying_rig()
    rig.protocol.commit(records((1, 10)))
    rig.assignments += 1
    rig.protocol.commit(records((0, 5)))
    assert rig.producer.sent_offsets == [([(INPUT, 0, 6)], GROUP_METADATA)]


def test_a_dead_lettered_record_is_no_batch_that_writes_nothing() -> None:
    rig = carrying_rig()
    rig.protocol.process = lambda msg, store, batch: _dead_letter(rig, msg, batch)
    outcome = rig.protocol.commit(records((0, 10)))
    assert outcome.committed and not outcome.carried
    assert rig.producer.sent_offsets == [([(INPUT, 0, 11)], GROUP_METADATA)]


def _dead_letter(rig: Rig, msg: Any, batch: Batch) -> None:
    rig.output.produce(DLQ, msg.partition, b"k", b"letter", [], None)
    batch.dead += 1


def test_without_a_commit_interval_nothing_is_carried() -> None:
    rig = Rig(carry_s=0.0)
    rig.silent = {10}
    outcome = rig.protocol.commit(records((0, 10)))
    assert not outcome.carried
    assert rig.producer.sent_offsets == [([(INPUT, 0, 11)], GROUP_METADATA)]


@pytest.mark.parametrize(("error", "renews"), [
    (KafkaError(KafkaError._ALL_BROKERS_DOWN), True),
    (KafkaError(KafkaError._TRANSPORT), False),  # one broker: the others still answer
    (KafkaError(KafkaError._RESOLVE), False),
])
def test_the_next_batch_starts_on_new_producers_once_every_broker_was_unreachable(
    error: KafkaError, renews: bool
) -> None:
    rig = Rig()
    rig.renewal.on_client_error(error)
    assert rig.protocol.commit(records((0, 5))).committed
    assert ("new producers" in rig.calls) is renews


class LateStart(RecordingFaults):
    """Holds the helper thread of send_offsets_to_transaction back until released, as a starved
    machine can: it then runs only after the worker has given up on it and renewed."""

    def __init__(self, calls: list[str]) -> None:
        super().__init__(calls)
        self.released = threading.Event()

    def wedge(self, call: str) -> None:
        if call == "send_offsets_to_transaction" and not self.released.is_set():
            self.released.wait(60)


def test_a_late_helper_thread_sends_to_its_own_batchs_producer_never_to_the_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(commit, "SEND_OFFSETS_S", 0.05)
    rig = Rig()
    late = LateStart(rig.calls)
    rig.renewal.faults = late
    old = rig.turns.current
    assert not rig.protocol.commit(records((0, 5))).committed
    new = rig.turns.current
    assert new is not old

    late.released.set()  # the abandoned call runs now, after the renewal
    (thread,) = rig.renewal._wedged
    thread.join(10)
    assert old.sent_offsets == [([(INPUT, 0, 6)], GROUP_METADATA)]  # type: ignore[attr-defined]
    assert new.sent_offsets == []  # type: ignore[attr-defined]


def test_new_producers_fenced_at_their_initialisation_stop_the_worker_as_fenced() -> None:
    rig = Rig()
    rig.failures.add("send_offsets_to_transaction", retriable())
    rig.failures.add("init_transactions", fatal())
    with pytest.raises(FencedError, match="new producers could not be initialised"):
        rig.protocol.commit(records((0, 5)))
    assert rig.committed_state(0) == []


def test_a_renewal_whose_initialisation_fails_is_still_asked_for() -> None:
    # The error ends the worker (its successor initialises again); nothing pretends it renewed.
    rig = Rig()
    rig.renewal.on_session_lost()
    rig.failures.add("init_transactions", KafkaException(KafkaError(KafkaError._TIMED_OUT)))
    with pytest.raises(KafkaException):
        rig.protocol.commit(records((0, 5)))
    assert rig.renewal.pending and rig.renewal.renewals == 0
    assert "begin_transaction" not in rig.calls
