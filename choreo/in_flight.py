"""Sagas a service holds open: part of its state, marked by `evolve`, watched by the runtime.

A saga a service has taken something for (stock reserved, a drone assigned, a place in a queue,
the saga itself for the service that follows it to its end) is in flight *for that service* until
the service lets go of it. `evolve` says both, from the service's own events:
`saga_started(state, saga, since)` when it takes hold, `saga_ended(state, saga)` when it lets go.

Like a timer, the mark is two documents of the partition's state (by saga, and in an index
ordered by the time it started), so it is restored, rebuilt, verified and moved with the
partition. The worker reads the first row of the index of each assigned partition and exports the
age of the oldest saga it holds (`choreo_oldest_saga_age_seconds`) and how many it holds
(`choreo_sagas_in_flight`): an alert on the first finds a saga that is not ending, whichever
service it is stuck at, without a scan of any topic.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from choreo.time_index import TimeIndex
from choreo.timers import from_ms, to_ms

if TYPE_CHECKING:  # choreo.contract re-exports this module: no import of it at run time
    from choreo.contract import State, StateView

# Reserved tables: a service's own tables never start with "choreo.".
IN_FLIGHT = "choreo.sagas"  # saga -> {"since": epoch ms}
SINCE = "choreo.sagas.since"  # "<since ms, 15 digits>/<saga escaped>" -> {}: the oldest first
_HELD = TimeIndex(IN_FLIGHT, SINCE, "since")


def saga_started(state: State, saga: str, since: datetime) -> None:
    """From `evolve`: this service now holds `saga` open, since `since`.

    Marking a saga that is already marked keeps the first time: a saga that queued for a drone
    and then got one has been held since it queued."""
    if _HELD.get(state, saga) is not None:
        return
    since_ms = max(0, to_ms(since))
    if not _HELD.in_range(since_ms):
        raise ValueError(f"saga {saga!r}: start time {since} is out of range")
    _HELD.put(state, saga, since_ms)


def saga_ended(state: State, saga: str) -> None:
    """From `evolve`: this service holds nothing of `saga` any more (a no-op if it held nothing)."""
    _HELD.remove(state, saga)


def in_flight_since(state: StateView, saga: str) -> datetime | None:
    """Since when this service holds `saga` open, or None if it does not."""
    current = _HELD.get(state, saga)
    return None if current is None else from_ms(current["since"])


def oldest_in_flight_ms(state: StateView) -> int | None:
    """When the oldest saga held open started (epoch ms), or None (one indexed row read)."""
    return _HELD.earliest_ms(state)


def count_in_flight(state: StateView) -> int:
    """How many sagas are held open (one row read per saga: for a gauge every few seconds)."""
    return _HELD.count(state)
