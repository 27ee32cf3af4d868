"""For testing a service's decide and evolve without Kafka or SQLite.

`MemoryState` is a dict-backed store: JSON values only, copied in and out like the worker's
store, with its transactions (begin, savepoints, commit with checkpoint, rollback). choreo's own
tests run one store contract against this and the SQLite store, so a service that passes its
unit tests on it behaves the same in a worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from choreo import state_json
from choreo.contract import Service, State
from choreo.timers import due_timers, to_ms

Tables = dict[str, dict[str, str]]


class MemoryState:
    """Tables of JSON documents in memory, implementing choreo.contract.State."""

    def __init__(self) -> None:
        self.tables: Tables = {}
        self._checkpoint = 0
        # Snapshots taken at BEGIN and at each savepoint; values are JSON text, so a copy of the
        # row dicts is a full copy.
        self._at_begin: tuple[Tables, int] | None = None
        self._savepoints: list[Tables] = []

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        raw = self.tables.get(table, {}).get(key)
        return None if raw is None else state_json.decode(raw)  # type: ignore[no-any-return]

    def scan(self, table: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        rows = self.tables.get(table, {})
        for key in sorted(k for k in rows if k.startswith(prefix)):
            yield key, state_json.decode(rows[key])

    def put(self, table: str, key: str, value: dict[str, Any]) -> None:
        # The store's own canonical JSON: refused here exactly when the SQLite store refuses it.
        self.tables.setdefault(table, {})[key] = state_json.encode(value)

    def delete(self, table: str, key: str) -> None:
        self.tables.get(table, {}).pop(key, None)

    # -- transactions, as PartitionStore has them -----------------------------------------------

    def begin(self) -> None:
        if self._at_begin is None:
            self._at_begin = (self._copy(), self._checkpoint)

    def savepoint(self) -> None:
        self._savepoints.append(self._copy())

    def release_savepoint(self) -> None:
        self._savepoints.pop()

    def rollback_savepoint(self) -> None:
        self.tables = self._savepoints.pop()

    def write_back(self) -> None:
        """Nothing to do: the memory store writes in place (PartitionStore batches its writes)."""

    def commit(self, next_offset: int | None = None) -> None:
        if next_offset is not None:
            self._checkpoint = next_offset
        self._at_begin = None
        self._savepoints.clear()

    def rollback(self) -> None:
        if self._at_begin is not None:
            self.tables, self._checkpoint = self._at_begin
            self._at_begin = None
            self._savepoints.clear()

    def checkpoint(self) -> int:
        return self._checkpoint

    def replace_damaged(self) -> Path:
        """Memory is never damaged; like the real store, continue on an empty one."""
        self.rollback()
        self.tables, self._checkpoint = {}, 0
        return Path("/dev/null")

    def close(self) -> None:
        self.rollback()

    def dump(self) -> str:
        """A canonical dump, equal for equal states."""
        return json.dumps({t: rows for t, rows in sorted(self.tables.items()) if rows}, sort_keys=True)

    def _copy(self) -> Tables:
        return {table: dict(rows) for table, rows in self.tables.items()}


def handle(service: Service, state: State, event: Any) -> list[Any]:
    """What a worker does with one input record, minus Kafka: decide, then evolve each output.

    Returns the decided events; `state` holds their effect afterwards.
    """
    out = list(service.decide(state, event))
    for e in out:
        service.evolve(state, e)
    return out


def fire_due(service: Service, state: State, now: datetime) -> list[Any]:
    """What a worker does with the timers due at `now`, minus Kafka: each fires once, earliest
    first (its TimerFired applied, then decided on, then the decided events applied).

    Returns the decided events of every firing, in order. Time is a value: no test waits."""
    now_ms = to_ms(now)
    out: list[Any] = []
    while due := due_timers(state, now_ms, limit=1):
        fired = due[0].fired(now_ms)
        service.evolve(state, fired)
        out += handle(service, state, fired)
    return out
