"""Builders of the edge's commands. The edge may use fresh random ids; domain code may not."""

from __future__ import annotations

import uuid
from datetime import datetime

from consumers.drones.events import RegisterDrone
from consumers.orders.events import STANDARD, CancelOrder, PlaceOrder
from consumers.packaging.events import AddStock


def edge_time(at: datetime) -> datetime:
    """`at` checked to be timezone-aware and cut to milliseconds, as Avro will store it."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"command time {at.isoformat()} has no timezone; pass an aware datetime")
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def new_id() -> str:
    """A fresh random uuid for an edge record."""
    return str(uuid.uuid4())


def place_order(
    hub: str,
    sku: str,
    quantity: int,
    address: str,
    at: datetime,
    order_id: str | None = None,
    event_id: str | None = None,
    deadline: datetime | None = None,
    priority: str = STANDARD,
) -> PlaceOrder:
    """A PlaceOrder; the order id (the saga id) is fresh unless given. Without a deadline the
    orders service gives it its default (CHOREO_ORDER_DEADLINE_S after `at`)."""
    return PlaceOrder(
        event_id=event_id or new_id(),
        order_id=new_id() if order_id is None else order_id,  # "" is an id to refuse, not "none given"
        hub=hub,
        occurred_at=edge_time(at),
        causation_id=None,
        sku=sku,
        quantity=quantity,
        address=address,
        deadline=None if deadline is None else edge_time(deadline),
        priority=priority,
    )


def cancel_order(order_id: str, hub: str, at: datetime, event_id: str | None = None) -> CancelOrder:
    """A CancelOrder for an order of `hub` (the same hub, so it lands on the saga's partition)."""
    return CancelOrder(
        event_id=event_id or new_id(),
        order_id=order_id,
        hub=hub,
        occurred_at=edge_time(at),
        causation_id=None,
    )


def add_stock(hub: str, sku: str, quantity: int, at: datetime, event_id: str | None = None) -> AddStock:
    """An AddStock putting `quantity` items of `sku` on the shelves of `hub`."""
    return AddStock(
        event_id=event_id or new_id(),
        hub=hub,
        occurred_at=edge_time(at),
        causation_id=None,
        sku=sku,
        quantity=quantity,
    )


def register_drone(
    hub: str, drone_id: str, at: datetime, event_id: str | None = None, max_payload_grams: int = 0,
) -> RegisterDrone:
    """A RegisterDrone adding `drone_id` to the fleet of `hub` (0: it carries any package)."""
    return RegisterDrone(
        event_id=event_id or new_id(),
        hub=hub,
        occurred_at=edge_time(at),
        causation_id=None,
        drone_id=drone_id,
        max_payload_grams=max_payload_grams,
    )
