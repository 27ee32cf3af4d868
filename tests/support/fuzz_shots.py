"""Hostile records as they go on the wire: produced by a plain producer to explicit partitions,
and looked up afterwards among the services' dead letters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from choreo.contract import Service
from choreo.domain import installation
from choreo.kafka import clients
from choreo.kafka.partitioner import partition_for
from choreo.runtime.dead_letters import SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from choreo.serde.codec import Codec
from choreo.settings import Settings
from tests.support.topic_reader import read_topic

# How a record is routed: by its hub as the contract says, or in one of the ways it breaks it.
BY_KEY = "by key"
WRONG_PARTITION = "wrong partition"
NULL_KEY = "null key"
OTHER_KEY = "other key"  # keyed by another hub than the value's, on that hub's partition


def home_topic(cls: type) -> str:
    """The logical topic a command or event class travels on (its producer's topic)."""
    for service in list(installation().services):
        if cls in service.emits:
            return service.own_topic
        for topic, classes in service.inputs.items():
            if topic.endswith(".commands") and cls in classes:
                return topic
    raise LookupError(f"{cls.__name__} travels on no topic")


def readers(logical: str) -> list[Service]:
    """The services that consume `logical`: each must refuse a refused record on it."""
    return [s for s in list(installation().services) if logical in s.inputs]


@dataclass(frozen=True)
class Wire:
    """One record ready to produce, and whether every reader of its topic must dead-letter it."""

    kind: str
    topic: str  # logical
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    refused: bool


@dataclass(frozen=True)
class RawShot:
    """Bytes that are no record at all (or no record of ours): every reader refuses them."""

    kind: str
    topic: str
    partition: int  # taken modulo the topic's partition count
    key: bytes | None
    value: bytes | None

    def wire(self, codec: Codec, settings: Settings, partitions: int) -> Wire:
        return Wire(self.kind, self.topic, self.partition % partitions, self.key, self.value, (), True)


@dataclass(frozen=True)
class RecordShot:
    """A command or event encoded as its producer would, then routed (or cut) as `kind` says."""

    kind: str
    record: Any
    route: str = BY_KEY
    shift: int = 0  # WRONG_PARTITION: partitions past the right one; NULL_KEY: the partition
    other_key: bytes = b""  # OTHER_KEY: the key used instead of the hub
    cut: int | None = None  # truncated Avro: bytes kept, modulo the encoded length
    on_topic: str | None = None  # produced to another topic than its own: a foreign type there

    @property
    def topic(self) -> str:
        return self.on_topic or home_topic(type(self.record))

    @property
    def refused(self) -> bool:
        foreign = self.on_topic not in (None, home_topic(type(self.record)))
        return self.route != BY_KEY or self.cut is not None or foreign

    def wire(self, codec: Codec, settings: Settings, partitions: int) -> Wire:
        # Encoded for its own topic: the schema id is the registry's, valid on any topic.
        value = codec.encode(settings.topic(home_topic(type(self.record))), self.record)
        if self.cut is not None:
            value = value[: self.cut % len(value)]
        key: bytes | None = self.record.hub.encode()
        assert key is not None
        right = partition_for(key, partitions)
        partition = right
        if self.route == WRONG_PARTITION:
            partition = (right + 1 + self.shift % (partitions - 1)) % partitions
        elif self.route == NULL_KEY:
            key, partition = None, self.shift % partitions
        elif self.route == OTHER_KEY:
            key, partition = self.other_key, partition_for(self.other_key, partitions)
        headers = (("event_type", type(self.record).SCHEMA.encode()),)
        return Wire(self.kind, self.topic, partition, key, value, headers, self.refused)


Shot = RawShot | RecordShot


@dataclass(frozen=True)
class Landed:
    """Where a produced record landed."""

    wire: Wire
    topic: str  # physical
    partition: int
    offset: int


class ShotProducer:
    """A team's own edge producer: plain librdkafka defaults, each record on an explicit partition."""

    def __init__(self, settings: Settings, codec: Codec) -> None:
        self.settings = settings
        self.codec = codec
        self._producer = Producer({**clients.base_config(settings), "enable.idempotence": True})
        self._landed: list[Landed] = []
        self._errors: list[KafkaError] = []

    def send(self, shots: Iterable[Shot]) -> list[Landed]:
        """Produce every shot and wait until all are written; where each landed, in order."""
        self._landed = []
        produced = 0
        for shot in shots:
            w = shot.wire(self.codec, self.settings, self.settings.partitions)
            self._producer.produce(
                self.settings.topic(w.topic), key=w.key, value=w.value, partition=w.partition,
                headers=list(w.headers), on_delivery=self._delivered(w),
            )
            self._producer.poll(0)
            produced += 1
        assert self._producer.flush(60) == 0, "hostile records not delivered within 60s"
        assert not self._errors, f"the broker refused a hostile record: {self._errors[0].str()}"
        assert len(self._landed) == produced, "a delivery report is missing"
        return self._landed

    def _delivered(self, w: Wire) -> Any:
        def report(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self._errors.append(err)
            else:
                self._landed.append(Landed(w, str(msg.topic()), int(msg.partition() or 0),
                                           int(msg.offset() or 0)))
        return report


def missing_dead_letters(settings: Settings, landed: Sequence[Landed]) -> list[str]:
    """Each refused record that some reader of its topic has not dead-lettered, as a sentence."""
    letters: dict[str, set[tuple[str, int, int]]] = {}
    missing = []
    for shot in (s for s in landed if s.wire.refused):
        for service in readers(shot.wire.topic):
            if service.name not in letters:
                letters[service.name] = {
                    (r.headers[SOURCE_TOPIC].decode(), int(r.headers[SOURCE_PARTITION]),
                     int(r.headers[SOURCE_OFFSET]))
                    for r in read_topic(settings, settings.topic(service.dlq_topic))
                    if SOURCE_TOPIC in r.headers
                }
            if (shot.topic, shot.partition, shot.offset) not in letters[service.name]:
                missing.append(
                    f"{service.name} did not dead-letter the {shot.wire.kind} record at "
                    f"{shot.wire.topic}[{shot.partition}]@{shot.offset}"
                )
    return missing
