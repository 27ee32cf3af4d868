"""Events and commands of the orders service, one frozen dataclass per schemas/orders/*.avsc."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder:
    """Command: place an order for `quantity` items of `sku`, delivered by drone from `hub` to `address`."""

    SCHEMA: ClassVar[str] = "delivery.orders.PlaceOrder"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    sku: str
    quantity: int
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    """Command: cancel an order."""

    SCHEMA: ClassVar[str] = "delivery.orders.CancelOrder"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced:
    """An order passed validation and its saga started."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderPlaced"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    sku: str
    quantity: int
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected:
    """A PlaceOrder failed validation; no saga was started."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderRejected"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancellationRequested:
    """A CancelOrder was accepted and passed on to delivery, which decides if it is in time."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderCancellationRequested"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancellationRejected:
    """A CancelOrder could not be accepted."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderCancellationRejected"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCompleted:
    """The saga's happy end: the package was delivered."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderCompleted"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    package_id: str
    drone_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFailed:
    """The saga's unhappy end; OrderCompensated follows once everything it took is released."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderFailed"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCompensated:
    """Every resource the failed saga took (stock, drone) has been released."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderCompensated"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    reason: str


# What travels on each topic: other services subscribe to the whole of `orders` (EVENTS).
COMMANDS = (PlaceOrder, CancelOrder)
EVENTS = (
    OrderPlaced,
    OrderRejected,
    OrderCancellationRequested,
    OrderCancellationRejected,
    OrderCompleted,
    OrderFailed,
    OrderCompensated,
)
