"""Proof from outside: a fifth service in a package of its own joins the saga by being installed.

The choreo wheel and examples/notifications are installed in a fresh venv (no line of the
reference services changes); everything below is that venv's `choreo`, run from a temp folder
against the session's stack under a topic prefix of this test's own: topics, schemas, `choreo
run` with all five services, seed and load, then one CustomerNotified per ended order, a clean
audit, a state that a rebuild of the log reproduces, and a replay of every end that notifies
nobody twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from choreo.stack.ports import free_ports
from harness.stack import StackEndpoints
from harness.topics import unique_prefix
from tests.support.wheel_venv import REPO_ROOT, WheelVenv, said, shipped_copy

pytestmark = pytest.mark.e2e

ORDERS = 40
NOTIFIED_BY = {"OrderCompleted": "completed", "OrderCompensated": "compensated"}
ENDS = {*NOTIFIED_BY, "OrderRejected"}

T = TypeVar("T")


@pytest.fixture(scope="module")
def plugin_venv(wheel_venv: WheelVenv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WheelVenv]:
    """The session's wheel venv with examples/notifications installed for this module only."""
    source = shipped_copy(REPO_ROOT / "examples" / "notifications", tmp_path_factory.mktemp("notifications"))
    wheel_venv.pip("install", "-q", str(source))
    try:
        yield wheel_venv
    finally:
        wheel_venv.pip("uninstall", "-q", "-y", "choreo-notifications")


class Outside:
    """The plug-in venv's `choreo` in a temp folder, on this test's slice of the session stack."""

    def __init__(self, venv: WheelVenv, stack: StackEndpoints, prefix: str, cwd: Path) -> None:
        self.venv, self.cwd = venv, cwd
        self.env = venv.env(
            KAFKA_BOOTSTRAP_SERVERS=stack.bootstrap_servers,
            SCHEMA_REGISTRY_URL=stack.schema_registry_url,
            CHOREO_TOPIC_PREFIX=prefix,
            CHOREO_STATE_DIR=str(cwd / "state"),
            CHOREO_PARTITIONS="4",
            CHOREO_COMMIT_INTERVAL_MS="100",
            CHOREO_SESSION_TIMEOUT_MS="6000",
            CHOREO_TRANSACTION_TIMEOUT_MS="10000",
        )

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.venv.choreo(*args, cwd=self.cwd, env=self.env, timeout=timeout)

    def ok(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"choreo {' '.join(args)}: {said(result)}"
        return result

    def records(self, topic: str) -> list[dict[str, Any]]:
        """Every committed record of a logical topic, decoded (`choreo replay TOPIC --json`).

        `type` is the record's short name (OrderCompleted), the JSON's full Avro name shortened.
        """
        out = self.ok("replay", topic, "--json").stdout
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return [{**r, "type": r["type"].rsplit(".", 1)[-1]} for r in lines]

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen([str(self.venv.bin / "choreo"), *args], cwd=self.cwd, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM and a clean exit, else the whole process group is killed and the test fails."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the run's session; its workers stop once it is gone
        proc.wait(timeout=30)
        raise AssertionError(f"did not stop within 90 s:\n{log.read_text()[-4000:]}") from None
    assert code == 0, f"exit {code}:\n{log.read_text()[-4000:]}"


def until(check: Callable[[], T | None], timeout: float, what: str, log: Path) -> T:
    """Poll `check` until it returns a value, or fail at the deadline (the state is asked, not waited for)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n{log.read_text()[-4000:]}")
        time.sleep(0.25)  # the polling cadence, so a refused connection is not asked again at once


def metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def test_a_service_in_its_own_package_notifies_every_ended_order_once(
    plugin_venv: WheelVenv, stack: StackEndpoints, tmp_path: Path
) -> None:
    prefix = unique_prefix()
    c = Outside(plugin_venv, stack, prefix, tmp_path)
    run_log = tmp_path / "run.log"

    created = c.ok("topics", "create").stdout
    for topic in ("notifications", "notifications.dlq", "orders", "packaging", "drones", "delivery"):
        assert f"{prefix}{topic}: created" in created, created
    registered = c.ok("schemas", "register").stdout
    assert f"{prefix}notifications-delivery.notifications.CustomerNotified" in registered, registered

    run = c.start("run", log=run_log)
    try:
        # Stock and drones travel on other topics than orders: place orders once the seed is applied.
        seeded = re.search(r"sent (\d+) seed commands", c.ok("seed").stdout)
        assert seeded, "choreo seed says how many commands it sent"
        sent = int(seeded.group(1))
        answers = ("StockAdded", "StockAddRejected", "DroneRegistered", "DroneRegistrationRejected")

        def seed_applied() -> bool | None:
            done = sum(r["type"] in answers for t in ("packaging", "drones") for r in c.records(t))
            return True if done >= sent else None

        until(seed_applied, 120, "the services applying the seed", run_log)
        c.ok("load", "--orders", str(ORDERS), "--rate", "40", "--seed", "11")
        placed = {r["event"]["order_id"] for r in c.records("orders.commands") if r["type"] == "PlaceOrder"}
        assert len(placed) == ORDERS

        def settled() -> tuple[dict[str, str], list[dict[str, Any]]] | None:
            ends = {r["event"]["order_id"]: r["type"] for r in c.records("orders") if r["type"] in ENDS}
            notified = [r["event"] for r in c.records("notifications")]
            owed = {o for o, t in ends.items() if t in NOTIFIED_BY}
            if placed <= ends.keys() and owed <= {n["order_id"] for n in notified}:
                return ends, notified
            return None

        ends, _ = until(settled, 300, "every order ended and notified", run_log)
        c.ok("audit")
    finally:
        stop(run, run_log)

    # Read again with every worker stopped: nothing more came, nothing came twice.
    notified = [r["event"] for r in c.records("notifications")]
    per_order = Counter(n["order_id"] for n in notified)
    assert [o for o, k in per_order.items() if k > 1] == []
    owed = {o: NOTIFIED_BY[t] for o, t in ends.items() if t in NOTIFIED_BY}
    assert {n["order_id"]: n["outcome"] for n in notified} == owed
    assert {"completed", "compensated"} <= set(owed.values()), "the load plan ends orders both ways"

    verified = c.ok("rebuild", "notifications", "--verify").stdout
    assert verified.count(" ok ") == 4 and "MISMATCH" not in verified, verified

    # Every end again, from the start of `orders`: the state remembers, so nobody hears twice.
    until(lambda: c.run("reset", "notifications", "--to-earliest", "--execute").returncode == 0 or None,
          60, "the notifications group empty for a reset", run_log)
    (port,) = free_ports(1)
    worker_log = tmp_path / "worker.log"
    worker = c.start("worker", "notifications", "--metrics-port", str(port), log=worker_log)
    inputs = len(c.records("orders"))

    def replayed() -> bool | None:
        try:
            done = metric(port, "choreo_records_processed_total") >= inputs
        except httpx.HTTPError:
            return None  # not serving yet
        return True if done else None

    try:
        until(replayed, 120, f"the worker re-reading all {inputs} orders records", worker_log)
        assert metric(port, "choreo_events_emitted_total") == 0
    finally:
        stop(worker, worker_log)
    assert [r["event"] for r in c.records("notifications")] == notified
    c.ok("audit")
