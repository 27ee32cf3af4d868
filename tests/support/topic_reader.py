"""Read a whole topic back (read_committed) and decode it, for assertions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from choreo import clients
from choreo.codec import Codec
from choreo.settings import Settings


@dataclass(frozen=True)
class ReadRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    event: Any


def read_topic(
    settings: Settings, topic: str, codec: Codec | None = None, committed_only: bool = True
) -> list[ReadRecord]:
    """Every record of `topic` (physical name) now visible, in partition then offset order."""
    consumer = clients.reader_consumer(settings, committed_only=committed_only)
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = sorted(meta.partitions)
        ends = {}
        for p in parts:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        todo = {p for p in parts if ends[p] > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in todo])
        out: list[ReadRecord] = []
        deadline = time.monotonic() + 60
        while todo and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        todo.discard(msg.partition())
                    continue
                event = codec.decode(msg.value()) if codec else None
                out.append(ReadRecord(
                    msg.partition(), msg.offset(), msg.key(), msg.value(),
                    {k: v or b"" for k, v in (msg.headers() or [])}, event,
                ))
        if todo:
            raise AssertionError(f"could not read {topic} to its end")
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()
