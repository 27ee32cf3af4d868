"""What `choreo trace` should call each event of the drone saga: a failure, a compensation, an end."""

from __future__ import annotations

from typing import Any

from consumers.delivery import events as delivery
from consumers.drones import events as drones
from consumers.orders import events as orders
from consumers.packaging import events as packaging

_FAILURES = (
    packaging.PackagingFailed, drones.DroneUnavailable, delivery.DeliveryFailed,
    delivery.DeliveryCancelled, orders.OrderFailed,
)
_ENDS = {
    orders.OrderCompleted: "completed",
    orders.OrderCompensated: "compensated",
    orders.OrderRejected: "rejected",
}


def role_of(event: Any) -> str | None:
    """The event's part in its saga, or None for an ordinary forward step."""
    if isinstance(event, _FAILURES):
        return "failure"
    # A drone also comes back after a good delivery; only one bringing the package back undoes a step.
    if isinstance(event, packaging.StockReleased) or (
        isinstance(event, drones.DroneReleased) and event.failure_reason
    ):
        return "compensation"
    if type(event) in _ENDS:
        return "end"
    return None


def outcome_of(event: Any) -> str | None:
    """How the saga ended if `event` ends it (orders follows every saga to its end)."""
    return _ENDS.get(type(event))
