"""The saga's v2: an order's priority and a package's weight, carried from the order to the
drones, which serve EXPRESS packages first and give a package only to a drone that can lift it.
Records of v1 (no priority, no weight, no payload) read as STANDARD, 0 and no limit.
Broker-free; time is a value."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from choreo.testing import MemoryState, handle
from consumers.drones.events import (
    DroneAssigned,
    DroneRegistered,
    DroneRegistrationRejected,
    DroneUnavailable,
    PackageQueued,
)
from consumers.drones.service import DRONES, FREE, QUEUE, QUEUE_SEQ
from consumers.drones.service import SERVICE as DRONES_SERVICE
from consumers.orders.events import EXPRESS, STANDARD, OrderPlaced
from consumers.orders.service import SERVICE as ORDERS_SERVICE
from consumers.packaging.events import PackagePrepared
from consumers.packaging.service import SERVICE as PACKAGING_SERVICE
from consumers.reference import DRONE_WAIT_ENV, drone_wait_s, hubs, sku_weights
from producers.commands import add_stock, place_order, register_drone
from tests.support.records import T0, record
from tests.unit.test_drones_queue import delivered


def _drones(*fleet: tuple[str, int]) -> MemoryState:
    state = MemoryState()
    for drone_id, payload in fleet:
        handle(DRONES_SERVICE, state, register_drone("hub-north", drone_id, T0, max_payload_grams=payload))
    return state


def _package(order_id: str, weight: int = 0, priority: str = STANDARD, at_s: int = 0) -> PackagePrepared:
    return record(PackagePrepared, order_id=order_id, hub="hub-north", package_id=f"pkg-{order_id}",
                  sku="SKU-0001", quantity=1, address="1 Harbour Street, Northport",
                  occurred_at=T0 + timedelta(seconds=at_s), priority=priority, weight_grams=weight)


def _one(state: MemoryState, event: Any) -> Any:
    (out,) = handle(DRONES_SERVICE, state, event)
    return out


def test_the_priority_travels_from_the_command_to_the_package_with_its_weight() -> None:
    command = place_order("hub-north", "SKU-0002", 3, "1 Harbour Street, Northport", T0,
                          order_id="o-1", priority=EXPRESS)
    (placed,) = handle(ORDERS_SERVICE, MemoryState(), command)
    assert isinstance(placed, OrderPlaced) and placed.priority == EXPRESS
    shelves = MemoryState()
    handle(PACKAGING_SERVICE, shelves, add_stock("hub-north", "SKU-0002", 10, T0))
    (packed,) = handle(PACKAGING_SERVICE, shelves, placed)
    assert isinstance(packed, PackagePrepared)
    assert packed.priority == EXPRESS and packed.weight_grams == 3 * sku_weights()["SKU-0002"]


def test_a_package_goes_to_the_lowest_free_drone_that_can_lift_it() -> None:
    state = _drones(("drone-01", 500), ("drone-02", 0), ("drone-03", 2000))
    heavy = _one(state, _package("o-1", weight=1500))
    assert isinstance(heavy, DroneAssigned) and heavy.drone_id == "drone-02"  # no limit
    light = _one(state, _package("o-2", weight=400))
    assert isinstance(light, DroneAssigned) and light.drone_id == "drone-01"


def test_a_package_no_drone_of_the_hub_can_lift_fails_at_once_with_too_heavy() -> None:
    state = _drones(("drone-01", 500), ("drone-02", 1000))
    refused = _one(state, _package("o-1", weight=1001))
    assert isinstance(refused, DroneUnavailable) and refused.reason == "TOO_HEAVY"


def test_a_heavy_package_waits_for_a_drone_that_can_lift_it_and_a_light_one_goes_first() -> None:
    state = _drones(("drone-01", 500), ("drone-02", 3000))
    flying = _one(state, _package("o-0", weight=2500))  # drone-02 (drone-01 cannot)
    queued = _one(state, _package("o-1", weight=2500, at_s=1))
    assert isinstance(queued, PackageQueued) and queued.weight_grams == 2500
    light_assigned = _one(state, _package("o-2", weight=100, at_s=2))
    assert isinstance(light_assigned, DroneAssigned) and light_assigned.drone_id == "drone-01"
    # drone-01 back: the heavy package waits on (it cannot lift it), nothing else waits.
    assert handle(DRONES_SERVICE, state, delivered(light_assigned))[1:] == []
    _, served = handle(DRONES_SERVICE, state, delivered(flying))
    assert isinstance(served, DroneAssigned) and (served.order_id, served.drone_id) == ("o-1", "drone-02")


def test_an_express_package_is_served_before_standard_ones_that_waited_longer() -> None:
    state = _drones(("drone-01", 0))
    first = _one(state, _package("o-0"))
    for i, (order, priority) in enumerate((("o-1", STANDARD), ("o-2", EXPRESS), ("o-3", STANDARD)), 1):
        assert isinstance(_one(state, _package(order, priority=priority, at_s=i)), PackageQueued)
    assert state.get(QUEUE_SEQ, "hub-north") == {"next": 3, "waiting": 3, "express": 1}
    served = []
    assigned = first
    for _ in range(3):
        _, assigned = handle(DRONES_SERVICE, state, delivered(assigned))
        served.append(assigned.order_id)
    assert served == ["o-2", "o-1", "o-3"]
    assert state.get(QUEUE_SEQ, "hub-north") == {"next": 3, "waiting": 0}  # no express key left


def test_a_payload_limit_survives_flights_and_v1_rows_read_as_no_limit() -> None:
    state = _drones(("drone-01", 800))
    assigned = _one(state, _package("o-1", weight=800))
    handle(DRONES_SERVICE, state, delivered(assigned))
    assert state.get(DRONES, "hub-north/drone-01") == {"order_id": None, "max_payload": 800}
    assert state.get(FREE, "hub-north/drone-01") == {"max_payload": 800}
    # Rows written by v1 have no limit: a v1 store serves any weight.
    state.put(DRONES, "hub-north/drone-02", {"order_id": None})
    state.put(FREE, "hub-north/drone-02", {})
    assert _one(state, _package("o-2", weight=5000)).drone_id == "drone-02"


def test_default_rows_are_those_v1_wrote() -> None:
    # STANDARD, weightless packages and unlimited drones leave the rows v1 left: a store written
    # by both versions is the one either would rebuild.
    state = _drones(("drone-01", 0))
    assert state.get(DRONES, "hub-north/drone-01") == {"order_id": None}
    _one(state, _package("o-0"))
    _one(state, _package("o-1", at_s=1))
    [(_key, row)] = list(state.scan(QUEUE))
    assert set(row) == {"order_id", "package_id", "address", "occurred_at"}


def test_a_negative_payload_is_refused_with_a_reason() -> None:
    (refused,) = handle(DRONES_SERVICE, MemoryState(),
                        register_drone("hub-north", "drone-09", T0, max_payload_grams=-1))
    assert isinstance(refused, DroneRegistrationRejected) and refused.reason == "INVALID_PAYLOAD"
    (ok,) = handle(DRONES_SERVICE, MemoryState(),
                   register_drone("hub-north", "drone-09", T0, max_payload_grams=1200))
    assert isinstance(ok, DroneRegistered) and ok.max_payload_grams == 1200


def test_every_sku_of_the_catalogue_has_a_weight() -> None:
    # A package of v2 always weighs something: a weight of 0 in the log says v1 packed it.
    stocked = {sku for hub in hubs().values() for sku in hub.skus}
    assert all(sku_weights().get(sku, 0) > 0 for sku in stocked), stocked - set(sku_weights())


def test_a_hub_whose_drones_are_all_too_weak_says_too_heavy_even_without_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(DRONE_WAIT_ENV, "0")
    drone_wait_s.cache_clear()
    try:
        state = _drones(("drone-01", 100))
        assert _one(state, _package("o-1", weight=101)).reason == "TOO_HEAVY"
        assert _one(state, _package("o-2", weight=50)).drone_id == "drone-01"
        assert _one(state, _package("o-3", weight=50)).reason == "NO_DRONE"  # able, but busy
    finally:
        drone_wait_s.cache_clear()


def test_an_express_count_left_by_code_without_priorities_goes_with_the_last_package() -> None:
    state = _drones(("drone-01", 0))
    first = _one(state, _package("o-0"))
    _one(state, _package("o-1", at_s=1))
    # As a v1 instance would leave it: a count of EXPRESS packages its rows do not mark.
    state.put(QUEUE_SEQ, "hub-north", {"next": 1, "waiting": 1, "express": 1})
    _, served = handle(DRONES_SERVICE, state, delivered(first))
    assert served.order_id == "o-1"
    assert state.get(QUEUE_SEQ, "hub-north") == {"next": 1, "waiting": 0}
