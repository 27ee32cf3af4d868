"""Workers run in threads of the test process, for tests that must see inside them (their spans).

Each thread runs the same `Worker` that `choreo worker` runs; only the process is shared. A worker
that fails makes `stop()` fail with its error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from choreo.runtime.compose import build_worker
from choreo.runtime.observation import NoTracing
from choreo.runtime.worker import Worker
from choreo.settings import Settings
from choreo.tracing.spans import WorkerTracing


class WorkerThreads:
    """One in-process worker per service, each in a thread of its own."""

    def __init__(self) -> None:
        self._running: list[tuple[Worker, threading.Thread]] = []
        self.errors: list[tuple[str, BaseException]] = []

    def start(self, settings: Settings, service: str,
              tracing: Callable[[str], WorkerTracing | None] = lambda _name: None) -> Worker:
        worker = build_worker(service, settings, tracing=tracing(service) or NoTracing())

        def run() -> None:
            try:
                worker.run()
            except BaseException as e:  # noqa: BLE001 - handed to the test in stop()
                self.errors.append((service, e))

        thread = threading.Thread(target=run, name=f"worker-{service}", daemon=True)
        thread.start()
        self._running.append((worker, thread))
        return worker

    def stop(self, timeout: float = 60) -> None:
        """Ask every worker to finish its batch and stop; fail if one failed or does not stop."""
        for worker, _thread in self._running:
            worker.stop()
        for worker, thread in self._running:
            thread.join(timeout)
            assert not thread.is_alive(), f"{worker.service.name} did not stop within {timeout}s"
        self._running.clear()
        assert not self.errors, f"workers failed: {self.errors}"
