"""Fault injection for crash tests: die or hang at a named point of the commit protocol.

CHOREO_FAULT_POINT names the point, CHOREO_FAULT_AFTER_BATCHES how many batches must commit
first. `before_kafka_commit` and `after_kafka_commit` kill the process (SIGKILL) there, and
`offsets_carried` right after a batch that wrote nothing left its offsets uncommitted,
`timers_fired` in a batch that fired timers, just before its Kafka commit;
`wedge:<call>` (e.g. `wedge:send_offsets_to_transaction`) blocks forever inside that blocking
client call, as librdkafka can after a coordinator dies, to prove the watchdog. With
CHOREO_FAULT_ONCE_FILE set, the fault fires only while that file does not exist, and creates it
first, so a restarted worker runs normally. Unset, every call is a no-op; a point that names
nothing the worker has is a ConfigurationError, since a crash test that never crashes proves nothing.
"""

from __future__ import annotations

import os
import signal
import threading

from choreo.exceptions import ConfigurationError

# Where choreo/runtime/commit.py calls `at()`: either side of the Kafka commit, and after a
# batch whose offsets wait for a later transaction.
# `timers_fired`: a batch that fired timers, its records flushed, just before its commit.
KILL_POINTS = ("before_kafka_commit", "after_kafka_commit", "offsets_carried", "timers_fired")
# The blocking client calls that pass through `wedge()` (choreo/runtime/calls.py and commit.py).
WEDGE_CALLS = (
    "init_transactions",
    "begin_transaction",
    "flush",
    "send_offsets_to_transaction",
    "commit_transaction",
    "abort_transaction",
    "committed",
)
WEDGE_PREFIX = "wedge:"
POINTS = (*KILL_POINTS, *(WEDGE_PREFIX + call for call in WEDGE_CALLS))


class FaultInjector:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        self.point = env.get("CHOREO_FAULT_POINT", "")
        if self.point and self.point not in POINTS:
            raise ConfigurationError(
                f"CHOREO_FAULT_POINT={self.point!r} is not a fault point; use one of {', '.join(POINTS)}"
            )
        after = env.get("CHOREO_FAULT_AFTER_BATCHES", "0") or "0"
        if not after.isdigit():
            raise ConfigurationError(
                f"CHOREO_FAULT_AFTER_BATCHES={after!r} is not a number of batches (0 or more)"
            )
        self.after = int(after)
        self.once_file = env.get("CHOREO_FAULT_ONCE_FILE", "")
        self.batches = 0

    def batch_committed(self) -> None:
        self.batches += 1

    def _armed(self, point: str) -> bool:
        if self.point != point or self.batches < self.after:
            return False
        if self.once_file:
            try:
                with open(self.once_file, "x"):
                    pass
            except FileExistsError:
                return False
        return True

    def at(self, point: str) -> None:
        if point not in KILL_POINTS:
            raise ValueError(f"{point!r} is not in KILL_POINTS")  # keeps the list true
        if self._armed(point):
            os.kill(os.getpid(), signal.SIGKILL)

    def wedge(self, call: str) -> None:
        """Never return, like a client call waiting on a condition nobody signals."""
        if call not in WEDGE_CALLS:
            raise ValueError(f"{call!r} is not in WEDGE_CALLS")  # keeps the list true
        if self._armed(WEDGE_PREFIX + call):
            forever = threading.Event()
            while True:
                forever.wait(3600)
