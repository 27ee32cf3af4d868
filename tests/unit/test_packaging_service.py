"""The packaging service: stock, reservation, release once, shipment."""

from __future__ import annotations

from typing import Any

import pytest

from choreo.testing import MemoryState
from consumers.delivery.events import DeliveryCompleted
from consumers.drones.events import DroneReleased, DroneUnavailable
from consumers.orders.events import OrderPlaced
from consumers.packaging.events import (
    PackagePrepared,
    PackagingFailed,
    StockAdded,
    StockAddRejected,
    StockReleased,
    StockShipped,
)
from consumers.packaging.service import RESERVATIONS, STOCK, decide, evolve, package_id_for
from producers.commands import add_stock
from tests.support.records import T0, record


def apply(state: MemoryState, event: Any) -> list[Any]:
    out = list(decide(state, event))
    for e in out:
        evolve(state, e)
    return out


def order(order_id: str = "order-1", quantity: int = 3) -> OrderPlaced:
    return record(OrderPlaced, order_id=order_id, sku="SKU-0001", quantity=quantity, address="somewhere")


def stocked(quantity: int = 5) -> MemoryState:
    state = MemoryState()
    (added,) = apply(state, add_stock("hub-north", "SKU-0001", quantity, T0))
    assert isinstance(added, StockAdded)
    return state


def shelf(state: MemoryState) -> dict[str, int]:
    value = state.get(STOCK, "hub-north/SKU-0001")
    assert value is not None
    return value


@pytest.mark.parametrize(
    ("hub", "sku", "quantity", "reason"),
    [
        ("hub-mars", "SKU-0001", 1, "UNKNOWN_HUB"),
        ("hub-north", "0001", 1, "INVALID_SKU"),
        ("hub-north", "SKU-0007", 1, "UNKNOWN_SKU"),
        ("hub-north", "SKU-0001", 0, "INVALID_QUANTITY"),
    ],
)
def test_invalid_stock_is_refused_and_changes_nothing(hub: str, sku: str, quantity: int, reason: str) -> None:
    state = MemoryState()
    (event,) = apply(state, add_stock(hub, sku, quantity, T0))
    assert isinstance(event, StockAddRejected) and event.reason == reason
    assert state.dump() == "{}"


def test_an_order_reserves_stock_into_a_package_derived_from_the_order() -> None:
    state = stocked(5)
    (event,) = apply(state, order(quantity=3))
    assert isinstance(event, PackagePrepared)
    assert event.package_id == package_id_for("order-1") and event.address == "somewhere"
    assert shelf(state) == {"on_hand": 2, "reserved": 3, "shipped": 0}
    assert apply(state, order(quantity=3)) == []  # a repeated OrderPlaced packs nothing more


def test_too_little_stock_fails_with_out_of_stock_and_reserves_nothing() -> None:
    state = stocked(2)
    (event,) = apply(state, order(quantity=3))
    assert isinstance(event, PackagingFailed)
    assert (event.reason, event.available) == ("OUT_OF_STOCK", 2)
    assert shelf(state) == {"on_hand": 2, "reserved": 0, "shipped": 0}
    assert apply(state, record(DroneUnavailable, package_id="p", reason="NO_DRONE")) == []


@pytest.mark.parametrize(
    "failure",
    [
        record(DroneUnavailable, package_id="p", reason="NO_DRONE"),
        record(DroneReleased, drone_id="d", package_id="p", failure_reason="ADDRESS_NOT_FOUND"),
        record(DroneReleased, drone_id="d", package_id="p", failure_reason="CANCELLED"),
    ],
)
def test_a_failed_saga_gets_its_stock_back_exactly_once(failure: Any) -> None:
    state = stocked(5)
    apply(state, order(quantity=3))
    (released,) = apply(state, failure)
    assert isinstance(released, StockReleased) and released.quantity == 3
    expected = failure.reason if isinstance(failure, DroneUnavailable) else failure.failure_reason
    assert released.reason == expected
    assert shelf(state) == {"on_hand": 5, "reserved": 0, "shipped": 0}
    assert apply(state, failure) == []
    assert apply(state, record(DroneUnavailable, package_id="p", reason="NO_DRONE")) == []


def test_a_drone_back_from_a_delivery_releases_nothing() -> None:
    state = stocked(5)
    apply(state, order(quantity=3))
    assert apply(state, record(DroneReleased, drone_id="d", package_id="p", failure_reason=None)) == []


def test_a_delivered_package_is_shipped_once() -> None:
    state = stocked(5)
    apply(state, order(quantity=3))
    done = record(DeliveryCompleted, drone_id="d", package_id="p", address="a")
    (shipped,) = apply(state, done)
    assert isinstance(shipped, StockShipped) and shipped.quantity == 3
    assert shelf(state) == {"on_hand": 2, "reserved": 0, "shipped": 3}
    assert apply(state, done) == []
    assert state.get(RESERVATIONS, "hub-north/order-1") == {
        "package_id": package_id_for("order-1"),
        "sku": "SKU-0001",
        "quantity": 3,
        "status": "shipped",
    }
