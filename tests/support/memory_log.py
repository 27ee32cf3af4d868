"""A consumer over a log in memory, for restore_partitions in unit tests (no broker)."""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, TopicPartition


class MemoryLog:
    """The reader consumer of restore_partitions over `records` (partition -> values), in memory."""

    def __init__(self, topic: str, records: dict[int, list[bytes | None]]) -> None:
        self.topic = topic
        self.records = records
        self.positions: dict[int, int] = {}
        self.paused: list[int] = []
        self._assigned: list[TopicPartition] = []

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, len(self.records.get(tp.partition, []))

    def assign(self, tps: list[TopicPartition]) -> None:
        self._assigned = list(tps)
        for tp in tps:
            if tp.topic == self.topic:
                self.positions[tp.partition] = max(tp.offset, 0)

    def assignment(self) -> list[TopicPartition]:
        return self._assigned

    def pause(self, tps: list[TopicPartition]) -> None:
        self.paused += [tp.partition for tp in tps]

    def resume(self, tps: list[TopicPartition]) -> None:
        self.paused = [p for p in self.paused if p not in {tp.partition for tp in tps}]

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        out = []
        for p, at in sorted(self.positions.items()):
            values = self.records.get(p, [])
            if at < len(values):
                out.append(Message(topic=self.topic, partition=p, offset=at, key=b"hub-0",
                                   value=values[at]))
                self.positions[p] = at + 1
            elif at == len(values):
                out.append(Message(topic=self.topic, partition=p, offset=at,
                                   error=KafkaError(KafkaError._PARTITION_EOF)))
                self.positions[p] = at + 1  # the end is reported once
        return out

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(self.topic, tp.partition,
                               min(self.positions.get(tp.partition, 0),
                                   len(self.records.get(tp.partition, []))))
                for tp in tps]

    def unassign(self) -> None:
        self.positions.clear()
