"""A blocking librdkafka call as the worker makes it: under a watchdog deadline, at a wedge point
of the fault injector, and retried while librdkafka says the error is retriable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from choreo.runtime.faults import FaultInjector
from choreo.runtime.triage import RETRIES, call_retrying
from choreo.runtime.watchdog import Watchdog


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
        with watchdog.guard(name, timeout_s, grace_s):
            faults.wedge(name)
            return fn(*args)

    return call_retrying(attempt, attempts=attempts, what=name)
