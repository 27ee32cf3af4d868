"""Every saga ends: deadlines on the real stack, with a participant stopped (SIGSTOP) or killed.

These run with the shipped settings (no quicker session or transaction timeouts): how soon a
saga ends at its deadline is what a user gets. ADR 0007 says what each step does.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from choreo.stack.ports import free_port
from choreo.timers import TimerFired
from consumers.orders.events import PlaceOrder
from harness.env import child_env
from harness.processes import CHOREO, ChildProcess, wait_until
from harness.stack import StackEndpoints
from harness.watch import EndWatcher
from producers import commands, seed
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.e2e

ORDERS = 100
DEADLINE_S = 20
# From the deadline to the saga's end: the timer check (CHOREO_TIMER_CHECK_MS, 0.2 s), a commit,
# and three hops (orders -> delivery -> packaging -> orders), each a poll and a commit. Measured
# at 0.2 to 0.4 s here; the figures are printed.
END_SLACK_S = 10


class ShippedSagaRun(SagaRun):
    quick_timeouts: dict[str, int] = {}  # what users run


@pytest.fixture()
def shipped_saga(stack: StackEndpoints, topic_prefix: str, tmp_path: Path) -> Iterator[SagaRun]:
    run = ShippedSagaRun(stack.bootstrap_servers, stack.schema_registry_url, topic_prefix, tmp_path)
    yield run
    for w in run.workers:  # a stopped worker never finishes a SIGTERM
        if w.alive():
            os.kill(w.pid, signal.SIGCONT)
    run.close()


def _orders(n: int, deadline: datetime) -> list[PlaceOrder]:
    """`n` orders that would complete, spread over the hubs' stocked SKUs and addresses."""
    hubs = ["hub-north", "hub-south"]
    out = []
    for i in range(n):
        hub = hubs[i % len(hubs)]
        skus, addresses = seed.stocked_skus(hub), seed.deliverable_addresses(hub)
        out.append(commands.place_order(
            hub, skus[i % len(skus)], 1, addresses[i % len(addresses)], datetime.now(UTC),
            deadline=deadline,
        ))
    return out


def _audit_clean(saga: SagaRun) -> bool:
    """Is the audit clean? Restarts any worker that exited first, as `choreo run` would: one
    stopped past its session timeout can find itself fenced when it resumes, and exits."""
    for w in list(saga.workers):
        service = w.name.rsplit("-", 1)[0]
        if not w.alive() and not any(o.alive() and o.name == w.name for o in saga.workers):
            saga.start(service)
    result = saga.choreo("audit")
    return result.returncode == 0 and "VIOLATED" not in result.stdout


def test_drones_stopped_every_saga_ends_at_its_deadline_compensated(shipped_saga: SagaRun) -> None:
    saga = shipped_saga
    saga.seed(datetime.now(UTC))
    saga.start_all()
    drones = next(w for w in saga.workers if w.name.startswith("drones"))
    watcher = EndWatcher(saga.settings)
    os.kill(drones.pid, signal.SIGSTOP)
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=DEADLINE_S)
        orders = _orders(ORDERS, deadline)
        saga.send(orders)
        ends = watcher.wait_for([o.order_id for o in orders], DEADLINE_S + END_SLACK_S + 30)
    finally:
        watcher.close()
        os.kill(drones.pid, signal.SIGCONT)

    # Every saga failed at its deadline and was compensated, on time, while drones was stopped.
    assert Counter(name for name, _ in ends.values()) == {"OrderCompensated": ORDERS}
    late = [ms / 1000 - deadline.timestamp() for _, ms in ends.values()]
    print(f"\nend - deadline over {ORDERS} sagas: min {min(late):.2f} s, median "
          f"{statistics.median(late):.2f} s, max {max(late):.2f} s (bound {END_SLACK_S} s)")
    assert min(late) >= 0, "a saga ended before its deadline"
    assert max(late) <= END_SLACK_S
    failed = [r.event for r in saga.events("orders") if type(r.event).__name__ == "OrderFailed"]
    assert Counter(e.reason for e in failed) == {"DEADLINE": ORDERS}

    # drones comes back: what it assigns now is refused by delivery and released at once; the
    # log ends with every saga ended once, stock and drones all back (the audit), and every
    # service's state rebuilt from its own topic equal to the live one.
    wait_until(lambda: _audit_clean(saga), 120, "the audit clean after drones resumed")
    fired = [r.event for r in saga.events("orders") if isinstance(r.event, TimerFired)]
    assert len(fired) == len({f.timer for f in fired}) == ORDERS
    saga.stop_workers()
    for name in ("orders", "packaging", "drones", "delivery"):
        verified = saga.rebuild_verify(name)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    # The firings are in the log with what decide was given: a dry run replays them, in place,
    # and this code decides every one of them (and every other input) exactly as it did.
    replay = saga.choreo("replay", "orders", "--dry-run", "--json")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    doc = json.loads(replay.stdout)
    answers = [r for r in saga.events("orders") if not isinstance(r.event, TimerFired)]
    assert doc["differs"] is False and doc["state"] == []
    assert doc["events"] == {"identical": len(answers), "changed": 0, "removed": 0, "added": 0}


