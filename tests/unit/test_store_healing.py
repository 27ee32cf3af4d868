"""Damaged partition stores are detected at open (or on read) and healed by moving them aside."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from choreo.exceptions import StoreDamagedError, StoreError, StoreLockedError
from choreo.runtime.store import PartitionStore, lock_store
from tests.support.store_locks import is_locked


def _junk(size: int) -> bytes:
    # Deterministic and far from the "SQLite format 3" magic.
    return bytes((i * 131 + 7) % 251 for i in range(size))


def _damaged_copies(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(f"{path.name}.damaged-")
                  and not p.name.endswith(("-wal", "-shm")))


def _fill(path: Path, docs: int = 3000, checkpoint: int = 3000) -> None:
    store = PartitionStore(path)
    store.begin()
    for i in range(docs):
        store.put("orders", f"o-{i:05d}", {"i": i, "pad": "x" * 100})
    store.commit(next_offset=checkpoint)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything into the main file
    store.close()


def _assert_empty_and_usable(store: PartitionStore) -> None:
    assert store.checkpoint() == 0
    assert store.count() == 0
    store.begin()
    store.put("t", "k", {"v": 1})
    store.commit(next_offset=1)
    assert store.get("t", "k") == {"v": 1} and store.checkpoint() == 1


def test_a_file_with_a_junk_header_is_refused_then_healed(tmp_path: Path) -> None:
    path = tmp_path / "orders" / "p0000.sqlite"
    path.parent.mkdir()
    junk = _junk(4096)
    path.write_bytes(junk)

    with pytest.raises(StoreDamagedError) as info:
        PartitionStore(path)
    assert info.value.partition == 0
    assert path.read_bytes() == junk  # refusing does not touch the file
    assert not is_locked(path)  # and does not keep the lock

    store = PartitionStore(path, heal=True)
    try:
        assert store.healed_from is not None
        assert store.healed_from.exists() and store.healed_from.read_bytes() == junk
        assert _damaged_copies(path) == [store.healed_from]
        _assert_empty_and_usable(store)
    finally:
        store.close()


def test_a_store_cut_in_half_is_refused_then_healed(tmp_path: Path) -> None:
    path = tmp_path / "p0000.sqlite"
    _fill(path)
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    size = path.stat().st_size
    assert size > 100_000
    os.truncate(path, size // 2)
    cut = path.read_bytes()

    with pytest.raises(StoreDamagedError):
        PartitionStore(path)
    assert not is_locked(path)

    store = PartitionStore(path, heal=True)
    try:
        assert store.healed_from is not None and store.healed_from.read_bytes() == cut
        _assert_empty_and_usable(store)
    finally:
        store.close()
    again = PartitionStore(path)  # the healed store is a normal store from now on
    assert again.healed_from is None and again.checkpoint() == 1
    again.close()


def test_a_healthy_store_is_not_healed(tmp_path: Path) -> None:
    path = tmp_path / "p0001.sqlite"
    _fill(path, docs=10, checkpoint=10)
    store = PartitionStore(path, heal=True)
    try:
        assert store.healed_from is None
        assert store.count() == 10 and store.checkpoint() == 10
        assert _damaged_copies(path) == []
    finally:
        store.close()


def _corrupt_value(path: Path, key: str, value: str = "not json{") -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE docs SET value = ? WHERE tbl = 'orders' AND key = ?", (value, key))
    db.close()


def test_a_damaged_json_value_is_a_store_damaged_error_not_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "p0000.sqlite"
    _fill(path, docs=5, checkpoint=5)
    _corrupt_value(path, "o-00002")
    store = PartitionStore(path)  # the open check does not read documents
    try:
        assert store.get("orders", "o-00001") == {"i": 1, "pad": "x" * 100}
        with pytest.raises(StoreDamagedError) as info:
            store.get("orders", "o-00002")
        assert isinstance(info.value, StoreError)
        assert info.value.partition == 0
        assert "o-00002" in str(info.value)
        with pytest.raises(StoreDamagedError):
            list(store.scan("orders"))
    finally:
        store.close()


def test_replace_damaged_moves_the_file_aside_under_the_same_lock(tmp_path: Path) -> None:
    path = tmp_path / "p0000.sqlite"
    _fill(path, docs=5, checkpoint=5)
    _corrupt_value(path, "o-00002")
    store = PartitionStore(path)
    try:
        store.begin()
        store.put("orders", "o-00001", {"half": "written"})  # an open transaction is dropped
        with pytest.raises(StoreDamagedError):
            store.get("orders", "o-00002")
        moved = store.replace_damaged()
        assert moved == store.healed_from and moved.exists()
        assert is_locked(path)
        with pytest.raises(StoreLockedError):
            PartitionStore(path)
        _assert_empty_and_usable(store)
    finally:
        store.close()
    kept = sqlite3.connect(moved)  # the damaged copy keeps its data for inspection
    try:
        assert kept.execute("SELECT value FROM docs WHERE key = 'o-00002'").fetchone() == ("not json{",)
        # the open transaction was rolled back before the move, not left half-written
        row = kept.execute("SELECT value FROM docs WHERE key = 'o-00001'").fetchone()
        assert row == ('{"i":1,"pad":"' + "x" * 100 + '"}',)
        assert kept.execute("SELECT next_offset FROM checkpoint").fetchone() == (5,)
    finally:
        kept.close()


@pytest.mark.parametrize("bad", [-1, "soon", 1.5], ids=["negative", "text", "float"])
def test_an_impossible_checkpoint_is_detected_at_open(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "p0003.sqlite"
    _fill(path, docs=3, checkpoint=3)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE checkpoint SET next_offset = ? WHERE id = 0", (bad,))
    db.close()
    with pytest.raises(StoreDamagedError) as info:
        PartitionStore(path)
    assert info.value.partition == 3 and "checkpoint" in str(info.value)
    healed = PartitionStore(path, heal=True)
    try:
        assert healed.healed_from is not None and healed.checkpoint() == 0 and healed.count() == 0
    finally:
        healed.close()


def test_a_held_lock_refuses_a_second_store(tmp_path: Path) -> None:
    path = tmp_path / "p0000.sqlite"
    held = PartitionStore(path)
    try:
        with pytest.raises(StoreLockedError) as info:
            PartitionStore(path, lock_wait_s=0)
        assert str(os.getpid()) in str(info.value)  # names the holder
    finally:
        held.close()
    PartitionStore(path, lock_wait_s=0).close()  # free again once closed


def test_lock_store_directly(tmp_path: Path) -> None:
    path = tmp_path / "p0000.sqlite"
    fh = lock_store(path, 0)
    try:
        assert is_locked(path)
        with pytest.raises(StoreLockedError):
            PartitionStore(path, lock_wait_s=0.1)  # waits a little, then gives up
        assert not path.exists()  # refused before the database was opened
    finally:
        fh.close()
    assert not is_locked(path)


def test_stored_text_is_canonical_json(tmp_path: Path) -> None:
    # The text json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes:
    # stores written before and after a change of JSON library hash the same.
    doc = {"z": [1, -2, 3.5, None, True, False], "a": {"é": "ü\n\t\"\\", "b": 10**15}, "m": "→ ☃"}
    store = PartitionStore(tmp_path / "p0000.sqlite")
    try:
        store.begin()
        store.put("t", "k", doc)
        store.commit(next_offset=1)
        (line,) = store.dump()
    finally:
        store.close()
    assert line == "t\tk\t" + json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
