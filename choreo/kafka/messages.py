"""Typed access to confluent-kafka Message fields that are never None on a consumed record."""

from __future__ import annotations

from confluent_kafka import Message


def coordinates(msg: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed or delivered record."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def header_pairs(msg: Message) -> list[tuple[str, bytes]]:
    """The record's headers as (name, bytes) pairs, in order; a null value becomes b''."""
    pairs: list[tuple[str, bytes]] = []
    for name, value in msg.headers() or []:  # type: ignore[str-unpack,misc]  # stub says str
        pairs.append((name, value.encode() if isinstance(value, str) else (value or b"")))
    return pairs


def as_bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value
