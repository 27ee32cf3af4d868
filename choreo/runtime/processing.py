"""One input record inside a batch: decide, evolve, produce its events, or dead-letter it.

Anything the record itself causes (bytes that do not decode, a type the service does not take,
a key on another partition than murmur2 gives it (routing.py), an exception from `decide` or
`evolve`, an output too large for Kafka) sends it to the service's
DLQ inside the same transaction, so its partition goes on. Failures that are not the record's
fault (the schema registry, a store) fail the whole batch instead, to be tried again.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import cache
from typing import Any

from choreo.contract import Service
from choreo.exceptions import (
    ChoreoError,
    DecodeError,
    EncodeError,
    RegistryUnavailableError,
    SchemaNotRegisteredError,
    StoreError,
)
from choreo.kafka import clients
from choreo.kafka.messages import EVENT_TYPE_HEADER, Consumed, Headers
from choreo.runtime.batch import Batch, TransactionalStore
from choreo.runtime.dead_letters import dead_letter, record_size
from choreo.runtime.outputs import TransactionalOutput
from choreo.runtime.poison import PoisonTracker
from choreo.runtime.retried import retried_input_topic
from choreo.runtime.routing import MisroutedRecordError, PartitionRouting
from choreo.serde.codec import Codec
from choreo.timers import DueTimer, TimerFired

log = logging.getLogger(__name__)

OUTPUT_LIMIT = clients.MAX_RECORD_BYTES - clients.RECORD_FRAMING_BYTES


class OutputTooLargeError(ChoreoError):
    """An event the service decided on is larger than a Kafka record may be."""


class BlamedRecordError(ChoreoError):
    """An input record that made its batch fail, dead-lettered so its partition can go on."""


class RecordProcessor:
    """Turns one input record into own events (or a dead letter) in the batch's transaction."""

    def __init__(
        self,
        service: Service,
        codec: Codec,
        output: TransactionalOutput,
        poison: PoisonTracker,
        own_topic: str,
        dlq_topic: str,
        logical_topics: dict[str, str],
        saga_field: str,
        routing: PartitionRouting,
        timer_topics: frozenset[str] = frozenset(),
    ) -> None:
        self.service = service
        self.codec = codec
        self.output = output
        self.poison = poison
        self.own_topic = own_topic
        self.dlq_topic = dlq_topic
        self.logical_topics = logical_topics  # physical (prefixed) input topic -> logical name
        # Known once: the header lookup of retried records must cost the inputs' records nothing.
        self.retry_topic = next(
            (physical for physical, logical in logical_topics.items()
             if logical == service.retry_topic), None,
        )
        # The domain's name for the saga id field: copied into a header of every output so that
        # operators find a saga's records (dead letters too) without decoding them.
        self.saga_field = saga_field
        # Inputs must sit on their key's partition; outputs are keyed by the same field.
        self.routing = routing
        self._type_headers: dict[type, tuple[str, bytes]] = {}  # event class -> its header
        # Logical topics whose writer fires timers: their TimerFired records are bookkeeping to
        # skip. Anywhere else (a commands topic, say) one is a stray record, dead-lettered.
        self.timer_topics = timer_topics

    def process(self, msg: Consumed, store: TransactionalStore, batch: Batch) -> None:
        topic, p = msg.topic, msg.partition
        blamed = self.poison.reason_for(msg.coordinates)
        if blamed is not None:
            self.dead_letter(msg, BlamedRecordError(blamed), batch)
            return
        try:
            event = self.codec.decode(msg.value)
            # A record from the retry topic is decided as if it came from the input it names.
            logical = (retried_input_topic(self.service, msg) if topic == self.retry_topic
                       else self.logical_topics[topic])
            if type(event) is TimerFired and logical in self.timer_topics:
                return  # another service's timer bookkeeping on its own topic: nothing to decide
            if not self.service.accepts(logical, type(event)):
                raise DecodeError(
                    f"{type(event).SCHEMA} is not an event {self.service.name} subscribes to on {logical}"
                )
            # Before decide: a misrouted record would be decided against another key's state.
            key = msg.key
            self.routing.check(topic, p, key, event)
            outputs = list(self.service.decide(store, event))
            encoded = [self._encoded(out, p, key) for out in outputs]
        except (RegistryUnavailableError, SchemaNotRegisteredError, StoreError):
            raise  # not the record's fault: the batch fails and is tried again
        except Exception as e:  # noqa: BLE001 - anything a record causes goes to the DLQ
            self.dead_letter(msg, e, batch)
            return
        # A savepoint per record: a bad decision is undone alone, the rest of the batch stays.
        store.savepoint()
        try:
            for out in outputs:
                self.service.evolve(store, out)
        except StoreError:
            raise
        except Exception as e:  # noqa: BLE001 - a bad decision must not poison the partition
            store.rollback_savepoint()
            self.dead_letter(msg, e, batch)
            return
        store.release_savepoint()
        for key, value, headers in encoded:
            # Same partition number as the input: partition N's store and own log stay together.
            # Input and output keys both passed the routing checks, so own records are on their
            # key's partition by construction: restore does not check them again.
            self.output.produce(self.own_topic, p, key, value, headers, batch, cause=msg.coordinates)
            batch.count_emitted(_event_name(headers))

    def fire(self, timer: DueTimer, now_ms: int, partition: int, store: TransactionalStore,
             batch: Batch) -> TimerFired:
        """Fire one due timer of `partition`: its TimerFired record first (it removes the
        timer), then what `decide` answered, all in the batch's transaction.

        A timer has no input record to dead-letter: when deciding or evolving its firing fails,
        or an answer cannot be written, the firing is recorded alone (the error logged and
        counted by the caller), so one bad timer never holds the partition's others back."""
        fired = timer.fired(now_ms)
        store.savepoint()
        try:
            self.service.evolve(store, fired)  # the timer is gone before decide's events apply
            outputs = list(self.service.decide(store, fired))
            encoded = [self._encoded(out, partition, None) for out in outputs]
            encoded.insert(0, self._encoded(fired, partition, None))
            for out in outputs:
                self.service.evolve(store, out)
        except (RegistryUnavailableError, SchemaNotRegisteredError, StoreError):
            store.rollback_savepoint()
            raise
        except Exception as e:  # noqa: BLE001 - a bad firing must not stop the partition's timers
            store.rollback_savepoint()
            log.error(
                "timer %r of partition %d failed (%s: %s); recorded as fired with no events",
                timer.name, partition, type(e).__name__, str(e)[:500],
                extra={"saga": fired.data.get(self.saga_field, "-"), "partition": partition},
            )
            batch.timer_errors += 1
            store.savepoint()
            self.service.evolve(store, fired)
            try:
                encoded = [self._encoded(fired, partition, None)]
            except (OutputTooLargeError, EncodeError):
                # Data too large or not strings: the removal needs only the name and due time.
                encoded = [self._encoded(replace(fired, data={}), partition, None)]
        store.release_savepoint()
        for key, value, headers in encoded:
            self.output.produce(self.own_topic, partition, key, value, headers, batch)
            batch.count_emitted(_event_name(headers))
        return fired

    def _encoded(
        self, out: Any, partition: int, cause_key: bytes | None,
    ) -> tuple[bytes | None, bytes, Headers]:
        """Key, value and headers of an output, refused here if Kafka could never take it or
        its key belongs to another partition than its cause's (`cause_key`, already checked)."""
        if type(out) is TimerFired:
            key, saga = self._timer_key(out, partition), out.data.get(self.saga_field, "")
        else:
            key = getattr(out, self.routing.key_field).encode()
            found = getattr(out, self.saga_field, None)  # None: the event belongs to no saga
            saga = "" if found is None else str(found)
            if key != cause_key:  # the cause's key passed the input check on the same partition
                self.routing.check_output(self.own_topic, partition, key, out)
        value = self.codec.encode(self.own_topic, out)
        cls = type(out)
        type_header = self._type_headers.get(cls)
        if type_header is None:
            type_header = self._type_headers[cls] = (EVENT_TYPE_HEADER, cls.SCHEMA.encode())
        headers = [type_header, (self.saga_field, saga.encode())]
        size = record_size(key, value, headers)
        if size > OUTPUT_LIMIT:
            raise OutputTooLargeError(
                f"{type(out).__name__} would be {size} bytes, more than a Kafka record may hold "
                f"({OUTPUT_LIMIT})"
            )
        return key, value, headers

    def _timer_key(self, fired: TimerFired, partition: int) -> bytes | None:
        """A TimerFired is keyed by the partition key its timer's data holds (the domain's key
        field), so that the tools that find a key's records find it too. Without one, or with
        one of another partition (a service bug, never to stop the firing), it has no key."""
        found = fired.data.get(self.routing.key_field)
        if found is None:
            return None
        key = found.encode(errors="surrogatepass")
        try:
            self.routing.check_output(self.own_topic, partition, key, fired)
        except MisroutedRecordError:
            return None
        return key

    def dead_letter(self, msg: Consumed, error: BaseException, batch: Batch) -> None:
        saga = msg.header(self.saga_field) or b"-"
        log.warning(
            "dead-lettering %s[%d]@%d: %s: %s", *msg.coordinates, type(error).__name__,
            str(error)[:500],
            extra={"saga": saga[:128].decode(errors="replace"), "partition": msg.partition},
        )
        letter = dead_letter(msg, error, OUTPUT_LIMIT)
        # No batch: a DLQ offset is no checkpoint of the own topic, so it must not move `delivered`.
        self.output.produce(self.dlq_topic, msg.partition, letter.key, letter.value, letter.headers, None)
        batch.dead += 1


def _event_name(headers: Headers) -> str:
    """The short name of the event type an output's headers carry (`_encoded` sets it)."""
    for name, value in headers:
        if name == EVENT_TYPE_HEADER:
            return _short_name(value)
    return "unknown"


@cache
def _short_name(schema: bytes) -> str:
    """`b"dronedelivery.orders.OrderCompleted"` -> `OrderCompleted`: once per event type."""
    return schema.decode().rsplit(".", 1)[-1]
