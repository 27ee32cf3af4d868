"""The saga under a fault: supervised workers, orders before and after the fault, and the verdict.

Every scenario of the fault suite runs the same way: the four services run under `choreo run`
(restarted when they die, as in production), a first wave of orders ends, the fault is injected,
a second wave is placed at once, and the scenario waits until every order has ended. Then it
counts, from the log alone: orders that ended more than once or never, events written twice,
audit violations, and `rebuild --verify` of every service. The seconds from the fault to the
first end of a second-wave order are how long progress stopped.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from choreo.bootstrap import service_names
from consumers.audit import audit
from consumers.domain import SAGA_ENDS
from producers.cli import saga_events
from producers.load_plan import plan_orders
from producers.saga_watch import SagaWatcher
from tests.support.saga_run import SagaRun
from tests.support.workers import REPO, child_env

# Settings that make faults show quickly; the watchdog's grace is short so a wedge ends in seconds.
FAULT_ENV = {"CHOREO_WATCHDOG_GRACE_S": "5", "CHOREO_STALL_S": "30"}


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    orders: int
    duplicates: int
    lost: int
    violations: int
    recovery_s: float


RESULTS: list[ScenarioResult] = []  # printed as a table at the end of the run (conftest)


class FaultySaga(SagaRun):
    """A test's own saga (topics, schemas, seed) run by a supervisor, ready for a fault."""

    def __init__(
        self, bootstrap: str, registry_url: str, prefix: str, tmp: Path, replication_factor: int = 1
    ) -> None:
        super().__init__(bootstrap, registry_url, prefix, tmp, replication_factor=replication_factor)
        self.run_log = tmp / "run.log"
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.watcher: SagaWatcher | None = None
        self._waves = 0

    def start_supervised(self, **env: str) -> None:
        self.seed(datetime.now(UTC))
        with open(self.run_log, "ab") as log:
            self.supervisor = subprocess.Popen(
                [sys.executable, "-m", "choreo.cli.main", "run"],
                env=child_env(self.settings, self.domains, **FAULT_ENV, **env),
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            )
        self.wait_seeded(180)
        self.watcher = SagaWatcher(self.settings, self.codec)

    def wave(self, n: int) -> list[str]:
        """Place `n` orders, most of which complete (stock and drones are plentiful)."""
        self._waves += 1
        plan = plan_orders(n, 0.05, 0.05, seed=self._waves, at=datetime.now(UTC))
        commands = [p.command for p in plan]
        self.send(commands)
        return [c.order_id for c in commands]

    def wait_ended(self, order_ids: list[str], timeout_s: float) -> None:
        assert self.watcher is not None
        self.watcher.wait_ended(set(order_ids), timeout_s)

    def first_end_after(self, order_ids: list[str], since: float, timeout_s: float) -> float:
        """Seconds from `since` until the first of `order_ids` ends."""
        assert self.watcher is not None
        ids, deadline = set(order_ids), time.monotonic() + timeout_s
        while not ids & self.watcher.ended.keys():
            if time.monotonic() > deadline:
                raise AssertionError(f"no order ended within {timeout_s:.0f} s of the fault:\n{self.tail()}")
            self.watcher.poll(0.2)
        return time.monotonic() - since

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.run_log.read_text(errors="replace").splitlines()[-lines:])

    def stop_supervised(self) -> None:
        if self.supervisor is None:
            return
        self.supervisor.send_signal(signal.SIGTERM)
        code = self.supervisor.wait(120)
        self.supervisor = None
        assert code == 0, f"the supervisor stopped with {code}:\n{self.tail()}"

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.kill()
        super().close()

    def run_scenario(
        self, name: str, inject: Callable[[], None], before: int = 100, after: int = 200,
        bound_s: float = 120.0, after_fault: Callable[[], None] | None = None,
    ) -> ScenarioResult:
        """Orders, the fault, more orders, every end, then the verdict (recorded in RESULTS)."""
        first = self.wave(before)
        self.wait_ended(first, 240)
        started = time.monotonic()
        inject()
        second = self.wave(after)
        recovery = self.first_end_after(second, started, bound_s)
        if after_fault is not None:
            after_fault()
        self.wait_ended(second, 300)
        self.stop_supervised()
        result = self.verdict(name, first + second, recovery)
        RESULTS.append(result)
        return result

    def verdict(self, name: str, order_ids: list[str], recovery_s: float) -> ScenarioResult:
        events = saga_events(self.settings)
        ends = Counter(e.order_id for e in events if type(e) in SAGA_ENDS)  # type: ignore[attr-defined]
        ids = Counter(e.event_id for e in events)  # type: ignore[attr-defined]
        report = audit(events)
        violations = sum(len(i.violations) for i in report.invariants)
        for service in service_names():
            verify = self.rebuild_verify(service)
            assert verify.returncode == 0, verify.stdout + verify.stderr
            violations += verify.stdout.count("MISMATCH")
        return ScenarioResult(
            name=name,
            orders=len(order_ids),
            duplicates=sum(n - 1 for n in ends.values() if n > 1)
            + sum(n - 1 for n in ids.values() if n > 1),
            lost=sum(1 for o in order_ids if ends[o] == 0),
            violations=violations,
            recovery_s=round(recovery_s, 1),
        )


def assert_clean(result: ScenarioResult) -> None:
    assert (result.duplicates, result.lost, result.violations) == (0, 0, 0), result


def format_table(results: list[ScenarioResult]) -> str:
    head = f"{'scenario':<44} {'orders':>6} {'dupl.':>5} {'lost':>5} {'viol.':>5} {'resumed (s)':>11}"
    rows = [
        f"{r.name:<44} {r.orders:>6} {r.duplicates:>5} {r.lost:>5} {r.violations:>5} {r.recovery_s:>11.1f}"
        for r in results
    ]
    return "\n".join([head, "-" * len(head), *rows])
