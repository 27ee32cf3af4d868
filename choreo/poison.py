"""Poison isolation: no single input record can stop its partition.

Three ways a record can make every attempt at its batch fail, and what happens to it:
1. Kafka refuses one of its outputs for what it is (too large, invalid). When the refusal names
   one input, that input is blamed at once. The broker refuses a whole produce request, so a
   refusal often names every input of the request: then the batch is taken apart, one record
   per batch, and the record that is refused alone is blamed.
2. Its batch aborts again and again with no culprit named: after `isolate_after` aborts in a row
   the worker processes one record per batch; a record that fails alone `isolate_after` times
   with an error that is not about the cluster (a timeout, a dead broker, a moving coordinator)
   is blamed.
3. A blamed record is dead-lettered on the next attempt, with the reason, instead of being
   processed; the batch around it goes through.

Cluster trouble is never blamed on a record: dead-lettering valid input because a broker is
down would lose it from the saga. The worker's health signal covers that case instead.
"""

from __future__ import annotations

from collections import OrderedDict

from confluent_kafka import KafkaError

Coordinates = tuple[str, int, int]  # topic, partition, offset of an input record

# Kafka refuses the record itself: retrying the same bytes can never succeed.
RECORD_ERROR_CODES = frozenset({
    KafkaError.MSG_SIZE_TOO_LARGE,  # librdkafka's local check and the broker's answer
    KafkaError.INVALID_MSG_SIZE,
    KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.INVALID_RECORD,
    KafkaError.INVALID_MSG,
    KafkaError.INVALID_TIMESTAMP,
    KafkaError._INVALID_ARG,
    KafkaError._BAD_MSG,
    KafkaError.POLICY_VIOLATION,
})

# The cluster, not the record: a dead or paused broker, a moving leader or coordinator, a
# transaction that was aborted under us. Retrying later is right; blaming the record is not.
CLUSTER_ERROR_CODES = frozenset({
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError._TIMED_OUT_QUEUE,
    KafkaError._RESOLVE,
    KafkaError._WAIT_COORD,
    KafkaError._STATE,
    KafkaError._PREV_IN_PROGRESS,
    KafkaError._CONFLICT,
    KafkaError._PURGE_QUEUE,
    KafkaError._PURGE_INFLIGHT,
    KafkaError._DESTROY,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError._OUTDATED,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.CONCURRENT_TRANSACTIONS,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.KAFKA_STORAGE_ERROR,
    KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
    KafkaError.UNKNOWN_PRODUCER_ID,
    KafkaError.INVALID_TXN_STATE,
})

_REMEMBERED = 10_000  # blamed records remembered (oldest forgotten first); poison is rare


def is_record_error(err: KafkaError) -> bool:
    """Kafka refused this record for what it is."""
    return err.code() in RECORD_ERROR_CODES


def is_cluster_error(err: KafkaError) -> bool:
    """The failure is the cluster's (retry later), not the record's."""
    return bool(err.retriable()) or err.code() in CLUSTER_ERROR_CODES


class PoisonTracker:
    """Which inputs are blamed, and whether the worker is processing one record per batch."""

    def __init__(self, isolate_after: int = 3) -> None:
        self.isolate_after = isolate_after
        self._blamed: OrderedDict[Coordinates, str] = OrderedDict()
        self._aborts_in_row = 0
        self._isolate_left = 0  # single-record batches still to run after a batch was taken apart
        self._alone_failures: dict[Coordinates, int] = {}

    @property
    def isolating(self) -> bool:
        """True while batches should hold one record each."""
        return self._aborts_in_row >= self.isolate_after or self._isolate_left > 0

    def reason_for(self, record: Coordinates) -> str | None:
        """Why this input must be dead-lettered instead of processed, or None."""
        return self._blamed.get(record)

    def blame(self, record: Coordinates, reason: str) -> None:
        self._blamed[record] = reason
        self._blamed.move_to_end(record)
        while len(self._blamed) > _REMEMBERED:
            self._blamed.popitem(last=False)

    def committed(self) -> None:
        self._aborts_in_row = 0
        self._isolate_left = max(0, self._isolate_left - 1)
        self._alone_failures.clear()

    def aborted(
        self,
        size: int,
        alone: Coordinates | None,
        err: KafkaError | None,
        refused: dict[Coordinates, str] | None = None,
    ) -> None:
        """A batch of `size` records aborted. `alone` is its record when it held one, `err` the
        Kafka error, `refused` the inputs whose outputs Kafka refused (with the reason)."""
        self._aborts_in_row += 1
        if refused:
            if len(refused) == 1:
                (record, reason), = refused.items()
                self.blame(record, f"Kafka refused an event it caused: {reason}")
            else:
                self._isolate_left = max(self._isolate_left, size)
            return
        if alone is None or err is None or is_cluster_error(err):
            return
        failures = self._alone_failures.get(alone, 0) + 1
        self._alone_failures[alone] = failures
        if failures >= self.isolate_after or is_record_error(err):
            self.blame(alone, f"its batch failed {failures} time(s) with it alone: {err.str()}")
