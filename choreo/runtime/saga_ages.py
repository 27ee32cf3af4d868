"""The age of the oldest saga the assigned partitions hold open, for the metrics endpoint.

Services mark the sagas they hold with `saga_started`/`saga_ended` (choreo/in_flight.py). The
loop calls `check` on every turn; it reads one indexed row per store at most every `every_s`
and counts the marks every `count_every_s`. The gauges read the cached start time against the
wall clock at each scrape, so the age keeps rising while the worker receives nothing: a saga
stuck because another service is down is exactly when no input arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from choreo.contract import StateView
from choreo.in_flight import count_in_flight, oldest_in_flight_ms


class SagaAges:
    def __init__(
        self,
        every_s: float = 1.0,
        count_every_s: float = 5.0,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every_s = every_s
        self.count_every_s = count_every_s
        self.wall = wall
        self.clock = clock
        self._next = 0.0
        self._next_count = 0.0
        self._oldest_ms: int | None = None
        self.in_flight = 0

    def check(self, stores: Mapping[int, StateView]) -> None:
        """One look, at most every `every_s` (the loop calls it on every turn)."""
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.every_s
        found = [t for t in (oldest_in_flight_ms(s) for s in stores.values()) if t is not None]
        self._oldest_ms = min(found) if found else None
        if now >= self._next_count:
            self._next_count = now + self.count_every_s
            self.in_flight = sum(count_in_flight(s) for s in stores.values())

    def oldest_age_s(self) -> float:
        """Seconds since the oldest saga held open started (0 when none is held)."""
        if self._oldest_ms is None:
            return 0.0
        return max(0.0, self.wall() - self._oldest_ms / 1000)
