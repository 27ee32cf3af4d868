"""Records on a service's own topic that the service never wrote: how they are told apart, and
what replaying the topic (restore, rebuild, rebuild --verify) does with them.

A service writes its own topic only with events it `emits`, encoded by the codec. A record that
does not decode, or decodes to a type the service does not emit, was written by someone else
(a stray producer, a tool), so it is not part of the service's state: the replay skips it with
one ERROR line, a copy in the service's DLQ and a count, instead of failing for ever on it.

What cannot be told from a record: who produced it. Kafka does not hand the producer id to a
consumer, and headers are anyone's to set, so a well-formed event of a type the service emits is
applied whoever wrote it.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import Counter

from choreo.exceptions import ChoreoError, DecodeError
from choreo.kafka import clients
from choreo.kafka.messages import coordinates
from choreo.runtime.dead_letters import dead_letter

log = logging.getLogger("choreo.runtime.restore")

# The `reason` label of a skipped record.
UNDECODABLE = "undecodable"
NOT_EMITTED = "not_emitted"

_FLUSH_S = 30.0
_DEAD_LETTER_LIMIT = clients.MAX_RECORD_BYTES - clients.RECORD_FRAMING_BYTES


class ForeignRecordError(DecodeError):
    """A record on a service's own topic that the service did not write; `reason` labels why."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def own_event(decode: Callable[[bytes | None], Any], emits: tuple[type, ...], value: bytes | None) -> Any:
    """The service's own event in `value`, or ForeignRecordError when the service cannot have
    written it. The one rule of restore, rebuild and rebuild --verify, so the three agree.

    A registry that does not answer is no reason to skip (RegistryUnavailableError passes
    through): the record may well be the service's own.
    """
    try:
        event = decode(value)
    except DecodeError as e:
        raise ForeignRecordError(f"cannot be decoded: {e}", UNDECODABLE) from e
    if type(event) not in emits:
        raise ForeignRecordError(
            f"{type(event).SCHEMA} is not an event type the service emits", NOT_EMITTED
        )
    return event


class DeadLetterCopyError(ChoreoError):
    """A skipped record's copy did not reach the DLQ: the checkpoint must not move past it."""


class SkippedRecords:
    """Where a replay reports the foreign records it skips: an ERROR line each, a copy in the
    DLQ (when `producer` is given: rebuild --verify writes nothing) and the counter (when given).

    The copy is not transactional with the store: `flush()` runs before each store commit that
    moves the checkpoint past a skipped record, so a copy is never lost, but one may be written
    again when the process dies between the flush and the commit, or when the topic is replayed
    from the start (a rebuild, a healed store).
    """

    def __init__(
        self,
        service: str,
        dlq_topic: str | None = None,
        producer: Callable[[], Producer] | None = None,
        counter: Counter | None = None,
    ) -> None:
        self.service = service
        self.dlq_topic = dlq_topic
        self._make_producer = producer if dlq_topic is not None else None
        self._producer: Producer | None = None  # made at the first skip: most replays skip none
        self._counter = counter
        self._failed: KafkaError | None = None
        self.counts: Tally[int] = Tally()  # partition -> records skipped

    def skip(self, msg: Message, error: ForeignRecordError) -> None:
        topic, p, offset = coordinates(msg)
        log.error(
            "skipping %s[%d]@%d while restoring %s: %s; it is not the service's own event, so "
            "not part of its state%s", topic, p, offset, self.service, error,
            f" (copied to {self.dlq_topic})" if self._make_producer else "",
        )
        self.counts[p] += 1
        if self._counter is not None:
            self._counter.labels(self.service, str(p), error.reason).inc()
        if self._make_producer is None or self.dlq_topic is None:
            return
        if self._producer is None:
            self._producer = self._make_producer()
        letter = dead_letter(msg, error, _DEAD_LETTER_LIMIT)
        headers: list[tuple[str, str | bytes | None]] = list(letter.headers)
        # Same partition number as the record, as the worker's own dead letters.
        self._producer.produce(
            self.dlq_topic, value=letter.value, key=letter.key, partition=p, headers=headers,
            on_delivery=self._delivered,
        )
        self._producer.poll(0)

    def flush(self) -> None:
        """Wait until every copy is in the DLQ; DeadLetterCopyError when one is not."""
        if self._producer is None:
            return
        left = self._producer.flush(_FLUSH_S)
        failed, self._failed = self._failed, None
        if left or failed is not None:
            why = failed.str() if failed is not None else f"{left} not delivered in {_FLUSH_S:.0f} s"
            raise DeadLetterCopyError(
                f"could not copy a skipped record of {self.service} to {self.dlq_topic}: {why}"
            )

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None and self._failed is None:
            self._failed = err
