"""The bench's own Kafka plumbing: filling input, waiting for commits, reading back and timing."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from choreo.kafka import clients
from choreo.settings import Settings
from harness.offsets import committed, end_offsets, group_offsets_reader

# A record to produce: (partition or None for the key's partition, key, value, headers).
Headers = list[tuple[str, str | bytes | None]]
Record = tuple[int | None, bytes, bytes, Headers]


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says which and why."""


def produce(settings: Settings, topic: str, records: Sequence[Record]) -> None:
    """Produce pre-encoded records with the edge's idempotent producer and wait for all of them."""
    producer = clients.plain_producer(settings, **{"queue.buffering.max.messages": 500_000})
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    for partition, key, value, headers in records:
        while True:
            try:
                if partition is None:
                    producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
                else:
                    producer.produce(topic, value, key, partition=partition, headers=headers,
                                     on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)  # local queue full: let deliveries drain
    if producer.flush(120) or errors:
        raise BenchError(f"filling {topic} failed: {errors[:1] or 'not all records delivered'}")


def wait_committed(
    settings: Settings,
    group: str,
    topic: str,
    ends: dict[int, int],
    timeout: float,
    alive: Callable[[], bool],
    what: str,
) -> None:
    """Poll the group's committed offsets on `topic` until they reach `ends` (or fail loudly)."""
    probe = group_offsets_reader(settings, group)
    deadline = time.monotonic() + timeout
    try:
        while True:
            done = committed(probe, topic, ends)
            if all(done[p] >= end for p, end in ends.items()):
                return
            if not alive():
                raise BenchError(f"{what} exited before committing its input")
            if time.monotonic() > deadline:
                raise BenchError(f"{what} did not commit {topic} within {timeout:.0f}s: {done} of {ends}")
            time.sleep(0.2)  # polling committed offsets with a deadline
    finally:
        probe.close()


@dataclass(frozen=True)
class TopicRead:
    """What a read-back of a topic found: record count and broker timestamps (ms)."""

    count: int
    first_ms: int
    last_ms: int

    def rate(self) -> float:
        """Records per second between the first and the last append."""
        return self.count / max(self.last_ms - self.first_ms, 1) * 1000


def read_back(settings: Settings, topic: str, start: dict[int, int] | None = None) -> TopicRead:
    """Read committed records of `topic` from `start` (default the beginning) to the end."""
    ends = end_offsets(settings, topic)
    start = start or {}
    consumer = clients.reader_consumer(settings)
    pending = {p for p, end in ends.items() if end > start.get(p, 0)}
    consumer.assign([TopicPartition(topic, p, start.get(p, OFFSET_BEGINNING)) for p in pending])
    count, first, last = 0, 2**63, 0
    try:
        while pending:
            for msg in consumer.consume(1000, 1.0):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                        continue
                    raise BenchError(f"reading {topic} failed: {err.str()}")
                ts = msg.timestamp()[1]
                count += 1
                first, last = min(first, ts), max(last, ts)
    finally:
        consumer.close()
    if count == 0:
        raise BenchError(f"{topic} holds no committed records to measure")
    return TopicRead(count, first, last)


def bare_consume(settings: Settings, topic: str) -> float:
    """Records/s of the plainest read_committed batch consume loop over the whole topic."""
    ends = end_offsets(settings, topic)
    consumer = clients.reader_consumer(settings)
    pending = {p for p, end in ends.items() if end > 0}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
    count, began, last = 0, 0.0, 0.0
    try:
        while pending:
            # A short timeout: the last, partial batch returns only when it expires.
            for msg in consumer.consume(1000, 0.02):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                    continue
                last = time.perf_counter()
                if count == 0:
                    began = last
                count += 1
        seconds = last - began
    finally:
        consumer.close()
    if count < 2:
        raise BenchError(f"{topic} holds too few records to time a consume")
    return (count - 1) / max(seconds, 1e-6)
