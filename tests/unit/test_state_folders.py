"""One state folder per topic prefix, stores that name their owner, and a state folder that cannot
be made is one sentence (issue 19, findings 4 and 9)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from choreo.exceptions import ConfigurationError, ForeignStoreError
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


def test_a_store_from_before_stores_named_their_owner_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "p0000.sqlite"
    old = PartitionStore(path)  # no owner: what every store was before
    old.commit(next_offset=3)
    old.close()
    adopted = PartitionStore(path, owner=StoreOwner("x.", "orders"))
    assert adopted.checkpoint() == 3
    adopted.close()
    with pytest.raises(ForeignStoreError):
        PartitionStore(path, owner=StoreOwner("y.", "orders"))


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


def test_a_state_dir_that_cannot_be_created_is_one_sentence() -> None:
    # /proc takes no new folders, not even from root: the FileNotFoundError of the issue.
    with pytest.raises(ConfigurationError, match="cannot create the state folder /proc/x"):
        PartitionStore(store_path(Path("/proc/x"), "orders", 0))


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any folder")
def test_a_state_dir_without_write_permission_is_one_sentence(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigurationError, match="CHOREO_STATE_DIR"):
            PartitionStore(store_path(locked, "orders", 0))
    finally:
        locked.chmod(0o700)
