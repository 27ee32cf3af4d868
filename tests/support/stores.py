"""Both stores the store contract knows, for tests of what services keep in state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from choreo.runtime.store import PartitionStore
from choreo.testing import MemoryState


@pytest.fixture(params=["memory", "sqlite", "sqlite-in-transaction"])
def state_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """MemoryState, the SQLite PartitionStore, and the latter inside an open transaction, which
    is where the worker's evolve writes (its scans then merge the write-back cache with the
    stored rows)."""
    if request.param == "memory":
        yield MemoryState()
        return
    sqlite = PartitionStore(tmp_path / "p0000.sqlite")
    if request.param == "sqlite-in-transaction":
        sqlite.begin()
    yield sqlite
    sqlite.close()
