"""The orders service: validation, duplicates, cancellation, and following a saga to its end."""

from __future__ import annotations

from typing import Any

import pytest

from choreo.testing import MemoryState
from consumers.delivery.events import DeliveryCompleted, DeliveryFailed
from consumers.drones.events import DroneUnavailable
from consumers.orders.events import (
    OrderCancellationRejected,
    OrderCancellationRequested,
    OrderCompensated,
    OrderCompleted,
    OrderFailed,
    OrderPlaced,
    OrderRejected,
)
from consumers.orders.service import SERVICE, decide, evolve
from consumers.packaging.events import PackagingFailed, StockReleased
from producers.commands import cancel_order, place_order
from tests.support.records import T0, record

GOOD: dict[str, Any] = {
    "hub": "hub-north",
    "sku": "SKU-0001",
    "quantity": 2,
    "address": "1 Harbour Street, Northport",
}


def apply(state: MemoryState, event: Any) -> list[Any]:
    out = list(decide(state, event))
    for e in out:
        evolve(state, e)
    return out


def placed(state: MemoryState, order_id: str = "order-1") -> OrderPlaced:
    (event,) = apply(state, place_order(**GOOD, at=T0, order_id=order_id))
    assert isinstance(event, OrderPlaced)
    return event


def test_a_valid_order_is_placed_with_derived_fields() -> None:
    command = place_order(**GOOD, at=T0, order_id="order-1")
    (event,) = decide(MemoryState(), command)
    assert isinstance(event, OrderPlaced)
    assert (event.order_id, event.hub, event.sku, event.quantity) == ("order-1", "hub-north", "SKU-0001", 2)
    assert event.causation_id == command.event_id and event.occurred_at == command.occurred_at
    assert decide(MemoryState(), command) == [event]  # same input, same event id


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ({"hub": "hub-mars"}, "UNKNOWN_HUB", "hub 'hub-mars' is not one of ours"),
        ({"quantity": 0}, "INVALID_QUANTITY", "quantity 0 is outside 1..100"),
        ({"quantity": 101}, "INVALID_QUANTITY", "quantity 101 is outside 1..100"),
        ({"address": "   "}, "EMPTY_ADDRESS", "the delivery address is empty"),
        ({"sku": "sku-1"}, "INVALID_SKU", "'sku-1' is not of the form SKU-0000"),
        ({"sku": "SKU-0005"}, "UNKNOWN_SKU", "not in the catalogue of 'hub-north'"),
    ],
)
def test_an_invalid_order_is_rejected_with_a_readable_reason(
    change: dict[str, Any], reason: str, words: str
) -> None:
    (event,) = decide(MemoryState(), place_order(**(GOOD | change), at=T0))
    assert isinstance(event, OrderRejected)
    assert event.reason == reason and words in event.detail


def test_a_repeated_order_id_starts_no_second_saga() -> None:
    state = MemoryState()
    placed(state)
    assert apply(state, place_order(**GOOD, at=T0, order_id="order-1")) == []
    apply(state, place_order(**(GOOD | {"quantity": 0}), at=T0, order_id="order-2"))
    assert apply(state, place_order(**GOOD, at=T0, order_id="order-2")) == []


def test_delivery_completes_the_saga_once() -> None:
    state = MemoryState()
    placed(state)
    done = record(DeliveryCompleted, drone_id="drone-01", package_id="p", address="a")
    (event,) = apply(state, done)
    assert isinstance(event, OrderCompleted) and event.drone_id == "drone-01"
    assert event.delivered_to == "a"
    assert apply(state, done) == []


def test_out_of_stock_fails_and_is_compensated_at_once() -> None:
    state = MemoryState()
    placed(state)
    failure = record(PackagingFailed, sku="SKU-0001", quantity=2, available=1, reason="OUT_OF_STOCK")
    out = apply(state, failure)
    assert [type(e) for e in out] == [OrderFailed, OrderCompensated]
    assert out[0].reason == "OUT_OF_STOCK"
    assert apply(state, failure) == []


@pytest.mark.parametrize(
    "failure",
    [
        record(DroneUnavailable, package_id="p", reason="NO_DRONE"),
        record(DeliveryFailed, drone_id="d", package_id="p", reason="ADDRESS_NOT_FOUND"),
    ],
)
def test_a_later_failure_waits_for_the_stock_to_come_back(failure: Any) -> None:
    state = MemoryState()
    placed(state)
    (failed,) = apply(state, failure)
    assert isinstance(failed, OrderFailed) and failed.reason == failure.reason
    assert apply(state, failure) == []
    released = record(StockReleased, package_id="p", sku="SKU-0001", quantity=2, reason=failure.reason)
    (compensated,) = apply(state, released)
    assert isinstance(compensated, OrderCompensated)
    assert apply(state, released) == [] and apply(state, failure) == []


def test_stock_released_before_the_failure_event_ends_the_saga_alone() -> None:
    state = MemoryState()
    placed(state)
    released = record(StockReleased, package_id="p", sku="SKU-0001", quantity=2, reason="NO_DRONE")
    out = apply(state, released)
    assert [(type(e), e.reason) for e in out] == [(OrderFailed, "NO_DRONE"), (OrderCompensated, "NO_DRONE")]
    assert apply(state, record(DroneUnavailable, package_id="p", reason="NO_DRONE")) == []


def test_a_cancel_is_passed_on_once_and_refused_when_pointless() -> None:
    state = MemoryState()
    placed(state)
    (requested,) = apply(state, cancel_order("order-1", "hub-north", T0))
    assert isinstance(requested, OrderCancellationRequested)
    assert apply(state, cancel_order("order-1", "hub-north", T0)) == []
    (unknown,) = apply(state, cancel_order("order-9", "hub-north", T0))
    assert isinstance(unknown, OrderCancellationRejected) and unknown.reason == "UNKNOWN_ORDER"
    apply(state, record(DeliveryCompleted, drone_id="d", package_id="p", address="a"))
    placed(state, "order-2")
    apply(state, record(DeliveryCompleted, order_id="order-2", drone_id="d", package_id="p", address="a"))
    (late,) = apply(state, cancel_order("order-2", "hub-north", T0))
    assert isinstance(late, OrderCancellationRejected) and late.reason == "ALREADY_ENDED"


def test_the_service_declares_its_topics() -> None:
    assert SERVICE.name == "orders" and SERVICE.own_topic == "orders"
    assert set(SERVICE.inputs) == {"orders.commands", "packaging", "drones", "delivery"}
