"""Events and commands of the delivery service, one frozen dataclass per schemas/delivery/*.avsc."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryCompleted:
    """The drone delivered the package to an address found in the hub's address book."""

    SCHEMA: ClassVar[str] = "delivery.delivery.DeliveryCompleted"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    drone_id: str
    package_id: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryFailed:
    """The package was not delivered; the drone brings it back."""

    SCHEMA: ClassVar[str] = "delivery.delivery.DeliveryFailed"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    drone_id: str
    package_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryCancelled:
    """A cancel reached delivery before the drone: the delivery will fail with CANCELLED."""

    SCHEMA: ClassVar[str] = "delivery.delivery.DeliveryCancelled"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None


# What travels on the `delivery` topic.
EVENTS = (DeliveryCompleted, DeliveryFailed, DeliveryCancelled)
