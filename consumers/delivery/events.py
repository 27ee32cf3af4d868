"""Events and commands of the delivery service, one frozen dataclass per schemas/delivery/*.avsc."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from consumers.envelope import SagaRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryCompleted(SagaRecord):
    """The drone delivered the package to an address found in the hub's address book."""

    SCHEMA: ClassVar[str] = "delivery.delivery.DeliveryCompleted"

    drone_id: str
    package_id: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryFailed(SagaRecord):
    """The package was not delivered; the drone brings it back."""

    SCHEMA: ClassVar[str] = "delivery.delivery.DeliveryFailed"

    drone_id: str
    package_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryCancelled(SagaRecord):
    """A cancel reached delivery before the drone: the delivery will fail with CANCELLED."""

    SCHEMA: ClassVar[str] = "delivery.delivery.DeliveryCancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryExpired(SagaRecord):
    """The order's deadline passed before delivery decided: it will never fly (ADR 0007)."""

    SCHEMA: ClassVar[str] = "delivery.delivery.DeliveryExpired"

    reason: str


# What travels on the `delivery` topic.
EVENTS = (DeliveryCompleted, DeliveryFailed, DeliveryCancelled, DeliveryExpired)
