"""The commit protocol of one batch: docs/adr/0005-exactly-once-worker.md, steps 1 to 5.

Kafka commits first, SQLite second. A crash before the Kafka commit leaves nothing committed
(the next `init_transactions` aborts the open transaction); a crash between the two leaves the
store one batch behind its checkpoint, which the restore on the next assignment repairs from the
own topic. So the order of the calls in `CommitProtocol.commit` is the whole guarantee, and it
takes every collaborator (producer, consumer, stores, the per-record step, the restore, fault
injector, watchdog, clock) by injection so that tests can check that order without a broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from choreo.exceptions import (
    FencedError,
    RegistryUnavailableError,
    SchemaNotRegisteredError,
    StoreDamagedError,
    StoreError,
)
from choreo.kafka.messages import Consumed
from choreo.kafka.turns import TransactionalProducer
from choreo.runtime.batch import Batch, RecordRefused, TransactionalStore
from choreo.runtime.calls import guarded_call, note_if_slow
from choreo.runtime.faults import FaultInjector
from choreo.runtime.poison import Coordinates
from choreo.runtime.renewal import ProducerRenewal, RenewProducers
from choreo.runtime.timer_firing import TimerFiring
from choreo.runtime.triage import is_fatal
from choreo.runtime.watchdog import Watchdog

log = logging.getLogger(__name__)

# Timeouts handed to librdkafka's blocking calls; the watchdog adds its grace on top, since
# librdkafka does not always keep them (see choreo/runtime/watchdog.py).
BEGIN_TIMEOUT_S = 5.0
TXN_CALL_S = 30.0
# send_offsets_to_transaction is two round trips (AddOffsetsToTxn to the transaction
# coordinator, TxnOffsetCommit to the group coordinator): milliseconds on a healthy cluster. It
# is also the call librdkafka is known to leave waiting for ever once the group coordinator is
# gone or has moved (issues #5456 and #5511, unfixed in 2.16): the wait for the coordinator has
# no timer. So it gets a short timeout of its own, runs with a bounded wait, and when it fails
# or overruns, the batch is redone on new producers (choreo/runtime/renewal.py): a retry on the
# same producer is what wedges. The timeout doubles after each such failure in a row (up to
# renewal.MAX_TIMEOUT_S), so a cluster that is merely slow still gets its calls through. Only
# when wedged calls pile up does it run under the watchdog again, with SEND_OFFSETS_GRACE_S
# whatever CHOREO_WATCHDOG_GRACE_S says.
SEND_OFFSETS_S = 1.5
SEND_OFFSETS_GRACE_S = 2.0

ProcessRecord = Callable[[Consumed, TransactionalStore, Batch], None]

# What fails a batch without stopping the worker: abort, roll back, rewind, try again.
_BATCH_FAILURES = (
    KafkaException, RecordRefused, RegistryUnavailableError, SchemaNotRegisteredError, StoreError,
    RenewProducers,
)


@dataclass
class BatchOutcome:
    """How a batch ended: committed, or aborted (and why, for the log and the poison tracker)."""

    batch: Batch
    committed: bool
    error: KafkaError | None = None  # the Kafka error that aborted it, when there was one
    why: str = ""
    commit_seconds: float = 0.0  # time spent in commit_transaction
    carried: bool = False  # it wrote nothing: its offsets wait for a later transaction


class CommitProtocol:
    """Runs one batch as one Kafka transaction plus one SQLite transaction per touched store."""

    def __init__(
        self,
        *,
        renewal: ProducerRenewal,
        consumer: Consumer,
        stores: Mapping[int, TransactionalStore],
        process: ProcessRecord,
        restore: Callable[[int], None],
        faults: FaultInjector,
        watchdog: Watchdog,
        flush_timeout_s: float,
        transactional_id: str = "",
        clock: Callable[[], float] = time.perf_counter,
        carry_s: float = 0.0,
        assignment: Callable[[], int] = lambda: 0,
        timers: TimerFiring | None = None,
    ) -> None:
        self.renewal = renewal  # replaces the producer's clients when a call fails or wedges
        # The renewal's producers: one object, whose clients a renewal swaps in place.
        self.producer: TransactionalProducer = renewal.producers
        self.consumer = consumer
        self.stores = stores  # the assigned partitions' stores; changes only between batches
        self.process = process
        self.restore = restore  # brings partition p's store up to its own topic again
        self.faults = faults
        self.watchdog = watchdog
        # Bounded: after the transaction timeout the broker aborts the transaction anyway.
        self.flush_timeout_s = flush_timeout_s
        self.transactional_id = transactional_id
        self.clock = clock
        # The offsets of batches that wrote nothing, waiting to ride with a later transaction:
        # at most `carry_s` after the first of them, and never across an assignment change
        # (`assignment` counts them), since the partitions may no longer be ours.
        self.carry_s = carry_s
        self.assignment = assignment
        self.carried: dict[tuple[str, int], int] = {}
        self.timers = timers  # fires the due timers of the assigned stores into each batch
        self._carried_since = 0.0
        self._carried_in = 0

    @property
    def carrying(self) -> bool:
        return bool(self.carried)

    def commit(self, msgs: list[Consumed]) -> BatchOutcome:
        """Run the batch; returns how it ended. Raises FencedError when this instance must stop."""
        batch = Batch(size=len(msgs))
        if self._carried_in != self.assignment():
            self.carried.clear()  # read again from the committed offsets by whoever owns them
        # 1. Consume: the loop hands over what one consume() returned. Rebalance callbacks run
        #    only inside consume(), so the stores cannot change while the batch runs.
        # 2. Begin the Kafka transaction, then BEGIN IMMEDIATE on each touched partition's store.
        #    New producers first, if the last batch or a lost session asked for them.
        self.renewal.renew_if_requested()
        self._call("begin_transaction", BEGIN_TIMEOUT_S, self.producer.begin_transaction)
        try:
            self._begin_stores(msgs, batch)
            # 3. Per record: decide, evolve inside a savepoint, produce the events to the own
            #    topic (or the record to the DLQ), all inside the transaction.
            self._process_records(msgs, batch)
            if self.timers is not None:
                self.timers.fire_into(batch)  # after the records: a timer they set may be due
            # The stores write the batch's state into their open SQLite transactions now, so a
            # failing write (disk full, I/O error) aborts the batch before Kafka commits it.
            self._write_back_stores(batch)
            carried = self._carry(batch)
            if carried:
                # Nothing produced and no offsets sent: this commit sends no request at all.
                commit_seconds = self._commit_transaction()
            else:
                # 4. send the consumed offsets (and any carried ones) to the transaction, flush
                #    (its delivery reports give the own-topic offsets), commit the transaction.
                #    The offsets go first: their two round trips to the coordinators then
                #    overlap the produce requests in flight.
                offsets = {**self.carried, **batch.positions} or self._fencing_offsets(batch)
                if offsets:
                    self._send_offsets(offsets)
                self._flush(batch)
                if batch.timers_fired:
                    self.faults.at("timers_fired")
                self.faults.at("before_kafka_commit")
                commit_seconds = self._commit_transaction()
                self.faults.at("after_kafka_commit")
                self.carried.clear()
        except _BATCH_FAILURES as e:
            return self._abort(batch, e)
        except BaseException:
            self._rollback_stores(batch)
            raise
        # 5. Only then COMMIT each store, with its checkpoint (the next own-topic offset) in the
        #    same SQLite transaction as the state it describes.
        self._commit_stores(batch)
        if carried:
            self.faults.at("offsets_carried")
        else:
            self.faults.batch_committed()
        return BatchOutcome(batch, committed=True, commit_seconds=commit_seconds, carried=carried)

    def _carry(self, batch: Batch) -> bool:
        """Keep this batch's offsets for a later transaction instead of committing one now?

        Only a batch that produced nothing (no event, no dead letter), so it changed no state
        either: reading its records again after a crash decides on a state that no commit of
        ours has changed since (any later commit takes these offsets along), so again nothing
        is produced. At low load most records a service reads are events of other services
        that concern it no further, and each would otherwise cost a transaction of its own.
        """
        if batch.emitted or batch.dead or not batch.positions or self.carry_s <= 0:
            return False
        now = self.clock()
        if not self.carried:
            self._carried_since, self._carried_in = now, self.assignment()
        elif now - self._carried_since >= self.carry_s:
            return False  # waited long enough: commit them with this batch's
        self.carried.update(batch.positions)
        return True

    # -- the steps --------------------------------------------------------------------------------

    def _begin_stores(self, msgs: list[Consumed], batch: Batch) -> None:
        for msg in msgs:
            if msg.error is not None:
                continue
            p = msg.partition
            store = self.stores.get(p)
            if store is not None and p not in batch.stores:
                store.begin()
                batch.stores[p] = store  # only once begun: these are what a failure rolls back

    def _process_records(self, msgs: list[Consumed], batch: Batch) -> None:
        for msg in msgs:
            err = msg.error
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(err)
            store = batch.stores.get(msg.partition)
            if store is None:  # a record of a partition we no longer own: its offset is not ours
                continue
            batch.positions[(msg.topic, msg.partition)] = msg.offset + 1
            self.process(msg, store, batch)

    def _write_back_stores(self, batch: Batch) -> None:
        for store in batch.stores.values():
            store.write_back()

    def _flush(self, batch: Batch) -> None:
        started = time.monotonic()
        with self.watchdog.guard("flush", self.flush_timeout_s):
            self.faults.wedge("flush")
            left = self.producer.flush(self.flush_timeout_s)
        note_if_slow("flush", started)
        if batch.delivery_error is not None:
            raise KafkaException(batch.delivery_error)
        if left:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{left} output(s) undelivered"))

    def _send_offsets(self, positions: dict[tuple[str, int], int]) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]

        # Both read here, in this thread: a helper thread that only got to run after its deadline
        # (a starved machine) must still send this batch's offsets to this batch's transaction,
        # never to whatever producer took over meanwhile. The group metadata is read per batch:
        # after a rebalance the old generation can never commit.
        producer = self.renewal.producers.current
        metadata = self.consumer.consumer_group_metadata()

        def send(timeout_s: float) -> None:
            producer.send_offsets_to_transaction(offsets, metadata, timeout_s)

        self.renewal.call("send_offsets_to_transaction", SEND_OFFSETS_S, send,
                          grace_s=SEND_OFFSETS_GRACE_S)

    def _fencing_offsets(self, batch: Batch) -> dict[tuple[str, int], int]:
        """For a batch of timer firings alone: the current positions of the inputs of the
        partitions that fired, committed again with the group's generation. They change nothing
        (every record before them is committed or carried), but the broker refuses them from an
        instance that lost those partitions in a rebalance it has not seen yet: without them such
        a zombie could commit a firing that the partitions' new owner commits too."""
        if not batch.stores:
            return {}
        mine = [tp for tp in self.consumer.assignment() if tp.partition in batch.stores]
        if not mine:
            return {}
        # The client's own books first (no broker call); a partition it has read nothing from
        # since the assignment has no position there: its committed offset is where it is.
        found = {(tp.topic, tp.partition): tp.offset for tp in self.consumer.position(mine)
                 if tp.offset >= 0}
        unread = [tp for tp in mine if (tp.topic, tp.partition) not in found]
        if unread:
            committed = self._call("committed", TXN_CALL_S, self.consumer.committed, unread, TXN_CALL_S)
            found |= {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}
        return found

    def _commit_transaction(self) -> float:
        started = self.clock()
        # A commit that times out is retried as the same commit, never re-sent in a new one.
        self._call("commit_transaction", TXN_CALL_S, self.producer.commit_transaction, TXN_CALL_S)
        return self.clock() - started

    def _commit_stores(self, batch: Batch) -> None:
        for p, store in batch.stores.items():
            try:
                store.commit(next_offset=batch.delivered.get(p))
            except StoreError as e:
                # Kafka has committed: nothing to abort. The store is left behind its log, as
                # after a crash here, and catches up from its checkpoint (healed if damaged).
                log.error("store commit after the Kafka commit failed: %s", e)
                store.rollback()
                if isinstance(e, StoreDamagedError):
                    store.replace_damaged()
                self.restore(p)

    # -- failure ------------------------------------------------------------------------------

    def _abort(self, batch: Batch, error: Exception) -> BatchOutcome:
        """The batch cannot commit: abort Kafka, roll back SQLite, rewind to the committed offsets."""
        kafka_error, why = self._triage(batch, error)
        log.warning("aborting the batch after %s", why)
        self.carried.clear()  # the rewind below reads their records again
        self._rollback_stores(batch)
        if isinstance(error, RenewProducers):
            # The new producers' init_transactions aborts what the old one left open.
            self.renewal.renew(why)
        else:
            self._abort_transaction()
        self._rewind()
        damaged = error.partition if isinstance(error, StoreDamagedError) else None
        if damaged is not None and damaged in self.stores:
            self._heal(damaged)
        return BatchOutcome(batch, committed=False, error=kafka_error, why=why)

    def _abort_transaction(self) -> None:
        try:
            self._call("abort_transaction", TXN_CALL_S, self.producer.abort_transaction, TXN_CALL_S)
        except KafkaException as e:
            if e.args[0].fatal():
                raise FencedError(f"abort failed with a fatal error: {e.args[0].str()}") from e
            raise

    def _triage(self, batch: Batch, error: Exception) -> tuple[KafkaError | None, str]:
        """The Kafka error to blame (if any) and why the batch failed; raises when fatal."""
        if isinstance(error, KafkaException):
            err: KafkaError = error.args[0]
            if is_fatal(err):
                self._rollback_stores(batch)
                raise FencedError(
                    f"{self.transactional_id} can no longer write ({err.name()}: {err.str()}); "
                    "another instance with the same id took over, or the producer hit a fatal error"
                ) from error
            return err, f"{err.name()}: {err.str()}"
        if isinstance(error, RenewProducers):
            return error.error, error.why
        if isinstance(error, RecordRefused):
            batch.refused[error.record] = error.err
            return error.err, f"{error.err.name()} for an output of {_at(error.record)}"
        if isinstance(error, RegistryUnavailableError):
            return None, f"the schema registry is unavailable ({error})"
        if isinstance(error, SchemaNotRegisteredError):
            # A deployment without `choreo schemas register`: the input is fine, so wait for it.
            log.error("%s; retrying the batch until the schema is registered", error)
            return None, "a schema is not registered"
        return None, f"a store failed ({error})"

    def _rewind(self) -> None:
        """Seek every assigned input back to its committed offset, so the batch is read again."""
        assignment = self.consumer.assignment()
        if not assignment:
            return
        # Without the committed offsets the loop cannot rewind: retried, and if it still fails
        # the worker exits and its successor reads from the committed offsets.
        committed = self._call(
            "committed", TXN_CALL_S, self.consumer.committed, assignment, TXN_CALL_S
        )
        for tp in committed:
            if tp.offset < 0:
                tp.offset = OFFSET_BEGINNING  # nothing committed yet
            self.consumer.seek(tp)

    def _heal(self, partition: int) -> None:
        """Replace a store found damaged mid-batch (already rolled back) and restore it."""
        self.stores[partition].replace_damaged()
        self.restore(partition)

    def _rollback_stores(self, batch: Batch) -> None:
        for store in batch.stores.values():
            store.rollback()

    def _call(self, name: str, timeout_s: float, fn: Callable[..., Any], *args: Any) -> Any:
        return guarded_call(self.watchdog, self.faults, name, timeout_s, fn, *args)


def _at(record: Coordinates) -> str:
    topic, p, offset = record
    return f"{topic}[{p}]@{offset}"
