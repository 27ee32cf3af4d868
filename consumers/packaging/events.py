"""Events and commands of the packaging service, one frozen dataclass per schemas/packaging/*.avsc."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from consumers.envelope import HubRecord, SagaRecord
from consumers.orders.events import STANDARD


@dataclass(frozen=True, slots=True, kw_only=True)
class AddStock(HubRecord):
    """Command: put `quantity` items of `sku` on the shelves of `hub`."""

    SCHEMA: ClassVar[str] = "delivery.packaging.AddStock"

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StockAdded(HubRecord):
    """Items were put on the shelves of a hub."""

    SCHEMA: ClassVar[str] = "delivery.packaging.StockAdded"

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StockAddRejected(HubRecord):
    """An AddStock command failed validation; stock is unchanged."""

    SCHEMA: ClassVar[str] = "delivery.packaging.StockAddRejected"

    sku: str
    quantity: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PackagePrepared(SagaRecord):
    """Items were reserved from the shelf and packed for the order."""

    SCHEMA: ClassVar[str] = "delivery.packaging.PackagePrepared"

    package_id: str
    sku: str
    quantity: int
    address: str
    priority: str = STANDARD  # the order's
    weight_grams: int = 0  # 0: packed before packages were weighed


@dataclass(frozen=True, slots=True, kw_only=True)
class PackagingFailed(SagaRecord):
    """The order could not be packed; nothing was reserved."""

    SCHEMA: ClassVar[str] = "delivery.packaging.PackagingFailed"

    sku: str
    quantity: int
    available: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StockReleased(SagaRecord):
    """Compensation: the reserved items of a failed saga went back on the shelf."""

    SCHEMA: ClassVar[str] = "delivery.packaging.StockReleased"

    package_id: str
    sku: str
    quantity: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StockShipped(SagaRecord):
    """The reserved items of a delivered order left the stock for good."""

    SCHEMA: ClassVar[str] = "delivery.packaging.StockShipped"

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
