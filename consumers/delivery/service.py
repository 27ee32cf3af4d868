"""The delivery service: flies the package if the address is in the hub's address book."""

from __future__ import annotations

from typing import Any

from choreo.contract import Service, State, StateView
from consumers.delivery.events import (
    EVENTS,
    DeliveryCancelled,
    DeliveryCompleted,
    DeliveryExpired,
    DeliveryFailed,
)
from consumers.drones import events as drones
from consumers.orders import events as orders
from consumers.reference import hubs
from consumers.saga import caused_by, saga_key

# saga_key -> {"status": "completed" | "failed" | "cancelled" | "expired"}; "cancelled" and
# "expired" mean a cancel or the deadline came before the drone: it is sent back when it comes.
DELIVERIES = "deliveries"
_REFUSED = {"cancelled": "CANCELLED", "expired": "DEADLINE"}  # status -> DeliveryFailed reason


def decide(state: StateView, event: Any) -> list[Any]:
    """Delivery's reaction to a drone assignment or a cancellation (the saga's point of no return)."""
    delivery = (
        state.get(DELIVERIES, saga_key(event.hub, event.order_id)) if hasattr(event, "order_id") else None
    )
    match event:
        case drones.DroneAssigned():
            if delivery is not None and delivery["status"] not in _REFUSED:
                return []  # already flown: a delivery is decided once
            if delivery is not None:
                return [_failed(event, _REFUSED[delivery["status"]])]
            hub = hubs().get(event.hub)
            if hub is None or not hub.reaches(event.address):
                return [_failed(event, "ADDRESS_NOT_FOUND")]
            return [
                DeliveryCompleted(
                    **caused_by(event, "DeliveryCompleted"),
                    drone_id=event.drone_id,
                    package_id=event.package_id,
                    address=event.address,
                )
            ]
        case orders.OrderCancellationRequested():
            # Too late (already decided) or repeated: the cancel changes nothing.
            if delivery is not None:
                return []
            return [DeliveryCancelled(**caused_by(event, "DeliveryCancelled"))]
        case orders.OrderDeadlinePassed():
            # Decided (flown, failed) or already expired: too late, the saga ends its own way.
            # Undecided, or cancelled and waiting for the drone: it will never fly (ADR 0007).
            if delivery is not None and delivery["status"] != "cancelled":
                return []
            return [DeliveryExpired(**caused_by(event, "DeliveryExpired"), reason="DEADLINE")]
    return []


def _failed(assigned: drones.DroneAssigned, reason: str) -> DeliveryFailed:
    return DeliveryFailed(
        **caused_by(assigned, "DeliveryFailed"),
        drone_id=assigned.drone_id,
        package_id=assigned.package_id,
        reason=reason,
    )


def evolve(state: State, event: Any) -> None:
    """Record delivery's decision for the order, so it is never taken again (not even on rebuild)."""
    match event:
        case DeliveryCompleted():
            state.put(DELIVERIES, saga_key(event.hub, event.order_id), {"status": "completed"})
        case DeliveryFailed():
            state.put(DELIVERIES, saga_key(event.hub, event.order_id), {"status": "failed"})
        case DeliveryCancelled():
            state.put(DELIVERIES, saga_key(event.hub, event.order_id), {"status": "cancelled"})
        case DeliveryExpired():
            state.put(DELIVERIES, saga_key(event.hub, event.order_id), {"status": "expired"})


SERVICE = Service(
    name="delivery",
    inputs={
        # Whole topics, since a record of a type not listed here would be dead-lettered.
        "drones": drones.EVENTS,
        "orders": orders.EVENTS,
    },
    emits=EVENTS,
    decide=decide,
    evolve=evolve,
    description="Delivers to addresses in the hub's address book; honours a cancel or a "
    "deadline that comes before the drone.",
)
