"""Sending commands into the saga from the edge: encoded, keyed by the domain's partition key
field, Java-compatible partitioning (murmur2, as the workers route)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, Message

from choreo import bootstrap
from choreo.domain import installation
from choreo.exceptions import ChoreoError, ConfigurationError
from choreo.kafka import clients
from choreo.kafka.messages import EVENT_TYPE_HEADER, produce_when_room
from choreo.serde.codec import Codec
from choreo.settings import Settings

if TYPE_CHECKING:
    from choreo.tracing.spans import EdgeTracing


_QUEUE_FULL_S = 60.0  # as long as flush() waits for the last deliveries


class SendError(ChoreoError):
    """The broker did not accept a command."""


def command_topics() -> dict[type, str]:
    """Command class -> the logical topic it travels on: each class a domain declares a command
    (`Domain.commands`), on the input topic of a service that no service writes (its name is
    the domain's business, `.commands` or not)."""
    installed = installation()
    written = {s.own_topic for s in installed.services}
    commands = {cls for domain in installed.domains for cls in domain.commands}
    out: dict[type, str] = {}
    for topic, classes in bootstrap.topic_classes(list(installed.services)).items():
        if topic not in written:
            for cls in classes:
                if cls in commands and out.setdefault(cls, topic) != topic:
                    raise ConfigurationError(
                        f"{cls.__name__} is read from two command topics, {out[cls]} and {topic}: "
                        "the edge could not say which one to send it to"
                    )
    return out


class CommandSender:
    """An idempotent producer of commands; `flush()` raises if any was not delivered.

    With `tracing`, each command is the root span of a new trace, which the saga it starts
    carries on (choreo/tracing/spans.py)."""

    def __init__(self, settings: Settings, codec: Codec, tracing: EdgeTracing | None = None) -> None:
        self.settings = settings
        self.codec = codec
        self.tracing = tracing
        self.topics = command_topics()
        envelope = installation().envelope
        self.saga_field, self.key_field = envelope.saga_field, envelope.key_field
        self._producer = clients.plain_producer(settings)
        self._errors: list[KafkaError] = []
        self.sent = 0

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(err)

    def send(self, command: Any) -> None:
        logical = self.topics.get(type(command))
        if logical is None:
            raise SendError(
                f"{type(command).__name__} is not a command of the installed domains: declare it in "
                "its Domain's `commands`, as an input of a service on a topic no service writes"
            )
        topic = self.settings.topic(logical)
        value = self.codec.encode(topic, command)
        event_type: str = type(command).SCHEMA
        headers = [(EVENT_TYPE_HEADER, event_type.encode())]
        # The saga id header, as on every event the workers write: a saga's command is found
        # without decoding it. Commands outside any saga (stock, drones) have no such field.
        saga = getattr(command, self.saga_field, None)
        if saga is not None:
            headers.append((self.saga_field, str(saga).encode()))
        key = getattr(command, self.key_field).encode()
        if self.tracing is None:
            self._produce(topic, key, value, headers)
        else:
            with self.tracing.sending(event_type, topic, saga) as trace_headers:
                self._produce(topic, key, value, headers + trace_headers)
        self._producer.poll(0)
        self.sent += 1

    def _produce(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        try:
            produce_when_room(self._producer, _QUEUE_FULL_S, topic=topic, key=key, value=value,
                              on_delivery=self._delivered, headers=headers)
        except BufferError as e:
            raise SendError(
                f"the producer's queue stayed full for {_QUEUE_FULL_S:.0f} s: the cluster is not "
                "taking the commands"
            ) from e

    def send_all(self, commands: Iterable[Any]) -> int:
        n = 0
        for c in commands:
            self.send(c)
            n += 1
        self.flush()
        return n

    def flush(self, timeout_s: float = 60.0) -> None:
        left = self._producer.flush(timeout_s)
        if left:
            raise SendError(f"{left} command(s) not delivered within {timeout_s:.0f}s")
        if self._errors:
            raise SendError(f"{len(self._errors)} command(s) rejected: {self._errors[0].str()}")
