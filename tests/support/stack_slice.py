"""What every test on the real stack needs: isolated settings, worker processes, the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

from choreo.settings import Settings
from harness.env import SAGA_DOMAINS
from harness.processes import ChildProcess, run_cli, start_worker


class StackSlice:
    """One test's slice of the stack: its own topic prefix, state folder and worker processes."""

    domains = SAGA_DOMAINS
    # Quicker than the shipped defaults, for tests that start and stop many workers but inject
    # no fault. The fault suite clears it: what it measures is what a user gets.
    quick_timeouts: dict[str, int] = {
        "session_timeout_ms": 6000, "transaction_timeout_ms": 10000, "batch_size": 100,
    }

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
            **self.quick_timeouts,  # type: ignore[arg-type]
        )
        self.workers: list[ChildProcess] = []

    def topic(self, logical: str) -> str:
        return self.settings.topic(logical)

    def start(self, service: str, instance: str = "0", **env: str) -> ChildProcess:
        w = start_worker(self.settings, service, self.log_dir, instance, self.domains, **env)
        self.workers.append(w)
        return w

    def choreo(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run the `choreo` CLI against this test's slice of the stack."""
        return run_cli(self.settings, *args, domains=self.domains, timeout=timeout)

    def rebuild_verify(self, service: str) -> subprocess.CompletedProcess[str]:
        return self.choreo("rebuild", service, "--verify")

    def stop_workers(self) -> None:
        for w in self.workers:
            if w.alive():
                assert w.stop() == 0, f"{w.name} did not stop cleanly:\n{w.log()[-3000:]}"

    def close(self) -> None:
        for w in self.workers:
            w.close()
