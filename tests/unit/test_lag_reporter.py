"""choreo_consumer_lag: one series per assigned input partition, and none for a revoked one."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from choreo.runtime.lag import LagReporter
from choreo.runtime.metrics import WorkerMetrics


class FakeConsumer:
    """What LagReporter asks of a consumer: the assignment, positions and cached watermarks."""

    def __init__(self) -> None:
        self.positions: dict[tuple[str, int], int] = {}
        self.high = 100

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in self.positions]

    def position(self, parts: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(t.topic, t.partition, self.positions[(t.topic, t.partition)]) for t in parts]

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        return 0, self.high


def _lag(metrics: WorkerMetrics) -> dict[str, float]:
    return {
        s.labels["partition"]: s.value
        for family in metrics.registry.collect() if family.name == "choreo_consumer_lag"
        for s in family.samples
    }


def test_a_revoked_partition_leaves_the_gauge_and_an_assigned_one_stays() -> None:
    consumer, metrics = FakeConsumer(), WorkerMetrics("orders")
    clock = iter(range(0, 1000, 10))
    reporter = LagReporter(consumer, metrics, every_s=5, clock=lambda: float(next(clock)))  # type: ignore[arg-type]
    consumer.positions = {("p.orders.commands", 0): 40, ("p.orders.commands", 1): 90}
    reporter.report()
    assert _lag(metrics) == {"0": 60, "1": 10}

    # Partition 0 moves to another instance: its last value must not stand here for ever.
    consumer.positions = {("p.orders.commands", 1): 95}
    reporter.report()
    assert _lag(metrics) == {"1": 5}

    # It comes back later: reported again.
    consumer.positions = {("p.orders.commands", 0): 99, ("p.orders.commands", 1): 95}
    reporter.report()
    assert _lag(metrics) == {"0": 1, "1": 5}

    consumer.positions = {}
    reporter.report()
    assert _lag(metrics) == {}
