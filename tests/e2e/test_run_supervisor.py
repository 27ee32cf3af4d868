"""`choreo run`: all four services supervised, a dead one restarted, all stopped on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.processes import pid_running, start_run, wait_until, worker_children
from producers import commands, seed
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.e2e



def test_run_restarts_a_dead_worker_and_stops_all_on_sigterm(saga: SagaRun, tmp_path: Path) -> None:
    log_path = tmp_path / "run.log"
    run = start_run(saga.settings, log_path)
    try:
        wait_until(lambda: len(worker_children(run.pid)) == 4, 60, "four worker processes")
        wait_until(lambda: log_path.read_text().count(" started: inputs=") == 4, 60, "four starts")
        first = worker_children(run.pid)
        os.kill(first["packaging"], signal.SIGKILL)
        wait_until(
            lambda: worker_children(run.pid).get("packaging") not in (None, first["packaging"]), 60,
            "packaging restarted",
        )
        restarted = r"^packaging/0 +\| exited with -9 \(killed\); restart #1 in "
        assert re.search(restarted, log_path.read_text(), re.M), log_path.read_text()[-3000:]
        # The restarted service still does its job.
        now = datetime.now(UTC)
        saga.seed(now)
        saga.wait_seeded()
        order = commands.place_order(
            "hub-north", seed.stocked_skus("hub-north")[0], 1,
            seed.deliverable_addresses("hub-north")[0], now,
        )
        saga.send([order])
        assert saga.wait_for_ends([order.order_id])[order.order_id] == "completed"
        children = worker_children(run.pid)
        assert run.stop(90) == 0
        for service, pid in children.items():
            assert not pid_running(pid), f"{service} worker {pid} outlived the supervisor"
    finally:
        run.close()


def test_workers_stop_when_their_supervisor_is_killed(saga: SagaRun, tmp_path: Path) -> None:
    # SIGKILL gives `choreo run` no chance to stop its children: they must notice on their own.
    log_path = tmp_path / "run.log"
    run = start_run(saga.settings, log_path)
    children: dict[str, int] = {}
    try:
        wait_until(lambda: log_path.read_text().count(" started: inputs=") == 4, 60, "four starts")
        children = worker_children(run.pid)
        assert len(children) == 4
        os.kill(run.pid, signal.SIGKILL)
        wait_until(lambda: not any(pid_running(pid) for pid in children.values()), 60,
                   "every worker stopped after its supervisor died")
    finally:
        for pid in children.values():
            if pid_running(pid):  # only if the test failed: never leave a worker behind
                os.kill(pid, signal.SIGKILL)
        run.close()
