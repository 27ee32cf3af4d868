"""Moving a stopped service's consumer group offsets back (or forward) to a time or the earliest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from choreo.contract import Service
from choreo.exceptions import ChoreoError
from choreo.kafka import bounds, clients
from choreo.kafka.group_offsets import committed_offsets
from choreo.ops.log_reader import to_millis
from choreo.settings import Settings

_TIMEOUT_S = 30.0

class GroupActiveError(ChoreoError):
    """The group still has members: moving offsets under a running worker would be overwritten."""


@dataclass(frozen=True)
class PartitionMove:
    topic: str
    partition: int
    committed: int | None  # None: the group never committed here (it would start at the earliest)
    target: int
    low: int
    high: int

    @property
    def reprocessed(self) -> int:
        """Offsets the service has already processed and will process again."""
        done = self.low if self.committed is None else self.committed
        return max(0, done - self.target)

    @property
    def skipped(self) -> int:
        """Offsets the service had not processed yet and will now never see (moving forward)."""
        done = self.low if self.committed is None else self.committed
        return max(0, self.target - done)


def require_empty_group(admin: AdminClient, group: str) -> None:
    """Refuse while any instance of the service is a member of its group."""
    try:
        described = admin.describe_consumer_groups([group], request_timeout=_TIMEOUT_S)[group].result()
    except KafkaException as e:
        if e.args[0].name() == "GROUP_ID_NOT_FOUND":
            return
        raise
    members = list(described.members or [])
    if members:
        who = ", ".join(sorted(m.group_instance_id or m.client_id for m in members))
        raise GroupActiveError(
            f"group {group} still has {len(members)} member(s) ({who}) in state "
            f"{described.state.name}: stop every worker first; a stopped worker with a static "
            "instance id stays a member until its session times out"
        )


def plan(
    settings: Settings, service: Service, *, to_time: datetime | None = None, to_earliest: bool = False
) -> list[PartitionMove]:
    """Where each input partition of `service` would move, and what it means."""
    if (to_time is None) == (not to_earliest):
        raise ChoreoError("say where to move: --to-datetime T or --to-earliest")
    if to_time is not None:
        # Checked here too, not only by the CLI: Kafka would read a time before 1970 as "the end".
        bounds.kafka_time(to_time, f"the time {to_time.isoformat()}", "move to the earliest instead")
    group = settings.group(service.name)
    admin = clients.admin_client(settings)
    topics = sorted(settings.topic(t) for t in service.inputs)
    meta = admin.list_topics(timeout=_TIMEOUT_S).topics
    missing = [t for t in topics if t not in meta]
    if missing:
        raise ChoreoError(f"input topic {missing[0]} does not exist: run `choreo topics create`")
    tps = [TopicPartition(t, p) for t in topics for p in sorted(meta[t].partitions)]
    committed = committed_offsets(admin, group, tps)
    reader = clients.reader_consumer(settings)
    try:
        targets: dict[tuple[str, int], int] = {}
        marks = {(tp.topic, tp.partition): reader.get_watermark_offsets(tp, timeout=_TIMEOUT_S) for tp in tps}
        if to_time is not None:
            ms = to_millis(to_time)
            for found in reader.offsets_for_times([TopicPartition(t.topic, t.partition, ms) for t in tps],
                                                  _TIMEOUT_S):
                # No record at or after the time: the end, so nothing before it is processed again.
                high = marks[(found.topic, found.partition)][1]
                targets[(found.topic, found.partition)] = found.offset if found.offset >= 0 else high
        else:
            targets = {k: low for k, (low, _high) in marks.items()}
    finally:
        reader.close()
    return [
        PartitionMove(tp.topic, tp.partition, committed.get((tp.topic, tp.partition)),
                      targets[(tp.topic, tp.partition)], *marks[(tp.topic, tp.partition)])
        for tp in tps
    ]


def execute(settings: Settings, service: Service, moves: list[PartitionMove]) -> None:
    """Apply `moves` to the service's group; the broker refuses too if a member joined meanwhile."""
    group = settings.group(service.name)
    admin = clients.admin_client(settings)
    require_empty_group(admin, group)
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(m.topic, m.partition, m.target)
                                                    for m in moves])]
    try:
        admin.alter_consumer_group_offsets(request, request_timeout=_TIMEOUT_S)[group].result()
    except KafkaException as e:
        raise GroupActiveError(
            f"the broker refused to move {group}'s offsets ({e.args[0].str()}): is a worker running?"
        ) from e