def test_orders_killed_as_its_timers_fire_fires_each_once(shipped_saga: SagaRun, tmp_path: Path) -> None:
    """SIGKILL right after a batch of firings is written and before it commits (the
    `timers_fired` kill point): the restarted worker fires them again, and only that once counts."""
    saga = shipped_saga
    saga.seed(datetime.now(UTC))
    for name in ("packaging", "drones", "delivery"):
        saga.start(name)
    once = tmp_path / "killed-once"
    orders_worker = saga.start("orders", CHOREO_FAULT_POINT="timers_fired",
                               CHOREO_FAULT_ONCE_FILE=str(once))
    saga.wait_seeded()
    drones = next(w for w in saga.workers if w.name.startswith("drones"))
    os.kill(drones.pid, signal.SIGSTOP)  # the sagas wait at drones until their deadline
    n = 30
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        orders = _orders(n, deadline)
        saga.send(orders)
        wait_until(lambda: not orders_worker.alive(), 60, "orders killed at its first firing")
        assert once.exists()
        assert orders_worker.wait(10) == -signal.SIGKILL
        saga.start("orders")  # as a supervisor would; the fault fired once and is spent
        ends = saga.wait_for_ends([o.order_id for o in orders], 90)
    finally:
        os.kill(drones.pid, signal.SIGCONT)
    assert set(ends.values()) == {"compensated"}
    records = saga.events("orders")
    fired = Counter(r.event.timer for r in records if isinstance(r.event, TimerFired))
    assert len(fired) == n and set(fired.values()) == {1}, "a timer fired twice or not at all"
    passed = Counter(r.event.order_id for r in records
                     if type(r.event).__name__ == "OrderDeadlinePassed")
    assert len(passed) == n and set(passed.values()) == {1}
    wait_until(lambda: _audit_clean(saga), 120, "the audit clean after drones resumed")
    saga.stop_workers()
    verified = saga.rebuild_verify("orders")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_delivery_stopped_sagas_wait_listed_as_owed_by_delivery_then_end_once(
    shipped_saga: SagaRun,
) -> None:
    """Past the point of no return only delivery may decide: the sagas wait, `choreo sagas
    --stuck` names delivery (not running), and once it is back each saga ends once."""
    saga = shipped_saga
    saga.seed(datetime.now(UTC))
    ports = {"orders": free_port(), "packaging": free_port()}  # their saga gauges are read below
    for name in ("orders", "packaging", "drones", "delivery"):
        saga.start(name, **({"CHOREO_METRICS_PORT": str(ports[name])} if name in ports else {}))
    saga.wait_seeded()
    delivery = next(w for w in saga.workers if w.name.startswith("delivery"))
    os.kill(delivery.pid, signal.SIGSTOP)
    n = 20
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=8)
        orders = _orders(n, deadline)
        ids = {o.order_id for o in orders}
        saga.send(orders)

        def listed() -> dict[str, dict[str, Any]]:
            out = saga.choreo("sagas", "--stuck", "--older-than", "1", "--json")
            assert out.returncode == 0, out.stdout + out.stderr
            docs = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            return {d["saga_id"]: d for d in docs if d["saga_id"] in ids}

        def delivery_named_not_running() -> bool:
            found = listed()
            return len(found) == n and all(
                [o["service"] for o in d["owed_by"]] == ["delivery"] and not d["owed_by"][0]["running"]
                for d in found.values())

        # Past the deadline and the session timeout (10 s): every saga is listed, delivery owes
        # each one its next step, and no instance of delivery is in its group.
        wait_until(delivery_named_not_running, 60, "every saga listed as waiting for delivery")
        # The alert's source: orders and packaging hold every saga open, older than its deadline.
        for name, port in ports.items():
            wait_until(functools.partial(holds, port, n), 30, f"{name} counting {n} sagas in flight")
            assert gauge(port, "choreo_oldest_saga_age_seconds") > 8, name
        _the_ui_shows_them_waiting_for_delivery(saga, sorted(ids))
        passed = [r.event.order_id for r in saga.events("orders")
                  if type(r.event).__name__ == "OrderDeadlinePassed" and r.event.order_id in ids]
        assert sorted(passed) == sorted(ids), "orders' timer fired for every saga, once"
        # Nobody but delivery may end them: they are all still in flight.
        ended = {r.event.order_id for r in saga.events("orders")
                 if type(r.event).__name__ in ("OrderFailed", "OrderCompleted")}
        assert not ended & ids
    finally:
        os.kill(delivery.pid, signal.SIGCONT)
    wait_until(lambda: _audit_clean(saga), 120, "the audit clean after delivery resumed")
    ends = saga.wait_for_ends(ids, 30)
    failed = {r.event.order_id: r.event.reason for r in saga.events("orders")
              if type(r.event).__name__ == "OrderFailed" and r.event.order_id in ids}
    # Delivery read the deadline or the drone first: expired (DEADLINE, compensated) or flown.
    for order_id, end in ends.items():
        assert (end, failed.get(order_id)) in {("compensated", "DEADLINE"), ("completed", None)}
    print(f"\nafter delivery resumed: {Counter(ends.values())}")
    for name, port in ports.items():  # every saga ended: nothing held, the alert clears
        wait_until(functools.partial(holds, port, 0), 30, f"{name} holding no saga")
        assert gauge(port, "choreo_oldest_saga_age_seconds") == 0, name
    saga.stop_workers()
    for name in ("orders", "packaging", "drones", "delivery"):
        verified = saga.rebuild_verify(name)
        assert verified.returncode == 0, verified.stdout + verified.stderr


