"""Run `choreo worker` as a real child process, so tests can SIGTERM or kill -9 it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from choreo.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def child_env(settings: Settings, domains: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "CHOREO_TOPIC_PREFIX": settings.topic_prefix,
        "CHOREO_STATE_DIR": str(settings.state_dir),
        "CHOREO_DOMAINS": domains,
        "CHOREO_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        "CHOREO_TRANSACTION_TIMEOUT_MS": str(settings.transaction_timeout_ms),
        "CHOREO_BATCH_SIZE": str(settings.batch_size),
        "CHOREO_COMMIT_INTERVAL_MS": str(settings.commit_interval_ms),
    }
    env.update(extra)
    return env


class WorkerProcess:
    """One `choreo worker <service>` child with its log captured to a file."""

    def __init__(
        self,
        settings: Settings,
        service: str,
        instance: str,
        log_dir: Path,
        domains: str = "tests.support.toy:DOMAIN",
        **env: str,
    ) -> None:
        self.service, self.instance = service, instance
        self.log_path = log_dir / f"{service}-{instance}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "choreo.cli.main", "worker", service, "--instance", instance],
            env=child_env(settings, domains, **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text()

    def kill9(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        return self.wait()

    def terminate(self, timeout: float = 60) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 120) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            self._log.close()
        return code


def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `predicate()` until it is true; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)  # polling interval, not synchronisation: the deadline decides
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def worker_children(supervisor_pid: int) -> dict[str, int]:
    """service -> pid of the `choreo worker` children of a `choreo run` process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == supervisor_pid and b"worker" in cmd:
            out[cmd[cmd.index(b"worker") + 1].decode()] = int(entry.name)
    return out
