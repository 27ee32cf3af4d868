"""Contenders as child processes: a `choreo worker`, the ceiling loop, the Quix app."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.config import REPO
from choreo.settings import Settings


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points a `choreo worker` at one slice of the stack."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "CHOREO_TOPIC_PREFIX": settings.topic_prefix,
        "CHOREO_STATE_DIR": str(settings.state_dir),
        "CHOREO_DOMAINS": "consumers.domain:DOMAIN",
        "CHOREO_PARTITIONS": str(settings.partitions),
        "CHOREO_BATCH_SIZE": str(settings.batch_size),
        "CHOREO_COMMIT_INTERVAL_MS": str(settings.commit_interval_ms),
        "CHOREO_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        "CHOREO_TRANSACTION_TIMEOUT_MS": str(settings.transaction_timeout_ms),
    }
    env.update(extra)
    return env


class Child:
    """One child process with its output in a log file; stopped by pid, never by name."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def peak_rss_mib(self) -> float:
        """The process's peak resident set (VmHWM) so far, in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmHWM for pid {self.pid}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (each contender finishes its batch and commits), SIGKILL if it hangs."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return -9

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_worker(settings: Settings, service: str, log_dir: Path, instance: str = "0") -> Child:
    argv = [sys.executable, "-m", "choreo.cli.main", "worker", service, "--instance", instance,
            "--log-level", "WARNING"]
    return Child(f"{service}-{instance}", argv, worker_env(settings), log_dir)


def start_module(name: str, python: Path | str, module: str, args: list[str], log_dir: Path,
                 env: dict[str, str] | None = None) -> Child:
    """`python -m module args...` from the repository root (the bench's own scripts)."""
    return Child(name, [str(python), "-m", module, *args],
                 {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, log_dir)
