"""The audit finds each kind of broken log, and the outcome table counts what happened."""

from __future__ import annotations

from typing import Any

from consumers.audit import audit, summarise_outcomes
from consumers.delivery.events import DeliveryCompleted
from consumers.drones.events import DroneAssigned, DroneRegistered, DroneReleased
from consumers.orders.events import OrderCompensated, OrderCompleted, OrderFailed, OrderPlaced, OrderRejected
from consumers.packaging.events import PackagePrepared, StockAdded, StockReleased, StockShipped
from tests.support.records import record


def placed(o: str) -> OrderPlaced:
    return record(OrderPlaced, order_id=o, sku="SKU-0001", quantity=2, address="a")


def prepared(o: str, quantity: int = 2) -> PackagePrepared:
    return record(PackagePrepared, order_id=o, package_id="p", sku="SKU-0001", quantity=quantity, address="a")


def assigned(o: str, drone: str = "d1") -> DroneAssigned:
    return record(DroneAssigned, order_id=o, drone_id=drone, package_id="p", address="a")


def released_drone(o: str, failure: str | None, drone: str = "d1") -> DroneReleased:
    return record(DroneReleased, order_id=o, drone_id=drone, package_id="p", failure_reason=failure)


START = [
    record(StockAdded, sku="SKU-0001", quantity=10),
    record(DroneRegistered, drone_id="d1"),
    record(DroneRegistered, drone_id="d2"),
]


def completed(o: str) -> list[Any]:
    return [
        placed(o),
        prepared(o),
        assigned(o),
        record(DeliveryCompleted, order_id=o, drone_id="d1", package_id="p", address="a"),
        record(StockShipped, order_id=o, package_id="p", sku="SKU-0001", quantity=2),
        released_drone(o, None),
        record(OrderCompleted, order_id=o, package_id="p", drone_id="d1"),
    ]


def lost(o: str) -> list[Any]:
    return [
        placed(o),
        prepared(o),
        assigned(o),
        released_drone(o, "ADDRESS_NOT_FOUND"),
        record(
            StockReleased, order_id=o, package_id="p", sku="SKU-0001", quantity=2, reason="ADDRESS_NOT_FOUND"
        ),
        record(OrderFailed, order_id=o, reason="ADDRESS_NOT_FOUND"),
        record(OrderCompensated, order_id=o, reason="ADDRESS_NOT_FOUND"),
    ]


def broken(events: list[Any]) -> dict[str, list[str]]:
    return {i.name: i.violations for i in audit(START + events).invariants if not i.ok}


def test_a_sound_log_passes_and_is_summarised() -> None:
    events = (
        START
        + completed("a")
        + lost("b")
        + [record(OrderRejected, order_id="c", reason="INVALID_SKU", detail="x")]
    )
    report = audit(events)
    assert report.ok and report.sagas == 2
    assert [(r.outcome, r.reason, r.orders, r.compensated) for r in summarise_outcomes(events)] == [
        ("completed", "", 1, 0),
        ("failed", "ADDRESS_NOT_FOUND", 1, 1),
        ("rejected", "INVALID_SKU", 1, 0),
    ]


def test_an_order_without_an_end_or_with_two_is_reported() -> None:
    assert "no end yet" in broken([placed("a")])["ended_once"][0]
    assert audit(START + [placed("a")], in_flight_ok=True).in_flight == 1
    assert (
        "2 ends"
        in broken(completed("a") + [record(OrderFailed, order_id="a", reason="NO_DRONE")])["ended_once"][0]
    )


def test_a_failure_without_compensation_is_reported() -> None:
    assert "failed_compensated" in broken(lost("b")[:-1])


def test_a_release_that_does_not_match_what_was_taken_is_reported() -> None:
    events = lost("b")
    events[4] = record(StockReleased, order_id="b", package_id="p", sku="SKU-0001", quantity=1, reason="x")
    assert "released_what_taken" in broken(events)
    assert (
        "took 1 drone(s), released 0"
        in broken([e for e in lost("b") if not isinstance(e, DroneReleased)])["released_what_taken"][0]
    )


def test_negative_stock_is_reported() -> None:
    assert "stock_conserved" in broken([placed("a"), prepared("a", quantity=11)])


def test_a_drone_assigned_while_flying_is_reported() -> None:
    problems = broken([placed("a"), placed("b"), assigned("a"), assigned("b")])
    assert "d1 assigned to b while flying for a" in problems["drone_exclusive"][0]