def gauge(port: int, name: str) -> float:
    """A worker's gauge, as Prometheus scrapes it."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def holds(port: int, sagas: int) -> bool:
    return gauge(port, "choreo_sagas_in_flight") == sagas


def _the_ui_shows_them_waiting_for_delivery(saga: SagaRun, ids: list[str]) -> None:
    """`choreo ui`: the list filters the sagas in flight for over a second and counts those over
    a minute; a saga's page says it waits for delivery, which is not running."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = ChildProcess("ui", [*CHOREO, "ui", "--port", str(port)], child_env(saga.settings),
                          saga.log_dir / "ui.log")
    try:
        def listed() -> bool:
            assert server.alive(), server.log()
            try:
                page = httpx.get(url + "/", params={"stuck": "1"}, timeout=5).text
            except httpx.TransportError:
                return False
            return all(i in page for i in ids)

        wait_until(listed, 60, "the UI to list every waiting saga")
        page = httpx.get(url + "/sagas/" + ids[0], timeout=30).text
        assert 'id="saga-waiting"' in page and "delivery has not read" in page, page[-3000:]
        assert 'class="event waiting down" data-lane="delivery"' in page  # marked on the timeline
        assert "NOT RUNNING" in page
        assert 'id="stuck-count"' in httpx.get(url + "/", timeout=5).text
    finally:
        server.stop(10)


def test_with_few_drones_orders_wait_in_turn_and_only_those_whose_wait_ends_fail(
    shipped_saga: SagaRun,
) -> None:
    """hub-east has 2 drones. With delivery paused, the drones stay out: the next orders wait.
    Resumed, each drone that comes back serves the first waiting package (the shipped 60 s
    wait); paused again past a wait of 5 s (CHOREO_DRONE_WAIT_S, a business setting, given to
    a new drones worker), the waiting ones fail NO_DRONE."""
    saga = shipped_saga
    saga.seed(datetime.now(UTC))
    saga.start_all()
    delivery = next(w for w in saga.workers if w.name.startswith("delivery"))
    hub = "hub-east"
    sku, address = seed.stocked_skus(hub)[0], seed.deliverable_addresses(hub)[0]

    def wave(n: int) -> list[str]:
        orders = [commands.place_order(hub, sku, 1, address, datetime.now(UTC)) for _ in range(n)]
        saga.send(orders)
        return [o.order_id for o in orders]

    def drone_events() -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for r in saga.events("drones"):
            if getattr(r.event, "order_id", None):
                out.setdefault(r.event.order_id, []).append(r.event)
        return out

    # 1. Served in turn as drones come back.
    os.kill(delivery.pid, signal.SIGSTOP)
    try:
        first = wave(4)
        wait_until(lambda: all(o in drone_events() for o in first), 30, "drones to answer all four")
    finally:
        os.kill(delivery.pid, signal.SIGCONT)
    assert set(saga.wait_for_ends(first, 60).values()) == {"completed"}
    events = drone_events()
    assert [type(events[o][0]).__name__ for o in first] == [
        "DroneAssigned", "DroneAssigned", "PackageQueued", "PackageQueued"]
    delivered = {r.event.event_id: r.event.order_id for r in saga.events("delivery")}
    served = [next(e for e in events[o] if type(e).__name__ == "DroneAssigned") for o in first[2:]]
    # Each waiting package got the drone of an order that ended before it, in arrival order.
    assert [delivered.get(s.causation_id) for s in served] == first[:2]
    drones = next(w for w in saga.workers if w.name.startswith("drones"))
    assert drones.stop() == 0, drones.tail()
    saga.start("drones", CHOREO_DRONE_WAIT_S="5")

    # 2. Only the packages still waiting when their wait ends fail with NO_DRONE.
    os.kill(delivery.pid, signal.SIGSTOP)
    try:
        second = wave(4)
        ends = saga.wait_for_ends(second[2:], 30)
    finally:
        os.kill(delivery.pid, signal.SIGCONT)
    assert set(ends.values()) == {"compensated"}
    ends |= saga.wait_for_ends(second[:2], 60)
    assert [ends[o] for o in second] == ["completed", "completed", "compensated", "compensated"]
    failed = {r.event.order_id: r.event.reason for r in saga.events("orders")
              if type(r.event).__name__ == "OrderFailed"}
    assert [failed.get(o) for o in second] == [None, None, "NO_DRONE", "NO_DRONE"]
    wait_until(lambda: _audit_clean(saga), 60, "the audit clean")
    saga.stop_workers()
    verified = saga.rebuild_verify("drones")
    assert verified.returncode == 0, verified.stdout + verified.stderr
