"""The drones service: fleet, lowest-free assignment, NO_DRONE, release once."""

from __future__ import annotations

from typing import Any

import pytest

from choreo.testing import MemoryState
from consumers.delivery.events import DeliveryCompleted, DeliveryFailed
from consumers.drones.events import (
    DroneAssigned,
    DroneRegistered,
    DroneRegistrationRejected,
    DroneReleased,
    DroneUnavailable,
    PackageQueued,
)
from consumers.drones.service import decide, evolve
from consumers.packaging.events import PackagePrepared
from producers.commands import register_drone
from tests.support.records import T0, record


def apply(state: MemoryState, event: Any) -> list[Any]:
    out = list(decide(state, event))
    for e in out:
        evolve(state, e)
    return out


def fleet(*drone_ids: str) -> MemoryState:
    state = MemoryState()
    for d in drone_ids:
        (event,) = apply(state, register_drone("hub-north", d, T0))
        assert isinstance(event, DroneRegistered)
    return state


def package(order_id: str) -> PackagePrepared:
    return record(
        PackagePrepared,
        order_id=order_id,
        package_id=f"pkg-{order_id}",
        sku="SKU-0001",
        quantity=1,
        address="1 Harbour Street, Northport",
    )


@pytest.mark.parametrize(
    ("hub", "drone_id", "reason"),
    [
        ("hub-mars", "d1", "UNKNOWN_HUB"),
        ("hub-north", " ", "INVALID_DRONE_ID"),
        ("hub-north", "drone-01", "DUPLICATE_DRONE"),
    ],
)
def test_a_bad_registration_is_refused(hub: str, drone_id: str, reason: str) -> None:
    state = fleet("drone-01")
    before = state.dump()
    (event,) = apply(state, register_drone(hub, drone_id, T0))
    assert isinstance(event, DroneRegistrationRejected) and event.reason == reason
    assert state.dump() == before


def test_the_lowest_free_drone_is_assigned_then_none_is_left() -> None:
    state = fleet("drone-02", "drone-01")
    first, second, third = (apply(state, package(o))[0] for o in ("o1", "o2", "o3"))
    assert isinstance(first, DroneAssigned) and first.drone_id == "drone-01"
    assert first.address == "1 Harbour Street, Northport" and first.package_id == "pkg-o1"
    assert isinstance(second, DroneAssigned) and second.drone_id == "drone-02"
    # None free: the third waits in the hub's queue (test_drones_queue.py), not refused.
    assert isinstance(third, PackageQueued)
    assert apply(state, package("o1")) == []


def test_another_hub_s_drones_are_not_used() -> None:
    state = fleet("drone-01")
    (event,) = apply(
        state,
        record(PackagePrepared, hub="hub-south", package_id="p", sku="SKU-0001", quantity=1, address="x"),
    )
    assert isinstance(event, DroneUnavailable)


@pytest.mark.parametrize(
    ("outcome", "failure"),
    [
        (
            record(DeliveryCompleted, order_id="o1", drone_id="drone-01", package_id="pkg-o1", address="a"),
            None,
        ),
        (
            record(
                DeliveryFailed,
                order_id="o1",
                drone_id="drone-01",
                package_id="pkg-o1",
                reason="ADDRESS_NOT_FOUND",
            ),
            "ADDRESS_NOT_FOUND",
        ),
    ],
)
def test_the_drone_comes_back_once_and_flies_again(outcome: Any, failure: str | None) -> None:
    state = fleet("drone-01")
    apply(state, package("o1"))
    (released,) = apply(state, outcome)
    assert isinstance(released, DroneReleased)
    assert (released.drone_id, released.failure_reason) == ("drone-01", failure)
    assert apply(state, outcome) == []
    (again,) = apply(state, package("o2"))
    assert isinstance(again, DroneAssigned) and again.drone_id == "drone-01"


def test_a_delivery_event_for_a_package_without_a_drone_releases_nothing() -> None:
    state = fleet()
    apply(state, package("o1"))
    assert (
        apply(state, record(DeliveryFailed, order_id="o1", drone_id="d", package_id="p", reason="CANCELLED"))
        == []
    )
