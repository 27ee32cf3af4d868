"""Waiting for a drone: a hub's queue, served in turn by the drones that come back, until each
package's wait ends. Broker-free; time is a value (fire_due), no test waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from choreo.keys import key_parts
from choreo.testing import MemoryState, fire_due, handle
from choreo.timers import due_timers, to_ms
from consumers.delivery.events import DeliveryCancelled, DeliveryCompleted, DeliveryExpired
from consumers.drones.events import DroneAssigned, DroneReleased, DroneUnavailable, PackageQueued
from consumers.drones.service import QUEUE, QUEUE_SEQ, SERVICE
from consumers.packaging.events import PackagePrepared
from consumers.reference import DEFAULT_DRONE_WAIT_S, DRONE_WAIT_ENV, drone_wait_s
from producers.commands import register_drone
from tests.support.records import T0, record

WAIT = timedelta(seconds=DEFAULT_DRONE_WAIT_S)


@pytest.fixture(autouse=True)
def fresh_wait() -> Iterator[None]:
    drone_wait_s.cache_clear()  # read once per process: each test reads it afresh
    yield
    drone_wait_s.cache_clear()


def fleet(*drone_ids: str, hub: str = "hub-north") -> MemoryState:
    state = MemoryState()
    for d in drone_ids:
        handle(SERVICE, state, register_drone(hub, d, T0))
    return state


def package(order_id: str, hub: str = "hub-north", at_s: int = 0) -> PackagePrepared:
    return record(PackagePrepared, order_id=order_id, hub=hub, package_id=f"pkg-{order_id}",
                  sku="SKU-0001", quantity=1, address="1 Harbour Street, Northport",
                  occurred_at=T0 + timedelta(seconds=at_s))


def delivered(assigned: DroneAssigned) -> DeliveryCompleted:
    return record(DeliveryCompleted, event_id=f"done-{assigned.order_id}", order_id=assigned.order_id,
                  hub=assigned.hub, drone_id=assigned.drone_id, package_id=assigned.package_id,
                  address=assigned.address)


def one(state: MemoryState, event: Any) -> Any:
    (out,) = handle(SERVICE, state, event)
    return out


def test_packages_wait_in_turn_and_each_drone_back_serves_the_first_waiting() -> None:
    state = fleet("drone-01")
    first = one(state, package("o1"))
    waiting = [one(state, package(o, at_s=i)) for i, o in enumerate(("o2", "o3"), 1)]
    assert isinstance(first, DroneAssigned)
    assert [type(w) for w in waiting] == [PackageQueued, PackageQueued]
    assert waiting[0].wait_until == T0 + timedelta(seconds=1) + WAIT  # the order's time + the wait
    released, served = handle(SERVICE, state, delivered(first))
    assert isinstance(released, DroneReleased) and released.order_id == "o1"
    assert isinstance(served, DroneAssigned) and (served.order_id, served.drone_id) == ("o2", "drone-01")
    assert served.causation_id == "done-o1"  # the end that freed the drone
    _, next_served = handle(SERVICE, state, delivered(served))
    assert next_served.order_id == "o3"
    assert list(state.scan(QUEUE)) == []
    assert waiting_count_matches_the_queue(state)


def test_only_the_packages_still_waiting_when_their_wait_ends_fail_with_no_drone() -> None:
    state = fleet("drone-01")
    first = one(state, package("o1"))
    one(state, package("o2"))
    one(state, package("o3", at_s=30))
    _, served = handle(SERVICE, state, delivered(first))  # o2 gets the drone, o3 still waits
    assert fire_due(SERVICE, state, T0 + WAIT) == []  # o2's wait would end now: it was served
    (failed,) = fire_due(SERVICE, state, T0 + WAIT + timedelta(seconds=30))
    assert isinstance(failed, DroneUnavailable) and (failed.order_id, failed.reason) == ("o3", "NO_DRONE")
    assert list(state.scan(QUEUE)) == []
    released, *nothing_waits = handle(SERVICE, state, delivered(served))
    assert isinstance(released, DroneReleased) and nothing_waits == []


def test_a_new_drone_serves_the_queue_at_once() -> None:
    state = fleet("drone-01")
    one(state, package("o1"))
    one(state, package("o2"))
    registered, served = handle(SERVICE, state, register_drone("hub-north", "drone-02", T0))
    assert isinstance(served, DroneAssigned) and (served.order_id, served.drone_id) == ("o2", "drone-02")


def test_a_hub_without_a_single_drone_or_a_wait_of_zero_fails_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = fleet("drone-01")
    refused = one(state, package("o1", hub="hub-west"))
    assert isinstance(refused, DroneUnavailable) and refused.reason == "NO_DRONE"
    monkeypatch.setenv(DRONE_WAIT_ENV, "0")
    drone_wait_s.cache_clear()
    one(state, package("o2"))
    assert isinstance(one(state, package("o3")), DroneUnavailable)


def waiting_count_matches_the_queue(state: MemoryState) -> bool:
    """The per-hub count that spares a scan on every flight's end agrees with the queue's rows."""
    rows: dict[str, int] = {}
    for key, _v in state.scan(QUEUE):
        hub = key_parts(key)[0]
        rows[hub] = rows.get(hub, 0) + 1
    counts = {hub: c["waiting"] for hub, c in state.scan(QUEUE_SEQ) if c["waiting"]}
    return counts == rows


def test_a_waiting_package_whose_order_is_cancelled_leaves_the_queue_at_once() -> None:
    state = fleet("drone-01")
    first = one(state, package("o1"))
    one(state, package("o2"))
    one(state, package("o3"))
    gone = one(state, record(DeliveryCancelled, order_id="o2"))
    assert isinstance(gone, DroneUnavailable) and (gone.order_id, gone.reason) == ("o2", "CANCELLED")
    assert waiting_count_matches_the_queue(state)
    _, served = handle(SERVICE, state, delivered(first))
    assert served.order_id == "o3"
    assert waiting_count_matches_the_queue(state) and list(state.scan(QUEUE)) == []


def test_a_waiting_package_whose_saga_expired_leaves_the_queue_and_takes_no_drone() -> None:
    state = fleet("drone-01")
    first = one(state, package("o1"))
    one(state, package("o2"))
    one(state, package("o3"))
    expired = record(DeliveryExpired, order_id="o2", reason="DEADLINE")
    gone = one(state, expired)
    assert isinstance(gone, DroneUnavailable) and (gone.order_id, gone.reason) == ("o2", "DEADLINE")
    assert handle(SERVICE, state, expired) == []  # said once
    _, served = handle(SERVICE, state, delivered(first))
    assert served.order_id == "o3"  # o2 took no drone
    assert fire_due(SERVICE, state, T0 + WAIT) == []  # and its wait timer went with it


def test_the_queue_and_its_timers_are_rebuilt_from_the_own_events_alone() -> None:
    """What restore and `rebuild --verify` rely on: the live state is the fold of the own log,
    TimerFired records included (the worker writes one per firing, before what it decided)."""
    state, log = MemoryState(), []
    for d in ("drone-01", "drone-02"):
        log += handle(SERVICE, state, register_drone("hub-north", d, T0))
    answers = [one(state, package(o, at_s=i)) for i, o in enumerate(("o1", "o2", "o3", "o4", "o5"))]
    log += answers
    log += handle(SERVICE, state, delivered(answers[0]))  # o3 served
    now = to_ms(T0 + WAIT + timedelta(seconds=3))  # o4's wait has ended, o5's not yet
    for timer in due_timers(state, now, limit=10):
        fired = timer.fired(now)
        SERVICE.evolve(state, fired)
        log += [fired, *handle(SERVICE, state, fired)]
    assert [type(e).__name__ for e in log[-2:]] == ["TimerFired", "DroneUnavailable"]
    rebuilt = MemoryState()
    for e in log:
        SERVICE.evolve(rebuilt, e)
    assert rebuilt.dump() == state.dump()
    assert [v["order_id"] for _k, v in state.scan(QUEUE)] == ["o5"]
    assert waiting_count_matches_the_queue(state) and waiting_count_matches_the_queue(rebuilt)
