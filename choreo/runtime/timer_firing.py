"""Firing the assigned partitions' due timers inside a batch's Kafka transaction.

The commit protocol calls `fire_into` on every batch; the worker's loop asks `due()` when no
record came, so timers fire while a partition receives nothing at all. Both look at the stores at
most every `check_every_s` (CHOREO_TIMER_CHECK_MS): one indexed row per store, the earliest due.
A backlog (a worker back after a long stop) is fired `per_partition` timers per partition and
batch, so each transaction stays small and the loop keeps reading its inputs in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from choreo.runtime.batch import Batch, TransactionalStore
from choreo.timers import DueTimer, TimerFired, count_timers, due_timers, next_due_ms, still_set

FireTimer = Callable[[DueTimer, int, int, TransactionalStore, Batch], TimerFired]

PER_PARTITION = 200
_PENDING_EVERY_S = 5.0  # the pending-timers gauge counts rows: not on every check


class TimerFiring:
    """Finds due timers in the assigned stores and fires them through `fire` (RecordProcessor.fire)."""

    def __init__(
        self,
        stores: Mapping[int, TransactionalStore],
        fire: FireTimer,
        check_every_s: float,
        per_partition: int = PER_PARTITION,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stores = stores
        self.fire = fire
        self.check_every_s = check_every_s
        self.per_partition = per_partition
        self.wall = wall  # the time a timer fires at: the one clock `decide` ever sees
        self.clock = clock
        self._next_check = 0.0
        self._pending_counted = -_PENDING_EVERY_S
        self.pending = 0
        self.overdue_s = 0.0

    def _now_ms(self) -> int:
        return int(self.wall() * 1000)

    def due(self) -> bool:
        """Is any timer due? At most once per `check_every_s`; a yes leaves the check to
        `fire_into`, the batch that fires them."""
        if self.clock() < self._next_check:
            return False
        now_ms = self._now_ms()
        earliest = self._earliest()
        if earliest is None or earliest > now_ms:
            self._next_check = self.clock() + self.check_every_s
            self.overdue_s = 0.0
            return False
        return True

    def fire_into(self, batch: Batch) -> None:
        """Fire what is due into `batch` (its stores begun here when the records did not)."""
        if self.clock() < self._next_check:
            return
        self._next_check = self.clock() + self.check_every_s
        now_ms = self._now_ms()
        backlog: list[TransactionalStore] = []  # partitions that may have more due than fired
        for p in sorted(self.stores):
            store = self.stores[p]
            due = due_timers(store, now_ms, self.per_partition)
            if not due:
                continue
            if len(due) == self.per_partition:
                backlog.append(store)
            if p not in batch.stores:
                store.begin()
                batch.stores[p] = store  # only once begun: these are what a failure rolls back
            for timer in due:
                if not still_set(store, timer):
                    continue  # cancelled or moved by a firing just before it in this batch
                self.fire(timer, now_ms, p, store, batch)
                batch.timers_fired += 1
                batch.timer_lateness.append(max(0, now_ms - timer.due_ms) / 1000)
        if backlog:
            self._next_check = 0.0  # more are due: the next turn of the loop fires them
        self._measure(now_ms, backlog)

    def retry_soon(self) -> None:
        """The batch that fired aborted: its firings are undone, look again on the next turn."""
        self._next_check = 0.0

    def _earliest(self) -> int | None:
        found = [t for t in (next_due_ms(s) for s in self.stores.values()) if t is not None]
        return min(found) if found else None

    def _measure(self, now_ms: int, backlog: list[TransactionalStore]) -> None:
        """The gauges: how overdue the earliest timer is, and (every few seconds) how many wait.

        Only a partition that fired its whole allowance can still hold a due timer: everything
        else due was just fired, so only those are read again."""
        left = [t for t in (next_due_ms(s) for s in backlog) if t is not None and t <= now_ms]
        self.overdue_s = max(0, now_ms - min(left)) / 1000 if left else 0.0
        if self.clock() - self._pending_counted >= _PENDING_EVERY_S:
            self._pending_counted = self.clock()
            self.pending = sum(count_timers(store) for store in self.stores.values())
