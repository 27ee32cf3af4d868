"""Small Kafka helpers for tests: create topics and wait for leaders, read records back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def unique_prefix() -> str:
    """A topic / group prefix no other test (or earlier run) uses."""
    return f"t{uuid.uuid4().hex[:10]}."


def create_topics(
    bootstrap: str,
    names: list[str],
    partitions: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create topics (broker-default replication) and wait until every partition has a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, config=config or {}) for n in names],
        operation_timeout=timeout,
    )
    for future in futures.values():
        future.result(timeout)
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=5)
        ready = all(
            name in metadata.topics
            and metadata.topics[name].error is None
            and len(metadata.topics[name].partitions) == partitions
            and all(p.leader >= 0 for p in metadata.topics[name].partitions.values())
            for name in names
        )
        if ready:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {names} have no leaders after {timeout}s")
        time.sleep(0.1)


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
