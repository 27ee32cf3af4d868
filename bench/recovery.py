"""Recovery: seconds from kill -9 of a worker to its first committed output after the restart.

The packaging worker runs through a backlog; it is killed at t0 and started again at once. A
read_committed tail of its own topic (stamped by the broker on append) sees the first record
appended after t0: nothing the killed process wrote can be committed after it died, and its
open transaction is aborted by the new one's init_transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import KafkaError, TopicPartition

from bench.config import FAIR, BenchContext, Sizes
from bench.inputs import order_records, stock_records
from bench.kafka_io import BenchError, produce
from bench.report import Row
from choreo.kafka import clients
from choreo.settings import Settings
from harness.deploy import deploy
from harness.offsets import end_offsets
from harness.processes import ChildProcess, start_worker
from harness.watch import TAIL_CONFIG

SECTION = "6 recovery"


class OutputTail:
    """A read_committed tail of one topic that reports the first record appended after a time."""

    def __init__(self, settings: Settings, topic: str, start: dict[int, int]) -> None:
        self._consumer = clients.reader_consumer(settings, **TAIL_CONFIG)
        self._consumer.assign([TopicPartition(topic, p, o) for p, o in start.items()])

    def first_after(self, since_ms: int, timeout: float, child: ChildProcess) -> float:
        """Wall time (time.time()) when a record appended at or after `since_ms` arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self._consumer.consume(500, 0.05):
                err = msg.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    raise BenchError(f"tailing failed: {err.str()}")
                if err is None and msg.timestamp()[1] >= since_ms:
                    return time.time()
            if not child.alive():
                raise BenchError(f"{child.name} exited:\n{child.tail()}")
        raise BenchError(f"no committed output within {timeout:.0f}s:\n{child.tail()}")

    def close(self) -> None:
        self._consumer.close()


def run_recovery(ctx: BenchContext, sizes: Sizes, say: Callable[[str], None]) -> list[Row]:
    dep = deploy(ctx.settings("recovery"), log_append=["packaging"])
    s, own = dep.settings, dep.topic("packaging")
    produce(s, own, stock_records(dep.codec, own, FAIR.partitions, FAIR.stock_per_shelf))
    tail = OutputTail(s, own, end_offsets(s, own))
    produce(s, dep.topic("orders"),
            order_records(dep.codec, dep.topic("orders"), sizes.recovery_backlog, FAIR.partitions, seed=3))
    row = Row("recovery.seconds", SECTION, "kill -9 to first committed output after restart", "s")
    child = start_worker(s, "packaging", ctx.log_dir, log_level="WARNING")
    try:
        tail.first_after(0, 120, child)  # it is processing the backlog
        for i in range(sizes.runs):
            t0 = time.time()
            child.kill9()
            child = start_worker(s, "packaging", ctx.log_dir, log_level="WARNING")
            row.runs.append(tail.first_after(int(t0 * 1000), 120, child) - t0)
            say(f"recovery run {i + 1}/{sizes.runs}: {row.runs[-1]:.2f} s")
    finally:
        child.stop()
        tail.close()
    return [row]
