"""One state folder per topic prefix, stores that name their owner, and a state folder that cannot
be made is one sentence."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from choreo.exceptions import ConfigurationError, ForeignStoreError, StoreDamagedError
from choreo.runtime import store as store_module
from choreo.runtime.store import (
    PartitionStore,
    StoreOwner,
    prefix_folder,
    state_dir_of,
    store_path,
)
from choreo.settings import Settings

# What CHOREO_TOPIC_PREFIX accepts (choreo/settings.py): Kafka's topic characters.
PREFIXES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
                   max_size=200)


def _folder(prefix: str, root: Path = Path("state")) -> Path:
    return state_dir_of(Settings(topic_prefix=prefix, state_dir=root))


def test_prefixes_that_differ_only_in_their_separator_get_four_folders() -> None:
    folders = {p: _folder(p) for p in ("s-", "s.", "s_", "s")}
    assert len(set(folders.values())) == 4
    assert folders["s."] == Path("state/s")  # the usual `name.` keeps the folder it always had
    assert folders["s-"] == Path("state/@s-")


def test_no_prefix_keeps_the_state_folder_itself() -> None:
    assert _folder("") == Path("state")


@given(PREFIXES, PREFIXES)
def test_the_folder_of_a_prefix_is_one_path_component_and_no_other_prefix_has_it(a: str, b: str) -> None:
    if a != b:
        assert _folder(a) != _folder(b)
    for prefix in (a, b):
        folder = prefix_folder(prefix)
        if prefix:
            assert folder not in ("", ".", "..") and "/" not in folder
            assert _folder(prefix).parent == Path("state")


SERVICES = st.sampled_from(["orders", "packaging", "s", "@s", "s-"])


@given(PREFIXES, PREFIXES, SERVICES, SERVICES)
def test_no_two_prefixes_share_a_store_file(a: str, b: str, one: str, other: str) -> None:
    # Not even through the empty prefix, whose service folders sit beside the prefixes' folders.
    if a != b:
        assert store_path(_folder(a), one, 0) != store_path(_folder(b), other, 0)


def test_a_store_made_under_one_prefix_is_refused_under_another_with_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "orders" / "p0000.sqlite"
    store = PartitionStore(path, owner=StoreOwner("s-", "orders"))
    store.begin()
    store.put("orders", "hub-north/o-1", {"status": "accepted"})
    store.commit(next_offset=7)
    store.close()

    with pytest.raises(ForeignStoreError) as refused:
        PartitionStore(path, heal=True, owner=StoreOwner("s.", "orders"))
    message = str(refused.value)
    assert "'s-'" in message and "'s.'" in message and "\n" not in message
    assert isinstance(refused.value, ConfigurationError)  # the worker exits with the sentence
    # Refused, never healed: the file is where it was, whole, and not moved aside as damaged.
    assert sorted(p.name for p in path.parent.iterdir() if "damaged" in p.name) == []
    again = PartitionStore(path, owner=StoreOwner("s-", "orders"))
    assert again.checkpoint() == 7 and again.get("orders", "hub-north/o-1") == {"status": "accepted"}
    again.close()


def test_a_store_of_another_service_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p0000.sqlite"
    PartitionStore(path, owner=StoreOwner("x.", "orders")).close()
    with pytest.raises(ForeignStoreError, match="'orders'"):
        PartitionStore(path, owner=StoreOwner("x.", "packaging"))


def _legacy_store(path: Path) -> None:
    """A store as every version before owners wrote it: no meta rows, keys not escaped."""
    old = PartitionStore(path)  # no owner: neither recorded nor checked
    old.begin()
    old.put("orders", "hub-north/y/o-1", {"status": "accepted"})  # now hub-north + y%2Fo-1
    old.commit(next_offset=3)
    old.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta")  # what the old schema had: no meta at all


def test_a_store_from_before_stores_named_their_owner_is_moved_aside_and_restored_from_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # Its keys may be unescaped and its folder another prefix's (`s-` wrote state/s before): its
    # state cannot be trusted, and the own topic from offset 0 always gives the right one.
    path = tmp_path / "orders" / "p0000.sqlite"
    _legacy_store(path)
    with caplog.at_level(logging.INFO, logger="choreo.runtime.store"):
        store = PartitionStore(path, heal=True, owner=StoreOwner("s.", "orders"))
    assert store.checkpoint() == 0 and store.count() == 0  # restored from offset 0 by the worker
    assert store.healed_from is not None and ".legacy-" in store.healed_from.name
    store.close()
    kept = PartitionStore(store.healed_from, lock=False)  # kept for inspection, whole
    assert kept.checkpoint() == 3 and kept.get("orders", "hub-north/y/o-1") is not None
    kept.close()
    [line] = [r for r in caplog.records if r.name == "choreo.runtime.store"]
    assert line.levelno == logging.WARNING and "\n" not in line.getMessage()
    assert "names no owner" in line.getMessage() and "offset 0" in line.getMessage()
    # From now on it is the owner's store, and only the owner's.
    PartitionStore(path, owner=StoreOwner("s.", "orders")).close()
    with pytest.raises(ForeignStoreError):
        PartitionStore(path, owner=StoreOwner("s-", "orders"))


def test_a_legacy_store_is_refused_in_one_sentence_where_it_may_not_be_moved(tmp_path: Path) -> None:
    path = tmp_path / "p0000.sqlite"
    _legacy_store(path)
    with pytest.raises(StoreDamagedError, match="names no owner") as refused:
        PartitionStore(path, owner=StoreOwner("x.", "orders"))
    assert "\n" not in str(refused.value)
    assert PartitionStore(path, lock=False).checkpoint() == 3  # left where it was


@pytest.mark.parametrize("made", ["empty file", "empty store"])
def test_a_brand_new_store_just_gets_its_owner(tmp_path: Path, made: str) -> None:
    path = tmp_path / "p0000.sqlite"
    if made == "empty file":
        path.write_bytes(b"")  # what rebuild's mkstemp gives
    else:
        PartitionStore(path).close()  # tables, no rows
    store = PartitionStore(path, heal=True, owner=StoreOwner("x.", "orders"))
    assert store.healed_from is None and store.checkpoint() == 0
    store.close()
    with pytest.raises(ForeignStoreError):
        PartitionStore(path, owner=StoreOwner("y.", "orders"))


def test_the_owner_is_claimed_in_one_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A crash may come between any two statements: what another connection sees after each row
    # written to `meta` is what the file would hold after a crash there. Before the fix each row
    # committed alone, and a crash after the first left a prefix without a service: a store
    # refused as another owner's for ever.
    path = tmp_path / "p0000.sqlite"
    PartitionStore(path).close()  # an empty store, in WAL mode like every store
    seen: list[set[str]] = []

    def crash_point() -> int:
        with sqlite3.connect(path) as other:
            seen.append({name for (name,) in other.execute("SELECT name FROM meta")})
        return 0

    real_connect = sqlite3.connect

    def observed(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = real_connect(*args, **kwargs)
        db.create_function("crash_point", 0, crash_point)
        db.execute("CREATE TEMP TRIGGER observe AFTER INSERT ON main.meta "
                   "BEGIN SELECT crash_point(); END")
        return db

    monkeypatch.setattr(store_module.sqlite3, "connect", observed)
    PartitionStore(path, owner=StoreOwner("x.", "orders")).close()
    monkeypatch.undo()
    assert len(seen) == 2  # one look per row written
    assert all(names in (set(), {"topic_prefix", "service"}) for names in seen), seen
    PartitionStore(path, owner=StoreOwner("x.", "orders")).close()


def test_a_healed_store_names_its_owner_again(tmp_path: Path) -> None:
    path = tmp_path / "p0000.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    healed = PartitionStore(path, heal=True, owner=StoreOwner("x.", "orders"))
    assert healed.healed_from is not None
    healed.close()
    with pytest.raises(ForeignStoreError):
        PartitionStore(path, owner=StoreOwner("y.", "orders"))


def test_a_state_dir_that_is_a_file_is_one_sentence(tmp_path: Path) -> None:
    a_file = tmp_path / "state"
    a_file.write_text("not a folder")
    with pytest.raises(ConfigurationError, match="CHOREO_STATE_DIR") as refused:
        PartitionStore(store_path(a_file, "orders", 0))
    assert "Not a directory" in str(refused.value) and "\n" not in str(refused.value)


def test_a_state_dir_that_cannot_be_written_is_one_sentence() -> None:
    # /proc/self exists and is a folder, but takes no new entries, not even from root (a test with
    # a chmod'ed folder would pass for root and so prove nothing where CI runs as root).
    with pytest.raises(ConfigurationError, match="CHOREO_STATE_DIR"):
        PartitionStore(store_path(Path("/proc/self"), "orders", 0))


def test_a_state_dir_that_cannot_be_created_is_one_sentence() -> None:
    # /proc takes no new folders, not even from root: it used to surface as a FileNotFoundError.
    with pytest.raises(ConfigurationError, match="cannot create the state folder /proc/x"):
        PartitionStore(store_path(Path("/proc/x"), "orders", 0))
