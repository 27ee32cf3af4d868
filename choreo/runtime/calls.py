"""A blocking librdkafka call as the worker makes it: under a watchdog deadline, at a wedge point
of the fault injector, and retried while librdkafka says the error is retriable."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from choreo.runtime.faults import FaultInjector
from choreo.runtime.triage import RETRIES, call_retrying
from choreo.runtime.watchdog import Watchdog

log = logging.getLogger(__name__)

# On a healthy cluster each of these calls takes milliseconds; one that took longer than this is
# logged, so that where a stalled saga's seconds went can be read from the worker's log.
SLOW_CALL_S = 1.0


def note_if_slow(name: str, started: float) -> None:
    took = time.monotonic() - started
    if took > SLOW_CALL_S:
        log.warning("%s returned after %.1f s", name, took)


def guarded_call(
    watchdog: Watchdog,
    faults: FaultInjector,
    name: str,
    timeout_s: float,
    fn: Callable[..., Any],
    *args: Any,
    attempts: int = RETRIES,
    grace_s: float | None = None,
) -> Any:
    """`fn(*args)`; each attempt has its own deadline, since a retry is a new wait. `grace_s`
    replaces the watchdog's grace (Watchdog.guard)."""

    def attempt() -> Any:
        started = time.monotonic()
        try:
            with watchdog.guard(name, timeout_s, grace_s):
                faults.wedge(name)
                return fn(*args)
        finally:
            note_if_slow(name, started)

    return call_retrying(attempt, attempts=attempts, what=name)
