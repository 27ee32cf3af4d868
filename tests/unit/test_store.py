"""The partition store contract: documents, transactions, checkpoint, canonical dump and hash."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from choreo.exceptions import StoreLockedError
from choreo.runtime.store import PartitionStore
from choreo.testing import MemoryState
from tests.support.store_locks import is_locked


def test_put_get_scan_delete(tmp_path: Path) -> None:
    s = PartitionStore(tmp_path / "p.sqlite")
    s.begin()
    s.put("stock", "hub-1/SKU-0002", {"on_hand": 2})
    s.put("stock", "hub-1/SKU-0001", {"on_hand": 1})
    s.put("stock", "hub-2/SKU-0001", {"on_hand": 9})
    s.commit()
    assert s.get("stock", "hub-1/SKU-0001") == {"on_hand": 1}
    assert s.get("stock", "nope") is None
    assert [k for k, _ in s.scan("stock", "hub-1/")] == ["hub-1/SKU-0001", "hub-1/SKU-0002"]
    s.begin()
    s.delete("stock", "hub-1/SKU-0001")
    s.commit()
    assert s.get("stock", "hub-1/SKU-0001") is None


def test_rollback_discards_state_and_checkpoint(tmp_path: Path) -> None:
    s = PartitionStore(tmp_path / "p.sqlite")
    s.begin()
    s.put("t", "a", {"v": 1})
    s.commit(next_offset=5)
    s.begin()
    s.put("t", "a", {"v": 2})
    s.rollback()
    assert s.get("t", "a") == {"v": 1}
    assert s.checkpoint() == 5


def test_savepoint_rolls_back_one_record_only(tmp_path: Path) -> None:
    s = PartitionStore(tmp_path / "p.sqlite")
    s.begin()
    s.put("t", "kept", {"v": 1})
    s.savepoint()
    s.put("t", "dropped", {"v": 2})
    s.rollback_savepoint()
    s.commit(next_offset=1)
    assert s.get("t", "kept") == {"v": 1}
    assert s.get("t", "dropped") is None


def test_hash_is_canonical_and_excludes_checkpoint(tmp_path: Path) -> None:
    a = PartitionStore(tmp_path / "a.sqlite")
    b = PartitionStore(tmp_path / "b.sqlite")
    a.begin()
    a.put("t", "x", {"b": 1, "a": 2})
    a.put("t", "y", {"v": 1})
    a.commit(next_offset=10)
    b.begin()  # other insertion order, other key order in the document, other checkpoint
    b.put("t", "y", {"v": 1})
    b.put("t", "x", {"a": 2, "b": 1})
    b.commit(next_offset=3)
    assert a.state_hash() == b.state_hash()
    assert list(a.dump()) == list(b.dump())
    b.begin()
    b.put("t", "y", {"v": 2})
    b.commit()
    assert a.state_hash() != b.state_hash()


def test_hash_is_the_sha256_of_the_dump_across_chunks(tmp_path: Path) -> None:
    # More documents than one hashed chunk: the hash must not depend on where chunks end.
    s = PartitionStore(tmp_path / "h.sqlite")
    s.begin()
    for i in range(10_000):
        s.put("t" if i % 3 else "u", f"k{i:05d}", {"n": i, "name": f"é{i}"})
    s.commit(next_offset=1)
    expected = hashlib.sha256("".join(f"{line}\n" for line in s.dump()).encode()).hexdigest()
    assert s.state_hash() == expected


def test_state_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    s = PartitionStore(path)
    s.begin()
    s.put("t", "k", {"v": 1})
    s.commit(next_offset=42)
    s.close()
    again = PartitionStore(path)
    assert again.checkpoint() == 42 and again.get("t", "k") == {"v": 1}


def test_second_open_of_a_held_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    held = PartitionStore(path)
    assert is_locked(path)
    with pytest.raises(StoreLockedError):
        PartitionStore(path)
    held.close()
    assert not is_locked(path)


@pytest.mark.parametrize("seed", range(8))
def test_random_batches_read_and_scan_as_the_memory_store_does(tmp_path: Path, seed: int) -> None:
    # Long batches of puts, deletes, savepoints and scans over a few prefixes, against the
    # in-memory reference: the write-back cache's scan index must never show a write that a
    # rolled-back savepoint undid, nor miss one under the prefix.
    rng = random.Random(seed)
    sqlite, memory = PartitionStore(tmp_path / f"r{seed}.sqlite"), MemoryState()
    both = (sqlite, memory)
    keys = [f"{hub}/{i:03d}" for hub in ("a", "ab", "b") for i in range(40)]
    for batch in range(12):
        for s in both:
            s.begin()
        depth = 0
        for _ in range(150):
            roll = rng.random()
            key = rng.choice(keys)
            if roll < 0.4:
                value = {"v": rng.randrange(3)}
                for s in both:
                    s.put("t", key, value)
            elif roll < 0.6:
                for s in both:
                    s.delete("t", key)
            elif roll < 0.68:
                for s in both:
                    s.savepoint()
                depth += 1
            elif roll < 0.76 and depth:
                undo = rng.random() < 0.5
                for s in both:
                    s.rollback_savepoint() if undo else s.release_savepoint()
                depth -= 1
            elif roll < 0.8 and not depth:  # as the commit protocol: no savepoint open
                for s in both:
                    s.write_back()
            else:
                prefix = rng.choice(("a/", "ab/", "a", "b/", ""))
                assert list(sqlite.scan("t", prefix)) == list(memory.scan("t", prefix))
                assert sqlite.get("t", key) == memory.get("t", key)
        if batch % 3 == 2:
            for s in both:
                s.rollback()
        else:
            for s in both:
                s.commit(next_offset=batch)
        assert list(sqlite.scan("t")) == list(memory.scan("t"))
