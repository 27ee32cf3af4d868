"""The packaging service: stock per hub and SKU, reserved for orders and released on failure."""

from __future__ import annotations

from typing import Any

from choreo.contract import Service, State, StateView, derive_id, saga_ended, saga_started
from choreo.keys import compose_key
from consumers.delivery import events as delivery
from consumers.drones import events as drones
from consumers.limits import SKU_MAX, clipped, field_too_long, shown
from consumers.orders import events as orders
from consumers.packaging.events import (
    COMMANDS,
    EVENTS,
    AddStock,
    PackagePrepared,
    PackagingFailed,
    StockAdded,
    StockAddRejected,
    StockReleased,
    StockShipped,
)
from consumers.reference import SKU_PATTERN, hubs, sku_weights
from consumers.saga import caused_by, caused_by_without_order, saga_key

STOCK = "stock"  # stock_key -> {"on_hand", "reserved", "shipped"}
RESERVATIONS = "reservations"  # saga_key -> {"package_id", "sku", "quantity", "status"}
EMPTY_SHELF = {"on_hand": 0, "reserved": 0, "shipped": 0}


def stock_key(hub: str, sku: str) -> str:
    """Key of a shelf in the stock table, escaped like every composite key (choreo/keys.py)."""
    return compose_key(hub, sku)


def package_id_for(order_id: str) -> str:
    """The package of an order, derived so that every service and the audit agree on it.

    One part, so derive_id keeps it injective (its purpose holds no '/'); the same order id at two
    hubs gives the same package id, which names no state (reservations are keyed by saga_key).
    """
    return derive_id(order_id, "package")


def decide(state: StateView, event: Any) -> list[Any]:
    """Packaging's reaction to a stock command or a saga event."""
    match event:
        case AddStock():
            return [_add_stock(event)]
        case orders.OrderPlaced():
            if state.get(RESERVATIONS, saga_key(event.hub, event.order_id)) is not None:
                return []  # already packed or refused for this order
            return [_pack(state, event)]
        case drones.DroneUnavailable():
            return _release(state, event, event.reason)
        case drones.DroneReleased() if event.failure_reason is not None:
            # The drone brought the package back: only now can the items go back on the shelf.
            return _release(state, event, event.failure_reason)
        case delivery.DeliveryExpired():
            # Delivery will never fly it: the items go back now, even if a drone was assigned
            # meanwhile (delivery sends it back with the package). Not packed yet: the late
            # package takes the ordinary way back (drone refused, then released) (ADR 0007).
            return _release(state, event, event.reason)
        case delivery.DeliveryCompleted():
            reservation = _reserved(state, event)
            if reservation is None:
                return []
            return [
                StockShipped(
                    **caused_by(event, "StockShipped"),
                    package_id=reservation["package_id"],
                    sku=reservation["sku"],
                    quantity=reservation["quantity"],
                )
            ]
    return []


def _add_stock(command: AddStock) -> StockAdded | StockAddRejected:
    problem = _stock_problem(command)
    if problem is None:
        return StockAdded(
            **caused_by_without_order(command, "StockAdded"),
            sku=command.sku,
            quantity=command.quantity,
        )
    reason, detail = problem
    return StockAddRejected(
        **caused_by_without_order(command, "StockAddRejected"),
        sku=clipped(command.sku, SKU_MAX),  # "as sent", but never an over-long one
        quantity=command.quantity,
        reason=reason,
        detail=detail,
    )


def _stock_problem(command: AddStock) -> tuple[str, str] | None:
    too_long = field_too_long(command)
    if too_long is not None:
        return too_long  # first: no other reason's detail may quote an over-long value
    hub = hubs().get(command.hub)
    if hub is None:
        return "UNKNOWN_HUB", f"hub {shown(command.hub)} is not one of ours"
    if not SKU_PATTERN.fullmatch(command.sku):
        return "INVALID_SKU", f"SKU {shown(command.sku)} is not of the form SKU-0000"
    if command.sku not in hub.skus:
        return "UNKNOWN_SKU", f"SKU {shown(command.sku)} is not in the catalogue of {shown(command.hub)}"
    if command.quantity < 1:
        return "INVALID_QUANTITY", f"quantity {command.quantity} must be at least 1"
    return None


