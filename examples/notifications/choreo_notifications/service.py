"""The notifications service: one CustomerNotified per ended order, never two.

decide and evolve are pure: no Kafka, no clock, no randomness. The runtime calls decide for every
record of the input topics and evolve for every event decide returned (and again, alone, when
`choreo rebuild` replays the service's own topic), in one Kafka transaction per batch.
"""

from __future__ import annotations

from typing import Any

from choreo.contract import Service, State, StateView, derive_id
from choreo.keys import compose_key
from choreo_notifications.events import EVENTS, CustomerNotified
from consumers.orders import events as orders

# (hub, order_id) -> {"outcome": ..., "notification": event id}: the orders already notified.
NOTIFIED = "notified"


def _key(hub: str, order_id: str) -> str:
    # Order ids are unique per hub (the orders service checks them within a hub's partition).
    # Escaped parts: an id may hold '/', and ("a/b", "c") must not meet ("a", "b/c").
    return compose_key(hub, order_id)


def _message(event: orders.OrderCompleted | orders.OrderCompensated) -> str:
    if isinstance(event, orders.OrderCompleted):
        return f"Your order {event.order_id} was delivered by drone {event.drone_id}."
    return f"Your order {event.order_id} could not be delivered ({event.reason}); it was cancelled."


def decide(state: StateView, event: Any) -> list[Any]:
    """CustomerNotified for an order's end, unless this order was notified already."""
    match event:
        case orders.OrderCompleted() | orders.OrderCompensated():
            if state.get(NOTIFIED, _key(event.hub, event.order_id)) is not None:
                return []  # a replayed (or repeated) end: the customer knows already
            return [
                CustomerNotified(
                    # Derived from the cause, so a retried batch writes the very same event.
                    event_id=derive_id(event.event_id, "CustomerNotified"),
                    order_id=event.order_id,
                    hub=event.hub,
                    occurred_at=event.occurred_at,  # the cause's time: domain code has no clock
                    causation_id=event.event_id,
                    outcome="completed" if isinstance(event, orders.OrderCompleted) else "compensated",
                    message=_message(event),
                )
            ]
    return []  # every other orders event: nothing to say yet


def evolve(state: State, event: Any) -> None:
    """Remember the notification, so the order is never notified again (not even after a rebuild)."""
    match event:
        case CustomerNotified():
            state.put(NOTIFIED, _key(event.hub, event.order_id),
                      {"outcome": event.outcome, "notification": event.event_id})


SERVICE = Service(
    name="notifications",
    inputs={
        # The whole topic: a record of a type not listed here would be dead-lettered.
        "orders": orders.EVENTS,
    },
    emits=EVENTS,
    decide=decide,
    evolve=evolve,
    description="Tells the customer how the order ended, once per order.",
)
