"""Records on a service's own topic that the service never wrote: how they are told apart, and
what replaying the topic (restore, rebuild, rebuild --verify) does with them.

A service writes its own topic only with events it `emits`, encoded by the codec. A record the
service cannot have written is not part of its state: the replay skips it with one ERROR line, a
copy in the service's DLQ and a count, instead of failing for ever on it. That is a record

- that is no record at all: too short, a wrong magic byte, a malformed or truncated Avro body,
  trailing bytes (`undecodable`);
- that decodes to a type the installation places only on other topics: another service's event,
  or a command (`not_emitted`).

A record that may well be the service's own, but that this process cannot read now, is never
skipped: skipping it would drop real state for good. That is a schema id the registry does not
know (an emptied registry, or the worker pointed at another one), a schema the codec has no class
for or cannot resolve to its class (a rollback to a version that does not know a newer event
type), and a known type that travels on the own topic but that this version does not emit (one
dropped from `emits` by a release cannot be told from a stray record). The replay holds that
partition back instead (HeldBackError, see restore.py); a restore or rebuild after the cause is
fixed applies it. A registry that does not answer at all fails the replay, as before.

Only a person can tell such a record from real state, so only a person lets a replay past it:
`choreo rebuild <service> --partition P --skip-offset O` skips the records named, and only
records this rule holds back (check_skippable refuses any other offset, so an own event is never
skipped by mistake).

What cannot be told from a record: who produced it. Kafka does not hand the producer id to a
consumer, and headers are anyone's to set, so a well-formed event of a type the service emits is
applied whoever wrote it; and an event type moved from one service to another in a release would
make the old records look like the new owner's (a type is never moved: add a new one).
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from prometheus_client import Counter

from choreo.contract import Service
from choreo.domain import installation
from choreo.exceptions import ChoreoError, ConfigurationError, DecodeError, UnreadableSchemaError
from choreo.kafka import clients
from choreo.kafka.messages import Consumed, coordinates, produce_when_room
from choreo.runtime.dead_letters import dead_letter
from choreo.serde.codec import Codec

log = logging.getLogger("choreo.runtime.restore")

# The `reason` label of a skipped record.
UNDECODABLE = "undecodable"
NOT_EMITTED = "not_emitted"
SKIP_OFFSET = "skip_offset"  # held back by the rule, skipped because an operator named it

_FLUSH_S = 30.0
_QUEUE_WAIT_S = 0.1  # one wait for deliveries while the producer's local queue is full
_DEAD_LETTER_LIMIT = clients.MAX_RECORD_BYTES - clients.RECORD_FRAMING_BYTES


class ForeignRecordError(DecodeError):
    """A record on a service's own topic that the service did not write; `reason` labels why."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class HeldBackError(ChoreoError):
    """A record on a service's own topic that may be the service's own but cannot be applied by
    this process: its partition is held back, never skipped past it."""


def types_elsewhere(service: Service, services: Iterable[Service]) -> frozenset[type]:
    """The classes that `services` (the installation) place only on topics other than
    `service`'s own topic: commands and other services' events. One of them on the own topic was
    written by someone else. A class some service reads from the own topic is not among them,
    even when `service` does not emit it (any more)."""
    on_own: set[type] = set(service.emits)
    elsewhere: set[type] = set()
    for s in [service, *services]:
        for topic, classes in s.inputs.items():
            (on_own if topic == service.own_topic else elsewhere).update(classes)
        if s.own_topic != service.own_topic:
            elsewhere.update(s.emits)
    return frozenset(elsewhere - on_own)


def installed_types_elsewhere(service: Service) -> frozenset[type]:
    """types_elsewhere among the installed services, as the worker and rebuild use it."""
    return types_elsewhere(service, installation().services)


def not_own(decoded: object, elsewhere: frozenset[type]) -> ForeignRecordError | HeldBackError:
    """Why a record that is not one of the service's own events is not applied: `decoded` is
    what decoding it gave (an event of a type the service does not emit, or the DecodeError).
    ForeignRecordError: skip it; HeldBackError: hold its partition back. The one rule of
    restore, rebuild and rebuild --verify, so the three agree.

    Restore calls this only for such a record, so that an own event costs no call. A registry
    that does not answer is no DecodeError and never gets here: the replay fails instead.
    """
    if isinstance(decoded, UnreadableSchemaError):
        return HeldBackError(
            f"cannot be read by this process ({decoded}), but may be the service's own: is the "
            "worker pointed at the registry that wrote the log, and is it the version that did?"
        )
    if isinstance(decoded, DecodeError):
        return ForeignRecordError(f"cannot be decoded: {decoded}", UNDECODABLE)
    name = getattr(type(decoded), "SCHEMA", type(decoded).__name__)
    if type(decoded) in elsewhere:
        return ForeignRecordError(
            f"{name} is not an event type the service emits (it belongs on another topic)",
            NOT_EMITTED,
        )
    return HeldBackError(
        f"{name} is not an event type this version of the service emits, yet it may travel on "
        "its topic: written by another version of the service?"
    )


def skipped_by_operator(held_back: HeldBackError) -> ForeignRecordError:
    """A held-back record whose offset the operator named with --skip-offset: skip it."""
    return ForeignRecordError(f"named by --skip-offset ({held_back})", SKIP_OFFSET)


def skip_command(service: str, partition: int, offset: int) -> str:
    """The command that skips a held-back record: named in the hold-back's ERROR line and /readyz."""
    return f"choreo rebuild {service} --partition {partition} --skip-offset {offset}"


