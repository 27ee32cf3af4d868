"""Where topics end and where a consumer group has committed: read by the bench and the tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from confluent_kafka import Consumer, TopicPartition

from choreo.kafka import clients
from choreo.settings import Settings


def ends_of(settings: Settings, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> high watermark, for every partition of `topics`, with one reader."""
    consumer = clients.reader_consumer(settings)
    try:
        meta = consumer.list_topics(timeout=10).topics
        return {
            (t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t in topics for p in meta[t].partitions
        }
    finally:
        consumer.close()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Partition -> high watermark."""
    return {p: end for (_t, p), end in ends_of(settings, [topic]).items()}


def group_offsets_reader(settings: Settings, group: str) -> Consumer:
    """A consumer that reads `group`'s committed offsets: it never subscribes, so it never
    joins the group."""
    return Consumer({**clients.base_config(settings), "group.id": group})


def committed(consumer: Consumer, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """Partition -> the offset the consumer's group has committed on `topic` (0: none)."""
    tps = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
    return {tp.partition: max(tp.offset, 0) for tp in tps}


def committed_to_end(settings: Settings, group: str, topic: str) -> bool:
    """Whether `group` has committed every partition of `topic` up to its end."""
    ends = end_offsets(settings, topic)
    reader = group_offsets_reader(settings, group)
    try:
        return committed(reader, topic, ends) == ends
    finally:
        reader.close()
