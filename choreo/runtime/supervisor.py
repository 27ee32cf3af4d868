"""`choreo run`: every service as supervised `choreo worker` child processes.

A child that dies is restarted (with a growing pause, so a crash loop does not spin the CPU);
SIGTERM or Ctrl-C stops all children with SIGTERM, which makes each finish and commit its batch.
With `--instances N` each service runs N children with the instance ids 0..N-1: an id names the
child's `transactional.id` and `group.instance.id`, so a restarted child keeps its own and fences
its predecessor. Each child's log lines are prefixed with `service/instance`; with
CHOREO_LOG_FORMAT=json every line is one JSON object instead (a child's own passed through as it
is, the rest wrapped in one naming the child).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

from choreo.exceptions import ConfigurationError
from choreo.logs import json_line, utc_time
from choreo.runtime.watchdog import EXIT_NO_PROGRESS, EXIT_WEDGED

# Set in each worker's environment: the worker stops once its parent is no longer this pid.
SUPERVISOR_PID_ENV = "CHOREO_SUPERVISOR_PID"
_MAX_BACKOFF_S = 30.0
# The first restart is almost at once: every second between a worker's exit and its successor
# is a second its sagas wait. The pause doubles while it keeps dying.
_FIRST_PAUSE_S = 0.25
# A child that ran this long was healthy: its next crash restarts it after the shortest pause.
_HEALTHY_RUN_S = 60.0
_MAX_PORT = 65_535
# What a worker's exit code means, for the supervisor's log line.
_EXIT_MEANINGS = {
    1: "stopped on an error",
    EXIT_WEDGED: "ended by its watchdog: a call or a stop request overran its deadline",
    EXIT_NO_PROGRESS: "no batch could commit for too long",
    -9: "killed",
}
# The level of a line a worker printed outside logging (its log lines are JSON already). Such a
# line is rare and usually trouble: a traceback or an `error:` sentence from before logging was
# set up, or a library writing to stderr itself. Yet it may be a harmless print, and its level is
# unknown: WARNING gets it seen by a WARNING-and-up filter without raising it to an error.
_PRINTED_LEVEL = "WARNING"
_LOGGER = "choreo.supervisor"  # the `logger` of the supervisor's own lines and of wrapped ones


@dataclass(frozen=True)
class ChildPlan:
    """One supervised worker: its service, stable instance id, metrics port (0: none)."""

    service: str
    instance: str
    metrics_port: int = 0

    @property
    def label(self) -> str:
        """How its log lines are prefixed: `packaging/1`."""
        return f"{self.service}/{self.instance}"


def check_instances(instances: int, partitions: int) -> None:
    """Refuse an instance count that is not 1..`partitions` (a worker beyond that owns nothing)."""
    if not 1 <= instances <= partitions:
        raise ConfigurationError(
            f"--instances must be an integer from 1 to {partitions} (CHOREO_PARTITIONS: an "
            f"instance beyond one per partition would own no partition), got {instances}"
        )


def plan_children(
    services: Sequence[str], instances: int = 1, metrics_port: int = 0, instance: str = "0"
) -> list[ChildPlan]:
    """The children of `choreo run`, in service order, then instance order.

    With one instance per service its id is `instance`; with N it is 0..N-1. A metrics port P
    is the first of a range: service number S (0-based) instance I serves on P + S * N + I, so no
    two children share a port (with N = 1 that is P, P+1, ... in service order). 0 means none.
    """
    if instances < 1:
        raise ConfigurationError(f"--instances must be at least 1, got {instances}")
    if len(set(services)) != len(services):
        raise ConfigurationError(f"a service is named twice in {', '.join(services)}")
    last = metrics_port + len(services) * instances - 1
    if metrics_port and last > _MAX_PORT:
        raise ConfigurationError(
            f"CHOREO_METRICS_PORT {metrics_port} leaves no room for {len(services) * instances} "
            f"workers (one port each, up to {last}; the last port is {_MAX_PORT}): choose a lower one"
        )
    ids = [instance] if instances == 1 else [str(i) for i in range(instances)]
    return [
        ChildPlan(service, ids[i], metrics_port + s * instances + i if metrics_port else 0)
        for s, service in enumerate(services)
        for i in range(instances)
    ]


@dataclass
class _Child:
    plan: ChildPlan
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    backoff: float = _FIRST_PAUSE_S
    pump: threading.Thread | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return self.plan.label


class Supervisor:
    """Runs the children of `plan` (see plan_children) until stopped.

    Each child with a metrics port in the plan gets it as CHOREO_METRICS_PORT. `log_format` is
    CHOREO_LOG_FORMAT, which the children inherit with the environment.
    """

    def __init__(
        self, plan: Sequence[ChildPlan], env: dict[str, str] | None = None, out: IO[str] | None = None,
        log_format: str = "text",
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.children = [_Child(p) for p in plan]
        self.out = out or sys.stdout
        self.json = log_format == "json"
        self._stopping = threading.Event()
        self._print_lock = threading.Lock()
        self._width = max(len(c.label) for c in self.children)

    def stop(self, *_: object) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _say(self, plan: ChildPlan, line: str, level: str = "INFO") -> None:
        """The supervisor's own line about a child, at `level` (shown in JSON only)."""
        if self.json:
            line = self._wrapped(plan, line, level, _LOGGER)
        self._write(plan, line)

    def _relay(self, plan: ChildPlan, line: str) -> None:
        """A line the child wrote: in JSON, passed through if it is a JSON object already (the
        worker's own log line: a prefix would break it), else wrapped in one."""
        if self.json and not _is_json_object(line):
            line = self._wrapped(plan, line, _PRINTED_LEVEL, f"{_LOGGER}.output")
        self._write(plan, line)

    def _wrapped(self, plan: ChildPlan, line: str, level: str, logger: str) -> str:
        return json_line({
            "time": utc_time(time.time()), "level": level, "service": plan.service,
            "instance": plan.instance, "logger": logger, "message": line.rstrip(),
        })

    def _write(self, plan: ChildPlan, line: str) -> None:
        text = line.rstrip() if self.json else f"{plan.label:<{self._width}} | {line.rstrip()}"
        with self._print_lock:
            self.out.write(f"{text}\n")
            self.out.flush()

    def _env_of(self, child: _Child) -> dict[str, str]:
        """The child's environment: this supervisor's pid (a worker stops when it is gone) and,
        when the run has a range of them, its own metrics port."""
        env = {**self.env, SUPERVISOR_PID_ENV: str(os.getpid())}
        if child.plan.metrics_port:
            env["CHOREO_METRICS_PORT"] = str(child.plan.metrics_port)
        return env

    def _start(self, child: _Child) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "choreo.cli.main", "worker", child.plan.service,
             "--instance", child.plan.instance],
            env=self._env_of(child), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C in a terminal reaches only the supervisor, which then
            # stops the children in order instead of all of them dying mid-batch at once.
            start_new_session=True,
        )
        child.proc = proc
        child.started_at = time.monotonic()
        child.pump = threading.Thread(target=self._pump, args=(child.plan, proc), daemon=True)
        child.pump.start()

    def _pump(self, plan: ChildPlan, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self._relay(plan, raw.decode(errors="replace"))

    def run(self, poll_s: float = 0.1) -> int:
        # A short poll: an exit is seen, and the restart made, within a tenth of a second.
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
                    child.backoff = _FIRST_PAUSE_S
                child.next_start = now + child.backoff
                meaning = _EXIT_MEANINGS.get(code, "")
                self._say(
                    child.plan,
                    f"exited with {code}{f' ({meaning})' if meaning else ''}; "
                    f"restart #{child.restarts} in {child.backoff:g}s",
                    "ERROR" if code else "WARNING",
                )
                child.backoff = min(child.backoff * 2, _MAX_BACKOFF_S)
        return self._shutdown()

    def _shutdown(self, timeout_s: float = 60.0) -> int:
        """Stop every worker; 1 if one had to be killed, else 0. A worker that ends with an error
        of its own while stopping (a fenced client, say, that it would have been restarted for)
        says so on its `stopped (N)` line: the stop itself went as asked."""
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for c in running:
            assert c.proc is not None
            c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        killed = False
        for c in running:
            assert c.proc is not None
            level = "INFO"
            try:
                code = c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
                code = c.proc.wait()
                killed = True
                level = "WARNING"  # its batch may be left to abort: the run exits 1
            if c.pump is not None:
                c.pump.join(5)
            self._say(c.plan, f"stopped ({code})", level)
        return 1 if killed else 0


def _is_json_object(line: str) -> bool:
    text = line.strip()
    if not text.startswith("{"):
        return False  # the common case of a printed line, without parsing it
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
