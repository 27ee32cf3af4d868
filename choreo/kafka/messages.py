"""Records as the worker sees them: one `Consumed` value per record read, made at intake, and
the headers every record of a saga carries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

Headers = list[tuple[str, bytes]]
# The type the producer claims (edge and worker put it on every command and event); the decoded
# record decides, the header only lets tools and tracing name a record without decoding it.
EVENT_TYPE_HEADER = "event_type"


@dataclass(frozen=True, slots=True)
class Consumed:
    """One record as read from an input: made once at intake (`Consumed.of`) and passed as it is
    to processing, dead letters, tracing and the commit, so that none of them asks the client
    for a field again. A record that is an error report of the consumer carries `error` instead
    (its coordinates may then be partial: "" or -1 for what the report does not name)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    error: KafkaError | None = None

    @classmethod
    def of(cls, msg: Message) -> Consumed:
        error = msg.error()
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        return cls(
            topic=topic or "",
            partition=-1 if partition is None else partition,
            offset=-1 if offset is None else offset,
            key=as_bytes(msg.key()),
            value=as_bytes(msg.value()),
            headers=[] if error is not None else header_pairs(msg),
            error=error,
        )

    @property
    def coordinates(self) -> tuple[str, int, int]:
        return self.topic, self.partition, self.offset

    def header(self, name: str) -> bytes | None:
        """The value of header `name` (the last, when it is repeated, as a dict of the headers
        would give), None when the record has no header of that name."""
        for found, value in reversed(self.headers):
            if found == name:
                return value
        return None


def consumed(msgs: list[Message]) -> list[Consumed]:
    return [Consumed.of(msg) for msg in msgs]


def coordinates(msg: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a raw record: a delivered one, or one the restore reads (the
    worker's consumed records are `Consumed` values)."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def header_pairs(msg: Message) -> Headers:
    """The record's headers as (name, bytes) pairs, in order; a null value becomes b''."""
    pairs: Headers = []
    for name, value in msg.headers() or []:  # type: ignore[str-unpack,misc]  # stub says str
        pairs.append((name, value.encode() if isinstance(value, str) else (value or b"")))
    return pairs


def as_bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def when_room(
    send: Callable[[], None], poll: Callable[[float], object], wait_s: float, poll_s: float = 0.05,
) -> None:
    """`send()` (one produce), polling for deliveries to make room while the producer's local
    queue is full (produce() raises BufferError at once, it never blocks); BufferError again once
    `wait_s` has passed, so a producer whose deliveries never drain cannot hang its caller."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            send()
            return
        except BufferError:
            if time.monotonic() > deadline:
                raise
            poll(poll_s)


def produce_when_room(producer: Producer, wait_s: float, poll_s: float = 0.05, **record: Any) -> None:
    """`producer.produce(**record)`, within `when_room`."""
    when_room(lambda: producer.produce(**record), producer.poll, wait_s, poll_s)
