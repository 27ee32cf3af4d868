"""A retry topic partition is served only with its input partitions: during a rolling upgrade from
a version without retry topics, the 'range' assignor gives a new worker every `.retry` partition
while old workers keep the inputs, and with them the state of those partitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from choreo.runtime import assignment
from choreo.runtime.assignment import AssignedStores
from choreo.runtime.health import Progress
from choreo.runtime.store import store_path
from choreo.runtime.watchdog import NoWatchdog
from consumers.domain import DOMAIN
from tests.support.store_locks import is_locked

PACKAGING = next(s for s in DOMAIN.services if s.name == "packaging")
PREFIX = "p."
INPUTS = [f"{PREFIX}{t}" for t in sorted(PACKAGING.inputs)]
RETRY = f"{PREFIX}{PACKAGING.retry_topic}"


class FakeConsumer:
    """Assignment and pause state as librdkafka keeps them: a pause outlives a reassignment."""

    def __init__(self) -> None:
        self.assigned: list[TopicPartition] = []
        self.paused: set[tuple[str, int]] = set()

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    def assignment(self) -> list[TopicPartition]:
        return list(self.assigned)

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}

    def fetchable(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self.assigned} - self.paused


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    restored: list[list[int]] = []

    def restore(_reader: Any, _codec: Any, _service: Any, _topic: str, opened: Any,
                **_: Any) -> dict[int, int]:
        restored.append(sorted(opened))
        return {}

    monkeypatch.setattr(assignment, "restore_partitions", restore)
    assigned = AssignedStores(
        service=PACKAGING, codec=None, own_topic=f"{PREFIX}packaging",  # type: ignore[arg-type]
        state_dir=tmp_path, topic_prefix=PREFIX, reader=None, written_end=None,  # type: ignore[arg-type]
        watchdog=NoWatchdog(), progress=Progress(), cancelled=lambda: False,
    )
    assigned.restored = restored  # type: ignore[attr-defined]
    yield assigned
    assigned.close()


def _tps(topics: list[str], partitions: range | list[int]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in partitions]


def test_retry_partitions_without_their_inputs_are_paused_and_get_no_store(
    stores: AssignedStores, tmp_path: Path,
) -> None:
    consumer = FakeConsumer()
    # The new worker: inputs 0-2 (old workers hold 3-5), and every retry partition.
    stores.on_assign(consumer, [*_tps(INPUTS, range(3)), *_tps([RETRY], range(6))])  # type: ignore[arg-type]
    assert sorted(stores.stores) == [0, 1, 2]
    assert stores.restored == [[0, 1, 2]]  # type: ignore[attr-defined]
    for p in (3, 4, 5):  # the old workers' stores: not opened, not locked, not restored here
        assert not is_locked(store_path(tmp_path, "packaging", p))
        assert (RETRY, p) not in consumer.fetchable()
    assert {(RETRY, p) for p in range(3)} <= consumer.fetchable()
    assert {(t, p) for t in INPUTS for p in range(3)} <= consumer.fetchable()


def test_a_later_assignment_that_brings_the_inputs_resumes_the_retry_partition(
    stores: AssignedStores,
) -> None:
    consumer = FakeConsumer()
    stores.on_assign(consumer, [*_tps(INPUTS, range(3)), *_tps([RETRY], range(6))])  # type: ignore[arg-type]
    # The old workers are gone: eager rebalancing revokes everything and assigns it all again.
    stores.on_revoke(consumer, consumer.assignment())  # type: ignore[arg-type]
    assert stores.stores == {}
    everything = [*_tps(INPUTS, range(6)), *_tps([RETRY], range(6))]
    stores.on_assign(consumer, everything)  # type: ignore[arg-type]
    assert sorted(stores.stores) == list(range(6))
    assert consumer.fetchable() == {(tp.topic, tp.partition) for tp in everything}


def test_an_input_partition_without_its_retry_partition_is_served(stores: AssignedStores) -> None:
    consumer = FakeConsumer()
    stores.on_assign(consumer, _tps(INPUTS, [1, 4]))  # type: ignore[arg-type]
    assert sorted(stores.stores) == [1, 4]
    assert consumer.paused == set()
