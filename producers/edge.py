"""Sending commands into the saga from the edge: encoded, keyed by hub, Java-compatible partitioning."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, Message

from choreo import bootstrap
from choreo.exceptions import ChoreoError
from choreo.kafka import clients
from choreo.serde.codec import Codec
from choreo.settings import Settings


class SendError(ChoreoError):
    """The broker did not accept a command."""


def command_topics() -> dict[type, str]:
    """Command class -> the logical `*.commands` topic it travels on."""
    out: dict[type, str] = {}
    for topic, classes in bootstrap.topic_classes(bootstrap.load_all_services()).items():
        if topic.endswith(".commands"):
            for cls in classes:
                out[cls] = topic
    return out


class CommandSender:
    """An idempotent producer of commands; `flush()` raises if any was not delivered."""

    def __init__(self, settings: Settings, codec: Codec) -> None:
        self.settings = settings
        self.codec = codec
        self.topics = command_topics()
        self._producer = clients.plain_producer(settings)
        self._errors: list[KafkaError] = []
        self.sent = 0

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(err)

    def send(self, command: Any) -> None:
        logical = self.topics.get(type(command))
        if logical is None:
            raise SendError(f"{type(command).__name__} is not a command of any service")
        topic = self.settings.topic(logical)
        value = self.codec.encode(topic, command)
        while True:
            try:
                self._producer.produce(
                    topic, key=command.hub.encode(), value=value,
                    headers=[("event_type", type(command).SCHEMA.encode())],
                    on_delivery=self._delivered,
                )
                break
            except BufferError:
                self._producer.poll(0.05)  # local queue full: let deliveries drain first
        self._producer.poll(0)
        self.sent += 1

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
