"""Events and commands of the packaging service, one frozen dataclass per schemas/packaging/*.avsc."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class AddStock:
    """Command: put `quantity` items of `sku` on the shelves of `hub`."""

    SCHEMA: ClassVar[str] = "delivery.packaging.AddStock"

    event_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StockAdded:
    """Items were put on the shelves of a hub."""

    SCHEMA: ClassVar[str] = "delivery.packaging.StockAdded"

    event_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StockAddRejected:
    """An AddStock command failed validation; stock is unchanged."""

    SCHEMA: ClassVar[str] = "delivery.packaging.StockAddRejected"

    event_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    sku: str
    quantity: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PackagePrepared:
    """Items were reserved from the shelf and packed for the order."""

    SCHEMA: ClassVar[str] = "delivery.packaging.PackagePrepared"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    package_id: str
    sku: str
    quantity: int
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PackagingFailed:
    """The order could not be packed; nothing was reserved."""

    SCHEMA: ClassVar[str] = "delivery.packaging.PackagingFailed"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    sku: str
    quantity: int
    available: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StockReleased:
    """Compensation: the reserved items of a failed saga went back on the shelf."""

    SCHEMA: ClassVar[str] = "delivery.packaging.StockReleased"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    package_id: str
    sku: str
    quantity: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StockShipped:
    """The reserved items of a delivered order left the stock for good."""

    SCHEMA: ClassVar[str] = "delivery.packaging.StockShipped"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    package_id: str
    sku: str
    quantity: int


# What travels on each topic: `packaging.commands` (COMMANDS) and `packaging` (EVENTS).
COMMANDS = (AddStock,)
EVENTS = (
    StockAdded,
    StockAddRejected,
    PackagePrepared,
    PackagingFailed,
    StockReleased,
    StockShipped,
)
