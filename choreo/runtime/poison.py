"""Poison isolation: no single input record can stop its partition.

Three ways a record can make every attempt at its batch fail, and what happens to it:
1. Kafka refuses one of its outputs for what it is (too large, invalid). When the refusal names
   one input, that input is blamed at once. The broker refuses a whole produce request, so a
   refusal often names every input of the request: then the batch is taken apart, one record
   per batch, and the record that is refused alone is blamed.
2. Its batch aborts again and again with no culprit named: after `isolate_after` aborts in a row
   the worker processes one record per batch; a record that Kafka refuses for what it is while
   it is alone in its batch is blamed. Any other error (the cluster, authorisation, a clock)
   is never blamed on a record: the worker's health signal reports it, and the worker exits to
   be restarted when no batch can commit for long.
3. A blamed record is dead-lettered on the next attempt, with the reason, instead of being
   processed; the batch around it goes through.

Only errors that name the record itself are blamed (an allow-list): dead-lettering valid input
because a broker is down or an ACL changed would lose it from the saga.
"""

from __future__ import annotations

from collections import OrderedDict

from confluent_kafka import KafkaError

Coordinates = tuple[str, int, int]  # topic, partition, offset of an input record

# Kafka refuses the record itself: retrying the same bytes can never succeed. (Not
# INVALID_TIMESTAMP: a worker whose clock is off would blame every record it touches.)
RECORD_ERROR_CODES = frozenset({
    KafkaError.MSG_SIZE_TOO_LARGE,  # librdkafka's local check and the broker's answer
    KafkaError.INVALID_MSG_SIZE,
    KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.INVALID_RECORD,
    KafkaError.INVALID_MSG,
    KafkaError._BAD_MSG,
    KafkaError.POLICY_VIOLATION,
})

_REMEMBERED = 10_000  # blamed records remembered (oldest forgotten first); poison is rare


def is_record_error(err: KafkaError) -> bool:
    """Kafka refused this record for what it is."""
    return err.code() in RECORD_ERROR_CODES


class PoisonTracker:
    """Which inputs are blamed, and whether the worker is processing one record per batch."""

    def __init__(self, isolate_after: int = 3) -> None:
        self.isolate_after = isolate_after
        self._blamed: OrderedDict[Coordinates, str] = OrderedDict()
        self._aborts_in_row = 0
        self._isolate_left = 0  # single-record batches still to run after a batch was taken apart

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
        if alone is None or err is None or not is_record_error(err):
            return
        self.blame(alone, f"Kafka refused it alone in its batch: {err.name()}: {err.str()}")
