"""Read topics back for assertions: decoded through the operators' log reader, or raw messages."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from choreo.ops.log_reader import LogRecord, read_log
from choreo.serde.codec import Codec
from choreo.settings import Settings

ReadRecord = LogRecord


def read_topic(
    settings: Settings, topic: str, codec: Codec | None = None, committed_only: bool = True
) -> list[LogRecord]:
    """Every record of `topic` (physical name) now visible, in partition then offset order."""
    records = read_log(settings, [topic], codec, committed_only=committed_only)
    return sorted(records, key=lambda r: (r.partition, r.offset))


def read_records(
    bootstrap: str,
    topic: str,
    until: Callable[[list[Message]], bool],
    isolation: str = "read_committed",
    timeout: float = 30.0,
) -> list[Message]:
    """Records of all partitions from the beginning, read until `until(records)` holds."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        consumer.assign(
            [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
        )
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        while not until(records):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(records)} records of {topic}; condition not met")
            for message in consumer.consume(num_messages=100, timeout=0.5):
                if message.error():
                    raise KafkaException(message.error())
                records.append(message)
        return records
    finally:
        consumer.close()


def values(records: list[Message]) -> list[bytes]:
    return [m.value() or b"" for m in records]
