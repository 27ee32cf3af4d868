"""Typed access to confluent-kafka Message fields that are never None on a consumed record, and
the headers every record of a saga carries."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Message, Producer

Headers = list[tuple[str, bytes]]
# The type the producer claims (edge and worker put it on every command and event); the decoded
# record decides, the header only lets tools and tracing name a record without decoding it.
EVENT_TYPE_HEADER = "event_type"


def coordinates(msg: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed or delivered record."""
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


def produce_when_room(producer: Producer, wait_s: float, poll_s: float = 0.05, **record: Any) -> None:
    """`producer.produce(**record)`, waiting for deliveries to make room while the producer's
    local queue is full (produce() raises BufferError at once, it never blocks); BufferError
    again once `wait_s` has passed, so a producer whose deliveries never drain cannot hang us."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            producer.produce(**record)
            return
        except BufferError:
            if time.monotonic() > deadline:
                raise
            producer.poll(poll_s)
