"""The delivery service: the address book decides, once; a cancel wins only before the drone."""

from __future__ import annotations

from typing import Any

from choreo.testing import MemoryState
from consumers.delivery.events import DeliveryCancelled, DeliveryCompleted, DeliveryFailed
from consumers.delivery.service import decide, evolve
from consumers.drones.events import DroneAssigned
from consumers.orders.events import OrderCancellationRequested, OrderPlaced
from tests.support.records import record


def apply(state: MemoryState, event: Any) -> list[Any]:
    out = list(decide(state, event))
    for e in out:
        evolve(state, e)
    return out


def assigned(address: str = "  1 HARBOUR street,   Northport ") -> DroneAssigned:
    return record(DroneAssigned, drone_id="drone-01", package_id="p", address=address)


def test_a_known_address_is_delivered_once() -> None:
    state = MemoryState()
    (event,) = apply(state, assigned())
    assert isinstance(event, DeliveryCompleted) and event.drone_id == "drone-01"
    assert apply(state, assigned()) == []


def test_an_unknown_address_fails_and_the_decision_is_kept() -> None:
    state = MemoryState()
    (event,) = apply(state, assigned("404 Nowhere Lane"))
    assert isinstance(event, DeliveryFailed) and event.reason == "ADDRESS_NOT_FOUND"
    assert apply(state, assigned()) == []  # even a good address now: decided once


def test_an_address_of_another_hub_is_not_found() -> None:
    (event,) = decide(MemoryState(), assigned("10 Meadow Lane, Southfield"))
    assert isinstance(event, DeliveryFailed)


def test_a_cancel_before_the_drone_fails_the_delivery_with_cancelled() -> None:
    state = MemoryState()
    (noted,) = apply(state, record(OrderCancellationRequested))
    assert isinstance(noted, DeliveryCancelled)
    assert apply(state, record(OrderCancellationRequested)) == []
    (event,) = apply(state, assigned())
    assert isinstance(event, DeliveryFailed) and event.reason == "CANCELLED"
    assert apply(state, assigned()) == []


def test_a_cancel_after_the_delivery_changes_nothing() -> None:
    state = MemoryState()
    apply(state, assigned())
    assert apply(state, record(OrderCancellationRequested)) == []


def test_other_order_events_are_ignored() -> None:
    assert decide(MemoryState(), record(OrderPlaced, sku="SKU-0001", quantity=1, address="a")) == []
