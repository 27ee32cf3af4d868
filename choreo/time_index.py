"""Documents by name plus an index ordered by a time: the shape timers and held sagas share.

A document lives in `table` under its name, with its time (epoch ms) in `field`; the index
`index` holds one empty row per document, keyed "<time, 15 digits>/<name escaped>", so key order
is time order and the earliest is one indexed row read. Both are ordinary state rows: restored,
rebuilt, verified and moved with the partition like the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from choreo.keys import compose_key, key_parts

if TYPE_CHECKING:  # choreo.contract re-exports the modules built on this one
    from choreo.contract import State, StateView

_DIGITS = 15  # epoch milliseconds up to the year 33658: fixed width keeps key order = time order


class TimeIndex:
    def __init__(self, table: str, index: str, field: str) -> None:
        self.table, self.index, self.field = table, index, field

    def _key(self, ms: int, name: str) -> str:
        return compose_key(f"{ms:0{_DIGITS}d}", name)

    @staticmethod
    def in_range(ms: int) -> bool:
        return 0 <= ms < 10**_DIGITS

    def get(self, state: StateView, name: str) -> dict[str, Any] | None:
        return state.get(self.table, name)

    def put(self, state: State, name: str, ms: int, **rest: Any) -> None:
        """Store `name` at time `ms` (moving it if it was stored at another time)."""
        self.remove(state, name)
        state.put(self.table, name, {self.field: ms, **rest})
        state.put(self.index, self._key(ms, name), {})

    def remove(self, state: State, name: str) -> None:
        current = state.get(self.table, name)
        if current is not None:
            state.delete(self.index, self._key(current[self.field], name))
            state.delete(self.table, name)

    def earliest_ms(self, state: StateView) -> int | None:
        for key, _ in state.scan(self.index):
            return int(key_parts(key)[0])
        return None

    def in_order(self, state: StateView) -> Iterator[tuple[int, str]]:
        """(time, name) of every document, the earliest first."""
        for key, _ in state.scan(self.index):
            ms, name = key_parts(key)
            yield int(ms), name

    def count(self, state: StateView) -> int:
        """One row read per document: for a gauge every few seconds, not per record."""
        return sum(1 for _ in state.scan(self.index))
