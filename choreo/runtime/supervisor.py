"""`choreo run`: every service as a supervised `choreo worker` child process.

A child that dies is restarted (with a growing pause, so a crash loop does not spin the CPU);
SIGTERM or Ctrl-C stops all children with SIGTERM, which makes each finish and commit its batch.
Each child's log lines are prefixed with its service name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

_MAX_BACKOFF_S = 30.0
# A child that ran this long was healthy: its next crash restarts it after the shortest pause.
_HEALTHY_RUN_S = 60.0
# What a worker's exit code means, for the supervisor's log line.
_EXIT_MEANINGS = {
    1: "stopped on an error",
    3: "ended by its watchdog: a call or a stop request overran its deadline",
    4: "no batch could commit for too long",
    -9: "killed",
}


@dataclass
class _Child:
    service: str
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    backoff: float = 1.0
    pump: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    def __init__(
        self, services: list[str], instance: str = "0", env: dict[str, str] | None = None,
        out: IO[str] | None = None,
    ) -> None:
        self.children = [_Child(s) for s in services]
        self.instance = instance
        self.env = dict(os.environ if env is None else env)
        self.out = out or sys.stdout
        self._stopping = threading.Event()
        self._print_lock = threading.Lock()
        width = max(len(s) for s in services)
        self._width = width

    def stop(self, *_: object) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _say(self, service: str, line: str) -> None:
        with self._print_lock:
            self.out.write(f"{service:<{self._width}} | {line.rstrip()}\n")
            self.out.flush()

    def _env_of(self, child: _Child) -> dict[str, str]:
        """The child's environment: a metrics port given to `choreo run` is the first of a
        range, one port per service, since two workers cannot serve on one port."""
        base = self.env.get("CHOREO_METRICS_PORT", "")
        if not base.isdigit() or int(base) == 0:
            return self.env
        return {**self.env, "CHOREO_METRICS_PORT": str(int(base) + self.children.index(child))}

    def _start(self, child: _Child) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "choreo.cli.main", "worker", child.service,
             "--instance", self.instance],
            env=self._env_of(child), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C in a terminal reaches only the supervisor, which then
            # stops the children in order instead of all of them dying mid-batch at once.
            start_new_session=True,
        )
        child.proc = proc
        child.started_at = time.monotonic()
        child.pump = threading.Thread(target=self._pump, args=(child.service, proc), daemon=True)
        child.pump.start()

    def _pump(self, service: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self._say(service, raw.decode(errors="replace"))

    def run(self, poll_s: float = 0.5) -> int:
        for child in self.children:
            self._start(child)
        while not self._stopping.wait(poll_s):
            now = time.monotonic()
            for child in self.children:
                if child.proc is None:
                    if now >= child.next_start:
                        self._start(child)
                    continue
                code = child.proc.poll()
                if code is None:
                    continue
                child.restarts += 1
                child.proc = None
                if now - child.started_at >= _HEALTHY_RUN_S:
                    child.backoff = 1.0
                child.next_start = now + child.backoff
                meaning = _EXIT_MEANINGS.get(code, "")
                self._say(
                    child.service,
                    f"exited with {code}{f' ({meaning})' if meaning else ''}; "
                    f"restart #{child.restarts} in {child.backoff:.0f}s",
                )
                child.backoff = min(child.backoff * 2, _MAX_BACKOFF_S)
        return self._shutdown()

    def _shutdown(self, timeout_s: float = 60.0) -> int:
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for c in running:
            assert c.proc is not None
            c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        worst = 0
        for c in running:
            assert c.proc is not None
            try:
                code = c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
                code = c.proc.wait()
            if c.pump is not None:
                c.pump.join(5)
            self._say(c.service, f"stopped ({code})")
            worst = worst or code
        return 0 if worst == 0 else 1