def _pack(state: StateView, order: orders.OrderPlaced) -> PackagePrepared | PackagingFailed:
    shelf = state.get(STOCK, stock_key(order.hub, order.sku)) or EMPTY_SHELF
    if shelf["on_hand"] < order.quantity:
        return PackagingFailed(
            **caused_by(order, "PackagingFailed"),
            sku=order.sku,
            quantity=order.quantity,
            available=shelf["on_hand"],
            reason="OUT_OF_STOCK",
        )
    return PackagePrepared(
        **caused_by(order, "PackagePrepared"),
        package_id=package_id_for(order.order_id),
        sku=order.sku,
        quantity=order.quantity,
        address=order.address,
        priority=order.priority,  # the drones serve EXPRESS first
        weight_grams=sku_weights().get(order.sku, 0) * order.quantity,  # what a drone must lift
    )


def _reserved(state: StateView, event: Any) -> dict[str, Any] | None:
    """The saga's reservation if it still holds stock (so compensation happens once)."""
    reservation = state.get(RESERVATIONS, saga_key(event.hub, event.order_id))
    return reservation if reservation is not None and reservation["status"] == "reserved" else None


def _release(state: StateView, cause: Any, reason: str) -> list[Any]:
    reservation = _reserved(state, cause)
    if reservation is None:
        return []
    return [
        StockReleased(
            **caused_by(cause, "StockReleased"),
            package_id=reservation["package_id"],
            sku=reservation["sku"],
            quantity=reservation["quantity"],
            reason=reason,
        )
    ]


def evolve(state: State, event: Any) -> None:
    """Apply one of packaging's own events to the shelves and reservations."""
    match event:
        case StockAdded():
            _shelf(state, event.hub, event.sku, on_hand=event.quantity)
        case PackagePrepared():
            _shelf(state, event.hub, event.sku, on_hand=-event.quantity, reserved=event.quantity)
            _reservation(state, event, "reserved")
            saga_started(state, saga_key(event.hub, event.order_id), event.occurred_at)
        case PackagingFailed():
            # Remembered so that a repeated OrderPlaced is not packed after all.
            state.put(
                RESERVATIONS,
                saga_key(event.hub, event.order_id),
                {"package_id": None, "sku": event.sku, "quantity": 0, "status": "refused"},
            )
        case StockReleased():
            _shelf(state, event.hub, event.sku, on_hand=event.quantity, reserved=-event.quantity)
            _reservation(state, event, "released")
            saga_ended(state, saga_key(event.hub, event.order_id))
        case StockShipped():
            _shelf(state, event.hub, event.sku, reserved=-event.quantity, shipped=event.quantity)
            _reservation(state, event, "shipped")
            saga_ended(state, saga_key(event.hub, event.order_id))
        case StockAddRejected():
            pass  # changes nothing: it only answers the edge


def _shelf(state: State, hub: str, sku: str, **deltas: int) -> None:
    key = stock_key(hub, sku)
    shelf = dict(state.get(STOCK, key) or EMPTY_SHELF)
    for name, delta in deltas.items():
        shelf[name] += delta
    state.put(STOCK, key, shelf)


def _reservation(state: State, event: Any, status: str) -> None:
    state.put(
        RESERVATIONS,
        saga_key(event.hub, event.order_id),
        {"package_id": event.package_id, "sku": event.sku, "quantity": event.quantity, "status": status},
    )


SERVICE = Service(
    name="packaging",
    inputs={
        "packaging.commands": COMMANDS,
        # Whole topics, since a record of a type not listed here would be dead-lettered.
        "orders": orders.EVENTS,
        "drones": drones.EVENTS,
        "delivery": delivery.EVENTS,
    },
    emits=EVENTS,
    decide=decide,
    evolve=evolve,
    description="Keeps stock per hub and SKU; reserves for orders, releases on failure, ships on delivery.",
)
