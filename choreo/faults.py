"""Fault injection for crash tests: kill this process (SIGKILL) at a named commit boundary.

Set CHOREO_FAULT_POINT to one of the points below and CHOREO_FAULT_AFTER_BATCHES to the number
of batches that must commit before the crash. Unset, every call is a no-op.
"""

from __future__ import annotations

import os
import signal

POINTS = ("before_kafka_commit", "after_kafka_commit")


class FaultInjector:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        self.point = env.get("CHOREO_FAULT_POINT", "")
        self.after = int(env.get("CHOREO_FAULT_AFTER_BATCHES", "0") or 0)
        self.batches = 0

    def batch_committed(self) -> None:
        self.batches += 1

    def at(self, point: str) -> None:
        if self.point == point and self.batches >= self.after:
            os.kill(os.getpid(), signal.SIGKILL)
