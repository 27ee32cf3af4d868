"""What the saga list and the service pages show, kept up to date by following the services' topics.

One thread reads every service's own topic with `read_log(follow=True)` (no group, nothing
committed) and folds each record into a summary per saga and a recent-times window per service.
Pages read the summaries under a lock; `version` grows with every change so that the live list
knows when to send an update.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from choreo.domain import Installation
from choreo.ops.log_reader import LogRecord, to_millis
from choreo.ops.records import key_of, saga_id_of

RATE_WINDOW_S = 60  # the per-service rate is over the last minute of record times
_RETRY_AFTER_S = 5.0  # after a failed read (broker away), before reading again from the start


@dataclass
class SagaSummary:
    saga_id: str
    key: str  # the value of the domain's partition key field
    started_ms: int
    last_ms: int
    events: int = 0
    outcome: str | None = None  # None: not ended yet
    reason: str | None = None  # the end's `reason` field, else the first failure's, if any
    last_type: str = ""


@dataclass(frozen=True)
class SagaFilter:
    """Keep a saga when it matches every given criterion; `outcome` "running" means not ended;
    `stuck_s`: not ended, and started more than that many seconds ago."""

    outcome: str | None = None
    reason: str | None = None
    key: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    stuck_s: float | None = None

    def matches(self, saga: SagaSummary) -> bool:
        if self.stuck_s is not None and (
            saga.outcome is not None or time.time() * 1000 - saga.started_ms <= self.stuck_s * 1000
        ):
            return False
        if self.outcome is not None and (saga.outcome or "running") != self.outcome:
            return False
        if self.reason is not None and saga.reason != self.reason:
            return False
        if self.key is not None and saga.key != self.key:
            return False
        if self.since is not None and saga.started_ms < to_millis(self.since):
            return False
        return self.until is None or saga.started_ms <= to_millis(self.until)


@dataclass
class _ServiceWindow:
    times_ms: deque[int] = field(default_factory=deque)
    total: int = 0


class SagaIndex:
    """Sagas and per-service record times, folded from records of the services' own topics."""

    def __init__(self, domain: Installation, topic_to_service: dict[str, str]) -> None:
        self._domain = domain
        self._service_of = topic_to_service  # physical own topic -> service name
        self._sagas: dict[str, SagaSummary] = {}
        self._windows = {name: _ServiceWindow() for name in topic_to_service.values()}
        self._lock = threading.Lock()
        self.version = 0
        self.error: str | None = None  # the last reading failure, shown on every page until it heals
        self._thread: threading.Thread | None = None

    def add(self, record: LogRecord) -> None:
        """Fold one record in: the saga it belongs to, and its service's window."""
        service = self._service_of.get(record.topic)
        saga_id = saga_id_of(record, self._domain.envelope.saga_field)
        with self._lock:
            if service is not None:
                window = self._windows[service]
                window.times_ms.append(record.timestamp_ms)
                window.total += 1
                while window.times_ms and window.times_ms[0] < record.timestamp_ms - RATE_WINDOW_S * 1000:
                    window.times_ms.popleft()
            if saga_id is not None:
                self._fold(saga_id, record)
            self.version += 1

    def _fold(self, saga_id: str, record: LogRecord) -> None:
        saga = self._sagas.get(saga_id)
        if saga is None:
            saga = self._sagas[saga_id] = SagaSummary(
                saga_id, key_of(record, self._domain.envelope.key_field) or "?",
                record.timestamp_ms, record.timestamp_ms)
        saga.events += 1
        saga.started_ms = min(saga.started_ms, record.timestamp_ms)
        outcome = None if record.event is None else self._domain.outcome_of(record.event)
        # Topics are read side by side, not merged by time: the latest record is the last event.
        # Once the saga has ended, its end is its last event: what a service of another domain
        # writes later about it (a notification, say) is counted, not taken as the saga's end.
        if outcome is not None or (saga.outcome is None and record.timestamp_ms >= saga.last_ms):
            saga.last_ms = record.timestamp_ms
            saga.last_type = record.type_label
        if record.event is None:
            return
        if outcome is not None:
            saga.outcome = outcome
        # The saga's reason: its end's, when the end carries one (the verdict), else its first failure's.
        reason = getattr(record.event, "reason", None)
        role = self._domain.role_of(record.event)
        if reason and (role == "end" or (role == "failure" and saga.reason is None)):
            saga.reason = str(reason)

    def sagas(self, where: SagaFilter = SagaFilter(), limit: int = 500) -> list[SagaSummary]:
        """The matching sagas, newest first."""
        with self._lock:
            found = [s for s in self._sagas.values() if where.matches(s)]
        found.sort(key=lambda s: (s.started_ms, s.saga_id), reverse=True)
        return found[:limit]

    def count(self, where: SagaFilter) -> int:
        """How many sagas match (not capped like `sagas`)."""
        with self._lock:
            return sum(1 for s in self._sagas.values() if where.matches(s))

    def saga(self, saga_id: str) -> SagaSummary | None:
        with self._lock:
            return self._sagas.get(saga_id)

    def choices(self) -> tuple[list[str], list[str], list[str]]:
        """The outcomes, reasons and partition keys seen so far, for the filter menus."""
        with self._lock:
            sagas = list(self._sagas.values())
        outcomes = sorted({s.outcome or "running" for s in sagas})
        reasons = sorted({s.reason for s in sagas if s.reason})
        keys = sorted({s.key for s in sagas})
        return outcomes, reasons, keys

    @property
    def key_name(self) -> str:
        """The domain's name for the partition key, as the pages label it."""
        return self._domain.envelope.key_field

    def rate(self, service: str) -> tuple[float, int]:
        """Records per second of the service's own topic over the last minute of record times
        (counted back from now), and how many it wrote in all."""
        now_ms = int(time.time() * 1000)
        with self._lock:
            window = self._windows[service]
            recent = sum(1 for t in window.times_ms if t >= now_ms - RATE_WINDOW_S * 1000)
            return recent / RATE_WINDOW_S, window.total

    def follow(self, records: Callable[[], Iterable[LogRecord]]) -> None:
        """Fold `records()` in on a daemon thread, reading again after a failure.

        A daemon thread: the reader blocks in consume() and the process may end under it; it
        writes nothing, so nothing is left half done.
        """

        def run() -> None:
            while True:
                try:
                    with self._lock:
                        self._reset()
                    for record in records():
                        if self.error is not None:
                            self.error = None
                        self.add(record)
                except Exception as e:  # any: shown on the pages, then read again
                    self.error = " ".join(str(e).split()) or type(e).__name__
                time.sleep(_RETRY_AFTER_S)  # a pause before reading again, not synchronisation

        self._thread = threading.Thread(target=run, name="saga-index", daemon=True)
        self._thread.start()

    def _reset(self) -> None:
        # Reading starts over from the beginning: forget what was folded, or it would count twice.
        self._sagas.clear()
        for window in self._windows.values():
            window.times_ms.clear()
            window.total = 0
        self.version += 1
