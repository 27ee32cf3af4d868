"""A consumer group's committed offsets, read and set with the admin client."""

from __future__ import annotations

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

_TIMEOUT_S = 30.0


def committed_offsets(
    admin: AdminClient, group: str, tps: list[TopicPartition]
) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the group's committed offset, for those it has committed."""
    request = [ConsumerGroupTopicPartitions(group, tps)]
    result = admin.list_consumer_group_offsets(request, request_timeout=_TIMEOUT_S)[group].result()
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def set_offsets(admin: AdminClient, group: str, tps: list[TopicPartition]) -> None:
    """Commit `tps` (offsets set) for `group`; the broker refuses while the group has members."""
    request = [ConsumerGroupTopicPartitions(group, tps)]
    admin.alter_consumer_group_offsets(request, request_timeout=_TIMEOUT_S)[group].result()
