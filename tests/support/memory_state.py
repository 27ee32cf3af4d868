"""A dict-backed State for unit tests: JSON values only, copied in and out like a real store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


class MemoryState:
    """Tables of JSON documents in memory, implementing choreo.contract.State."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, str]] = {}

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        raw = self.tables.get(table, {}).get(key)
        return None if raw is None else json.loads(raw)

    def scan(self, table: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        rows = self.tables.get(table, {})
        for key in sorted(k for k in rows if k.startswith(prefix)):
            yield key, json.loads(rows[key])

    def put(self, table: str, key: str, value: dict[str, Any]) -> None:
        # Serialising here fails on anything that is not JSON (a datetime, a set), as a store would.
        self.tables.setdefault(table, {})[key] = json.dumps(value, sort_keys=True, allow_nan=False)

    def delete(self, table: str, key: str) -> None:
        self.tables.get(table, {}).pop(key, None)

    def dump(self) -> str:
        """A canonical dump, equal for equal states."""
        return json.dumps({t: rows for t, rows in sorted(self.tables.items()) if rows}, sort_keys=True)