def check_skippable(
    consumer: Consumer, codec: Codec, service: Service, topic: str, partition: int,
    offsets: Iterable[int], elsewhere: frozenset[type], timeout_s: float = 30.0,
) -> None:
    """ConfigurationError (one sentence) unless every record at `offsets` of `topic[partition]`
    is one the rule holds back: an offset outside the partition, one holding no record a
    read_committed replay sees (a transaction marker, an aborted record), an own event (which
    is state) or a record skipped anyway is refused before anything is replaced."""
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    try:
        for offset in sorted(set(offsets)):
            where = f"{topic}[{partition}]@{offset}"
            if not low <= offset < high:
                raise ConfigurationError(
                    f"--skip-offset {offset} is outside {topic}[{partition}], whose records are "
                    f"at offsets {low} to {high - 1}"
                )
            msg = _record_at(consumer, TopicPartition(topic, partition, offset), timeout_s)
            if msg is None or msg.offset() != offset:
                raise ConfigurationError(
                    f"{where} is no record a replay reads (a transaction marker or an aborted "
                    "record), so there is nothing to skip"
                )
            try:
                decoded: object = codec.decode(msg.value())
            except DecodeError as e:
                decoded = e
            if type(decoded) in service.emits:
                raise ConfigurationError(
                    f"{where} is a {getattr(type(decoded), 'SCHEMA', type(decoded).__name__)}, an "
                    f"event {service.name} emits and part of its state: it is never skipped"
                )
            verdict = not_own(decoded, elsewhere)
            if isinstance(verdict, ForeignRecordError):
                raise ConfigurationError(
                    f"{where} is skipped without --skip-offset ({verdict}): name only records "
                    "that hold the partition back"
                )
    finally:
        consumer.unassign()


def _record_at(consumer: Consumer, tp: TopicPartition, timeout_s: float) -> Message | None:
    """The first record a read_committed consumer sees from `tp`'s offset; None at the end."""
    consumer.assign([tp])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=1, timeout=0.5):
            err = msg.error()
            if err is None:
                return msg
            if err.code() == KafkaError._PARTITION_EOF:
                return None
            if err.fatal():
                raise ConfigurationError(f"reading {tp.topic}[{tp.partition}] failed: {err.str()}")
    raise ConfigurationError(
        f"{tp.topic}[{tp.partition}]@{tp.offset} could not be read in {timeout_s:.0f} s"
    )


class DeadLetterCopyError(ChoreoError):
    """A skipped record's copy did not reach the DLQ: the checkpoint must not move past it."""


class SkippedRecords:
    """Where a replay reports the foreign records it skips: an ERROR line each, a copy in the
    DLQ (when `producer` is given: rebuild --verify writes nothing) and the counter (when given).

    The copy is not transactional with the store: `flush()` runs before each store commit that
    moves the checkpoint past a skipped record, so a copy is never lost, but one may be written
    again when the process dies between the flush and the commit, or when a healed store is
    restored from the start. `copied` (partition -> the offsets of own-topic records whose copy
    the DLQ already holds, asked once per partition at its first skip) lets a rebuild, which
    replays from the start every time, copy only what no replay copied before.
    """

    def __init__(
        self,
        service: str,
        dlq_topic: str | None = None,
        producer: Callable[[], Producer] | None = None,
        counter: Counter | None = None,
        copied: Callable[[int], Iterable[int]] | None = None,
    ) -> None:
        self.service = service
        self.dlq_topic = dlq_topic
        self._make_producer = producer if dlq_topic is not None else None
        self._producer: Producer | None = None  # made at the first skip: most replays skip none
        self._counter = counter
        self._copied = copied
        self._in_dlq: dict[int, frozenset[int]] = {}  # partition -> offsets copied before
        self._failed: KafkaError | None = None
        self.counts: Tally[int] = Tally()  # partition -> records skipped
        self.copies: Tally[int] = Tally()  # partition -> copies written by this replay

    def skip(self, msg: Message, error: ForeignRecordError) -> None:
        topic, p, offset = coordinates(msg)
        self.counts[p] += 1
        if self._counter is not None:
            self._counter.labels(self.service, str(p), error.reason).inc()
        copy = self._make_producer is not None and not self._copied_before(p, offset)
        log.error(
            "skipping %s[%d]@%d while restoring %s: %s; it is not the service's own event, so "
            "not part of its state%s", topic, p, offset, self.service, error,
            "" if self._make_producer is None
            else f" (copied to {self.dlq_topic})" if copy else f" (already in {self.dlq_topic})",
            extra={"partition": p},
        )
        if copy:
            self._copy(msg, error, p)

    def _copied_before(self, partition: int, offset: int) -> bool:
        if self._copied is None:
            return False
        if partition not in self._in_dlq:
            self._in_dlq[partition] = frozenset(self._copied(partition))
        return offset in self._in_dlq[partition]

    def _copy(self, msg: Message, error: ForeignRecordError, partition: int) -> None:
        assert self._make_producer is not None and self.dlq_topic is not None
        if self._producer is None:
            self._producer = self._make_producer()
        letter = dead_letter(Consumed.of(msg), error, _DEAD_LETTER_LIMIT)
        headers: list[tuple[str, str | bytes | None]] = list(letter.headers)
        # Copies are flushed only when the checkpoint moves (every few thousand records): a topic
        # with more foreign records than the producer's local queue holds fills it first, so wait
        # for deliveries to make room, within the flush's bound.
        try:
            # Same partition number as the record, as the worker's own dead letters.
            produce_when_room(
                self._producer, _FLUSH_S, _QUEUE_WAIT_S, topic=self.dlq_topic, value=letter.value,
                key=letter.key, partition=partition, headers=headers, on_delivery=self._delivered,
            )
        except BufferError as e:
            raise DeadLetterCopyError(
                f"could not copy a skipped record of {self.service} to {self.dlq_topic}: "
                f"the producer's queue stayed full for {_FLUSH_S:.0f} s"
            ) from e
        self.copies[partition] += 1
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
