"""What every test on the real stack needs: isolated settings, worker processes, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from choreo.settings import Settings
from tests.support.workers import REPO, WorkerProcess, child_env


class StackSlice:
    """One test's slice of the stack: its own topic prefix, state folder and worker processes."""

    domains = "consumers.domain:DOMAIN"

    def __init__(
        self, bootstrap: str, registry_url: str, prefix: str, tmp: Path, partitions: int = 4,
        replication_factor: int = 1,
    ) -> None:
        self.state_dir = tmp / "state"
        self.log_dir = tmp / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.settings = Settings(
            bootstrap_servers=bootstrap,
            schema_registry_url=registry_url,
            topic_prefix=prefix,
            state_dir=self.state_dir,
            partitions=partitions,
            replication_factor=replication_factor,
            session_timeout_ms=6000,
            transaction_timeout_ms=10000,
            batch_size=100,
            commit_interval_ms=100,
        )
        self.workers: list[WorkerProcess] = []

    def topic(self, logical: str) -> str:
        return self.settings.topic(logical)

    def start(self, service: str, instance: str = "0", **env: str) -> WorkerProcess:
        w = WorkerProcess(
            self.settings, service, instance, self.log_dir, domains=self.domains, **env
        )
        self.workers.append(w)
        return w

    def choreo(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run the `choreo` CLI against this test's slice of the stack."""
        return subprocess.run(
            [sys.executable, "-m", "choreo.cli.main", *args],
            env=child_env(self.settings, self.domains),
            capture_output=True, text=True, cwd=REPO, timeout=timeout,
        )

    def rebuild_verify(self, service: str) -> subprocess.CompletedProcess[str]:
        return self.choreo("rebuild", service, "--verify")

    def stop_workers(self) -> None:
        for w in self.workers:
            if w.alive():
                assert w.terminate() == 0, f"{w.service} did not stop cleanly:\n{w.log()[-3000:]}"

    def close(self) -> None:
        for w in self.workers:
            if w.alive():
                w.kill9()
