"""Durable timers: part of a service's state, set and cancelled by `evolve`, fired into `decide`.

A service asks for a timer from `evolve`, when one of its own events says so (`set_timer`), and
drops it the same way (`cancel_timer`). The timer is two documents of the partition's state (by
name, and in an index ordered by due time), so it is restored, rebuilt, verified and moved with
the partition exactly like the rest of the state.

When a timer falls due the worker hands `decide` a `TimerFired`: the timer's name, its due time,
the time it fired (the only clock `decide` ever sees, as a value) and the data stored with it.
The `TimerFired` itself is written to the own topic, first, in the transaction that holds what
the firing decided; applying it removes the timer. So a firing and its effects commit together
or not at all (a worker killed in between fires the timer again, once, after the restart), and a
rebuild from the own topic removes every fired timer at the same point of the log as the worker
did. Services that read the own topic skip `TimerFired` records: they are bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from choreo.time_index import TimeIndex

if TYPE_CHECKING:  # choreo.contract re-exports this module: no import of it at run time
    from choreo.contract import State, StateView

# Reserved tables: a service's own tables never start with "choreo.".
TIMERS = "choreo.timers"  # name -> {"due": epoch ms, "data": {str: str}}
DUE = "choreo.timers.due"  # "<due ms, 15 digits>/<name escaped>" -> {}: the next due timer first
SCHEMA_DIR = Path(__file__).parent / "schemas"
_SET = TimeIndex(TIMERS, DUE, "due")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerFired:
    """Input to `decide`: the service's timer `timer` fell due at `due` and fired at `fired_at`.

    `data` is what the service stored with the timer (the ids it needs to act, say). The
    `event_id` is derived from the timer's name and due time, so a firing that is retried
    after a crash produces the same ids downstream.
    """

    SCHEMA: ClassVar[str] = "choreo.timers.TimerFired"

    event_id: str
    timer: str
    due: datetime
    fired_at: datetime
    data: dict[str, str]


@dataclass(frozen=True)
class DueTimer:
    """A timer whose time has come, as the worker reads it from the state."""

    name: str
    due_ms: int
    data: dict[str, str]

    def fired(self, now_ms: int) -> TimerFired:
        from choreo.contract import derive_id  # here: choreo.contract imports this module

        return TimerFired(
            event_id=derive_id(f"{self.name}@{self.due_ms}", "TimerFired"),
            timer=self.name,
            due=from_ms(self.due_ms),
            fired_at=from_ms(max(now_ms, self.due_ms)),
            data=dict(self.data),
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(when: datetime) -> int:
    """Epoch milliseconds of an aware datetime (a naive one is refused: whose clock would it be?).

    Exact integer arithmetic: `timestamp() * 1000` is a float, and can land a hair under the
    millisecond (…999.9998), so a timer would be kept a millisecond early and not found again."""
    if when.tzinfo is None:
        raise ValueError(f"timer time {when!r} has no time zone")
    return (when - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def set_timer(state: State, name: str, due: datetime, data: dict[str, str] | None = None) -> None:
    """From `evolve`: fire `name` at `due` with `data`. Setting a name again moves its timer."""
    due_ms = to_ms(due)
    if not _SET.in_range(due_ms):
        raise ValueError(f"timer {name!r}: due time {due} is out of range")
    values = dict(data or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
        raise TypeError(f"timer {name!r}: data must map strings to strings")
    _SET.put(state, name, due_ms, data=values)


def cancel_timer(state: State, name: str) -> None:
    """From `evolve`: drop the timer `name`, if it is set."""
    _SET.remove(state, name)


def pending_timer(state: StateView, name: str) -> datetime | None:
    """When `name` is due, or None if no such timer is set."""
    current = state.get(TIMERS, name)
    return None if current is None else from_ms(current["due"])


def next_due_ms(state: StateView) -> int | None:
    """The due time of the earliest timer, or None when none is set (one indexed row read)."""
    return _SET.earliest_ms(state)


def count_timers(state: StateView) -> int:
    """How many timers are set (one row read per timer: for a gauge every few seconds). Through
    scan, which sees an open transaction's writes: a COUNT on the file would not."""
    return _SET.count(state)


def due_timers(state: StateView, now_ms: int, limit: int) -> list[DueTimer]:
    """Up to `limit` timers due at `now_ms`, earliest first (ties in the order of their escaped
    names, choreo/keys.py: deterministic, the same on every store and after a rebuild)."""
    found: list[DueTimer] = []
    for due_ms, name in _SET.in_order(state):
        if due_ms > now_ms or len(found) >= limit:
            break
        timer = state.get(TIMERS, name)
        found.append(DueTimer(name, due_ms, dict(timer["data"]) if timer else {}))
    return found


def still_set(state: StateView, timer: DueTimer) -> bool:
    """Is `timer` still set for the time it was read with? An earlier firing of the same batch
    may have cancelled or moved it (its answer's `evolve`)."""
    current = state.get(TIMERS, timer.name)
    return current is not None and current["due"] == timer.due_ms


def apply_fired(state: State, fired: TimerFired) -> None:
    """What a `TimerFired` in the own log does to the state: the timer that fired is gone.

    Only if it is still the timer that fired: one set again meanwhile, to another time, stays.
    """
    current = state.get(TIMERS, fired.timer)
    if current is not None and current["due"] == to_ms(fired.due):
        cancel_timer(state, fired.timer)
