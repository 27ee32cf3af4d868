"""A worker that finds another prefix's store in its state folder stops with one sentence; it
neither reuses nor "heals" it."""

from __future__ import annotations

import pytest

from choreo.runtime.store import PartitionStore, StoreOwner, state_dir_of, store_path
from tests.support.toy_pipeline import ToyPipeline

pytestmark = pytest.mark.integration


def test_a_worker_refuses_a_store_of_another_prefix_with_one_sentence(toy: ToyPipeline) -> None:
    folder = state_dir_of(toy.settings)
    paths = [store_path(folder, "counter", p) for p in range(toy.settings.partitions)]
    for path in paths:
        other = PartitionStore(path, owner=StoreOwner("other-", "counter"))
        other.commit(next_offset=5)
        other.close()
    toy.produce_numbers(4)
    worker = toy.start("counter")
    code = worker.wait(120)
    log = worker.log()
    assert code == 1, log[-3000:]
    assert "Traceback" not in log
    assert "under topic prefix 'other-', not of 'counter' under" in log
    assert toy.counted() == []  # nothing decided against another prefix's state
    # Refused, not healed: every store is where it was, still the other prefix's.
    assert not [p for p in folder.rglob("*damaged*")]
    for path in paths:
        kept = PartitionStore(path, owner=StoreOwner("other-", "counter"))
        assert kept.checkpoint() == 5
        kept.close()
