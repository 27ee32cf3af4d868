"""Events and commands of the orders service, one frozen dataclass per schemas/orders/*.avsc."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from consumers.envelope import SagaRecord

# An order's priority (the enum delivery.orders.Priority): the drones give an EXPRESS package the
# next free drone that can carry it before any STANDARD one waiting at its hub.
STANDARD = "STANDARD"
EXPRESS = "EXPRESS"
PRIORITIES = (STANDARD, EXPRESS)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder(SagaRecord):
    """Command: place an order for `quantity` items of `sku`, delivered by drone from `hub` to `address`."""

    SCHEMA: ClassVar[str] = "delivery.orders.PlaceOrder"

    sku: str
    quantity: int
    address: str
    # When the saga must have ended; None: the service's default (CHOREO_ORDER_DEADLINE_S).
    deadline: datetime | None = None
    priority: str = STANDARD


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(SagaRecord):
    """Command: cancel an order."""

    SCHEMA: ClassVar[str] = "delivery.orders.CancelOrder"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced(SagaRecord):
    """An order passed validation and its saga started."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderPlaced"

    sku: str
    quantity: int
    address: str
    # None only in orders placed before deadlines existed: they have none.
    deadline: datetime | None = None
    priority: str = STANDARD  # STANDARD in orders placed before priorities existed


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(SagaRecord):
    """A PlaceOrder failed validation; no saga was started."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderRejected"

    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancellationRequested(SagaRecord):
    """A CancelOrder was accepted and passed on to delivery, which decides if it is in time."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderCancellationRequested"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancellationRejected(SagaRecord):
    """A CancelOrder could not be accepted."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderCancellationRejected"

    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDeadlinePassed(SagaRecord):
    """The saga had not ended by its deadline; delivery decides whether it can still stop it."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderDeadlinePassed"

    deadline: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCompleted(SagaRecord):
    """The saga's happy end: the package was delivered."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderCompleted"

    package_id: str
    drone_id: str
    # Schema v2: absent from records written with v1, which decode with the default.
    delivered_to: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFailed(SagaRecord):
    """The saga's unhappy end; OrderCompensated follows once everything it took is released."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderFailed"

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCompensated(SagaRecord):
    """Every resource the failed saga took (stock, drone) has been released."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderCompensated"

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
    OrderDeadlinePassed,
)
