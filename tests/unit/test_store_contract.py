"""One contract, two stores: the SQLite PartitionStore the worker uses and the MemoryState that
unit tests use in its place. A test that passes on the memory store then says something about
the real one."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from choreo.runtime.store import PartitionStore
from choreo.state_json import NotStorableError
from choreo.testing import MemoryState


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryState()
        return
    sqlite = PartitionStore(tmp_path / "p0000.sqlite")
    yield sqlite
    sqlite.close()


def keys(store: Any, table: str, prefix: str = "") -> list[str]:
    return [key for key, _ in store.scan(table, prefix)]


def test_get_returns_what_put_stored_and_none_for_a_missing_key(store: Any) -> None:
    store.put("t", "a", {"n": 1, "nested": {"list": [1, "x", None, True]}})
    assert store.get("t", "a") == {"n": 1, "nested": {"list": [1, "x", None, True]}}
    assert store.get("t", "missing") is None
    assert store.get("other-table", "a") is None


def test_put_replaces_and_delete_removes(store: Any) -> None:
    store.put("t", "a", {"v": 1})
    store.put("t", "a", {"v": 2})
    assert store.get("t", "a") == {"v": 2}
    store.delete("t", "a")
    assert store.get("t", "a") is None
    store.delete("t", "never-there")  # deleting nothing is fine


def test_tables_are_separate(store: Any) -> None:
    store.put("one", "k", {"from": "one"})
    store.put("two", "k", {"from": "two"})
    assert store.get("one", "k") == {"from": "one"}
    assert keys(store, "two") == ["k"]


def test_scan_yields_only_the_prefix_in_key_order(store: Any) -> None:
    for key in ["hub-2/b", "hub-1/b", "hub-10/a", "hub-1/a", "hub-1", "hub-"]:
        store.put("stock", key, {"key": key})
    assert keys(store, "stock", "hub-1/") == ["hub-1/a", "hub-1/b"]
    assert keys(store, "stock", "hub-1") == ["hub-1", "hub-1/a", "hub-1/b", "hub-10/a"]
    assert keys(store, "stock") == ["hub-", "hub-1", "hub-1/a", "hub-1/b", "hub-10/a", "hub-2/b"]
    assert [v for _, v in store.scan("stock", "hub-2")] == [{"key": "hub-2/b"}]
    assert keys(store, "stock", "nope") == []
    assert keys(store, "empty-table") == []


def test_scan_orders_by_code_point_not_by_locale(store: Any) -> None:
    for key in ["b", "B", "a", "é", "Z", "_"]:
        store.put("t", key, {})
    assert keys(store, "t") == sorted(["b", "B", "a", "é", "Z", "_"])


def test_documents_are_copied_in_and_out(store: Any) -> None:
    doc = {"items": [1]}
    store.put("t", "a", doc)
    doc["items"].append(2)  # the caller's object is not the stored one
    got = store.get("t", "a")
    got["items"].append(3)  # nor is what get() returned
    assert store.get("t", "a") == {"items": [1]}


def test_a_value_that_is_not_json_is_refused(store: Any) -> None:
    with pytest.raises(TypeError):
        store.put("t", "a", {"when": object()})
    assert store.get("t", "a") is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1.0, math.nan], {"deep": [math.inf]}])
def test_a_float_json_cannot_spell_is_refused_not_stored_as_null(store: Any, value: Any) -> None:
    with pytest.raises(NotStorableError):
        store.put("t", "a", {"v": value, "reason": None})
    assert store.get("t", "a") is None


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**30, {"n": [2**70]}])
def test_an_integer_beyond_64_bits_is_refused(store: Any, value: Any) -> None:
    with pytest.raises(TypeError, match="not JSON"):
        store.put("t", "a", {"v": value})
    assert store.get("t", "a") is None


@pytest.mark.parametrize("value", [{1: "x"}, {"nested": {None: 1}}, {"t": {(1, 2): 3}}])
def test_a_key_that_is_not_a_string_is_refused_not_turned_into_one(store: Any, value: Any) -> None:
    with pytest.raises(TypeError, match="not JSON"):
        store.put("t", "a", value)
    assert store.get("t", "a") is None


def test_the_edges_that_are_storable_come_back_unchanged(store: Any) -> None:
    doc = {"big": 2**63 - 1, "small": -(2**63), "u64": 2**64 - 1, "tiny": 5e-324, "huge": 1.7e308,
           "neg0": -0.0, "text": "\u0000é\U0001f600", "empty": {}, "list": []}
    store.put("t", "a", doc)
    assert store.get("t", "a") == doc


def test_both_stores_keep_the_same_text_for_the_same_document(tmp_path: Path) -> None:
    doc = {"b": [1, 2.5, 1e16, None, True], "a": {"z": "ü", "y": -1}}
    memory, sqlite = MemoryState(), PartitionStore(tmp_path / "p.sqlite")
    try:
        memory.put("t", "k", doc)
        sqlite.put("t", "k", doc)
        (line,) = sqlite.dump()
        assert line == f"t\tk\t{memory.tables['t']['k']}"
    finally:
        sqlite.close()


def test_commit_keeps_state_and_checkpoint(store: Any) -> None:
    assert store.checkpoint() == 0  # nothing applied yet
    store.begin()
    store.put("t", "a", {"v": 1})
    store.commit(next_offset=7)
    assert store.get("t", "a") == {"v": 1}
    assert store.checkpoint() == 7
    store.begin()
    store.put("t", "b", {"v": 2})
    store.commit()  # no offset: the checkpoint stays
    assert store.checkpoint() == 7
    assert keys(store, "t") == ["a", "b"]


def test_rollback_discards_state_and_checkpoint(store: Any) -> None:
    store.begin()
    store.put("t", "a", {"v": 1})
    store.commit(next_offset=5)
    store.begin()
    store.put("t", "a", {"v": 2})
    store.put("t", "b", {"v": 2})
    store.delete("t", "a")
    store.rollback()
    assert store.get("t", "a") == {"v": 1}
    assert store.get("t", "b") is None
    assert store.checkpoint() == 5


def test_begin_twice_is_one_transaction(store: Any) -> None:
    store.begin()
    store.put("t", "a", {"v": 1})
    store.begin()  # a second partition record of the same batch: still the batch's transaction
    store.put("t", "b", {"v": 1})
    store.rollback()
    assert keys(store, "t") == []


def test_rollback_without_a_transaction_does_nothing(store: Any) -> None:
    store.put("t", "a", {"v": 1})
    store.rollback()
    assert store.get("t", "a") == {"v": 1}


def test_commit_with_an_offset_outside_a_transaction_moves_the_checkpoint(store: Any) -> None:
    store.commit(next_offset=3)
    assert store.checkpoint() == 3


def test_savepoint_rollback_undoes_one_record_only(store: Any) -> None:
    store.begin()
    store.put("t", "kept", {"v": 1})
    store.savepoint()
    store.put("t", "dropped", {"v": 2})
    store.put("t", "kept", {"v": "overwritten"})
    store.rollback_savepoint()
    store.put("t", "after", {"v": 3})  # the transaction goes on after the savepoint
    store.commit(next_offset=1)
    assert store.get("t", "kept") == {"v": 1}
    assert store.get("t", "dropped") is None
    assert store.get("t", "after") == {"v": 3}


def test_released_savepoint_keeps_its_writes_until_the_transaction_rolls_back(store: Any) -> None:
    store.begin()
    store.savepoint()
    store.put("t", "a", {"v": 1})
    store.release_savepoint()
    assert store.get("t", "a") == {"v": 1}
    store.rollback()
    assert store.get("t", "a") is None


def test_savepoints_can_follow_one_another(store: Any) -> None:
    store.begin()
    for n in range(3):
        store.savepoint()
        store.put("t", str(n), {"n": n})
        if n == 1:
            store.rollback_savepoint()
        else:
            store.release_savepoint()
    store.commit(next_offset=3)
    assert keys(store, "t") == ["0", "2"]


def test_replace_damaged_continues_on_an_empty_store(store: Any) -> None:
    store.begin()
    store.put("t", "a", {"v": 1})
    store.commit(next_offset=9)
    store.begin()
    store.put("t", "b", {"v": 1})
    store.replace_damaged()  # what the worker does with a damaged store before restoring it
    assert keys(store, "t") == []
    assert store.checkpoint() == 0
    store.begin()
    store.put("t", "c", {"v": 1})
    store.commit(next_offset=1)
    assert keys(store, "t") == ["c"]


def test_scan_in_a_transaction_sees_its_writes_in_key_order(store: Any) -> None:
    for key in ["a/1", "a/3", "a/5", "b/1"]:
        store.put("t", key, {"v": key})
    store.begin()
    store.put("t", "a/2", {"v": "new"})  # between stored keys
    store.put("t", "a/9", {"v": "new"})  # after the last stored key
    store.put("t", "a/0", {"v": "new"})  # before the first
    store.delete("t", "a/3")
    store.put("t", "a/5", {"v": "changed"})
    store.savepoint()
    store.delete("t", "a/9")
    store.put("t", "a/4", {"v": "in savepoint"})
    assert keys(store, "t", "a/") == ["a/0", "a/1", "a/2", "a/4", "a/5"]
    store.rollback_savepoint()
    assert list(store.scan("t", "a/")) == [
        ("a/0", {"v": "new"}), ("a/1", {"v": "a/1"}), ("a/2", {"v": "new"}),
        ("a/5", {"v": "changed"}), ("a/9", {"v": "new"}),
    ]
    assert store.get("t", "a/3") is None
    store.commit(next_offset=1)
    assert keys(store, "t") == ["a/0", "a/1", "a/2", "a/5", "a/9", "b/1"]


def test_reads_in_a_transaction_see_its_writes_and_a_rollback_forgets_them(store: Any) -> None:
    store.put("t", "a", {"v": 1})
    store.begin()
    assert store.get("t", "a") == {"v": 1}
    store.put("t", "a", {"v": 2})
    assert store.get("t", "a") == {"v": 2}
    store.put("t", "a", {"v": 1})  # back to what is stored
    store.delete("t", "b")
    assert store.get("t", "a") == {"v": 1}
    store.put("t", "b", {"v": 3})
    store.rollback()
    assert store.get("t", "a") == {"v": 1}
    assert store.get("t", "b") is None


def test_written_back_state_is_read_and_kept_at_commit_or_dropped_at_rollback(store: Any) -> None:
    # The commit protocol writes the batch back before the Kafka commit, then commits (or rolls
    # back) the store: reads in between see the batch, and rollback still undoes it.
    for keep in (True, False):
        store.begin()
        store.put("t", "a/1", {"keep": keep})
        store.delete("t", "gone")
        store.write_back()
        assert store.get("t", "a/1") == {"keep": keep}
        assert [k for k, _ in store.scan("t", "a/")] == ["a/1"]
        if keep:
            store.commit(next_offset=3)
        else:
            store.rollback()
        assert store.get("t", "a/1") == {"keep": True}
    assert store.checkpoint() == 3
