"""Restore and transactions still open on the own topic: it waits for them to be decided, a
bounded time, then holds the partition back naming the command that ends a hanging one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition
from confluent_kafka.schema_registry import Schema

from choreo.runtime.restore import PartitionsNotRestored, restore_partitions, undecided_wait_s
from choreo.runtime.store import PartitionStore
from choreo.serde.codec import Codec, subject_for
from choreo.serde.schemas import load_event_schemas
from tests.support import toy
from tests.support.fake_registry import FakeRegistry
from tests.support.memory_log import MemoryLog

OWN = "p.counter"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class StableLog(MemoryLog):
    """read_committed over a log whose partitions are stable only up to `stable[p]`: the records
    after it are in an open transaction. `decide_after` consume calls, a partition's transaction
    is decided (its stable offset moves to the end)."""

    def __init__(self, records: dict[int, list[bytes | None]], stable: dict[int, int],
                 decide_after: int | None = None) -> None:
        super().__init__(OWN, records)
        self.stable = stable
        self.decide_after = decide_after
        self.calls = 0
        self.end_reported: dict[int, int] = {}  # the end is reported once per stable offset

    def _end(self, p: int) -> int:
        return self.stable.get(p, len(self.records.get(p, [])))

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, self._end(tp.partition)  # read_committed: the stable offset

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self.calls += 1
        if self.decide_after is not None and self.calls >= self.decide_after:
            self.stable.clear()  # committed: every record is readable now
        out = []
        for p, at in sorted(self.positions.items()):
            end = self._end(p)
            if at < end:
                out.append(Message(topic=OWN, partition=p, offset=at, key=b"hub-0",
                                    value=self.records[p][at]))
                self.positions[p] = at + 1
            elif at == end and self.end_reported.get(p) != end:
                out.append(Message(topic=OWN, partition=p, offset=at,
                                   error=KafkaError(KafkaError._PARTITION_EOF)))
                self.end_reported[p] = end
        return out

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(OWN, tp.partition, min(self.positions.get(tp.partition, 0),
                                                      self._end(tp.partition)))
                for tp in tps]


class WrittenEnd:
    """read_uncommitted: the high watermark, everything written."""

    def __init__(self, records: dict[int, list[bytes | None]]) -> None:
        self.records = records

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, len(self.records.get(tp.partition, []))


def _codec() -> Codec:
    schemas = load_event_schemas([toy.NumberCounted], *toy.DOMAIN.schema_dirs)
    registry = FakeRegistry()
    for es in schemas.values():
        registry.register_schema(subject_for(OWN, es.name), Schema(es.text, "AVRO"))
    return Codec(registry, schemas.values())  # type: ignore[arg-type]


def _log(codec: Codec) -> dict[int, list[bytes | None]]:
    own: list[bytes | None] = [
        codec.encode(OWN, toy.NumberCounted(f"e-{v}", "hub-0", T0, None, v, v)) for v in (1, 2, 3)
    ]
    return {0: list(own), 1: list(own)}


def _stores(tmp_path: Path) -> dict[int, PartitionStore]:
    return {p: PartitionStore(tmp_path / f"{p}.sqlite", lock=False) for p in (0, 1)}


def test_a_transaction_open_past_the_bound_holds_its_partition_back_naming_the_abort(
    tmp_path: Path,
) -> None:
    codec = _codec()
    records = _log(codec)
    stores = _stores(tmp_path)
    with pytest.raises(PartitionsNotRestored) as caught:
        restore_partitions(
            StableLog(records, stable={0: 1}), codec, toy.COUNTER, OWN, stores,  # type: ignore[arg-type]
            written_end=WrittenEnd(records), undecided_s=0.3,  # type: ignore[arg-type]
        )
    assert set(caught.value.failed) == {0}
    why = caught.value.failed[0]
    assert why.startswith("p.counter[0]@1: a transaction open for ")
    assert "a hanging transaction; the records from offset 1 to 3 cannot be read" in why
    assert "`choreo kafka transactions abort --topic p.counter --partition 0 --start-offset 1` ends it" in why
    # Partition 0 keeps what is decided (offset 0) and resumes there; partition 1 is whole.
    assert stores[0].checkpoint() == 1 and caught.value.applied == {0: 1, 1: 3}
    assert stores[1].checkpoint() == 3


def test_a_transaction_decided_within_the_bound_is_waited_for_and_applied(tmp_path: Path) -> None:
    codec = _codec()
    records = _log(codec)
    stores = _stores(tmp_path)
    applied = restore_partitions(
        StableLog(records, stable={0: 1}, decide_after=40), codec, toy.COUNTER, OWN,  # type: ignore[arg-type]
        stores, written_end=WrittenEnd(records), undecided_s=60,  # type: ignore[arg-type]
    )
    assert applied == {0: 3, 1: 3}
    assert stores[0].checkpoint() == 3


def test_the_wait_outlasts_the_services_own_transaction_timeout() -> None:
    # A transaction of the service's own producers is aborted by its coordinator at the
    # transaction timeout, found by a check that runs every 10 s: only one open longer hangs.
    assert undecided_wait_s(30_000) == 45.0
    assert undecided_wait_s(60_000) > 60 + 10
