"""Events and commands of the drones service, one frozen dataclass per schemas/drones/*.avsc."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterDrone:
    """Command: add a drone to the fleet of `hub`."""

    SCHEMA: ClassVar[str] = "delivery.drones.RegisterDrone"

    event_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    drone_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DroneRegistered:
    """A drone joined the fleet of a hub, free."""

    SCHEMA: ClassVar[str] = "delivery.drones.DroneRegistered"

    event_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    drone_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DroneRegistrationRejected:
    """A RegisterDrone command failed validation; the fleet is unchanged."""

    SCHEMA: ClassVar[str] = "delivery.drones.DroneRegistrationRejected"

    event_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    drone_id: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DroneAssigned:
    """A free drone (the lowest free id at the hub) was given the package."""

    SCHEMA: ClassVar[str] = "delivery.drones.DroneAssigned"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    drone_id: str
    package_id: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DroneUnavailable:
    """No drone of the hub was free for the package."""

    SCHEMA: ClassVar[str] = "delivery.drones.DroneUnavailable"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    package_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DroneReleased:
    """The drone came back and is free again."""

    SCHEMA: ClassVar[str] = "delivery.drones.DroneReleased"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    drone_id: str
    package_id: str
    failure_reason: str | None


# What travels on each topic: `drones.commands` (COMMANDS) and `drones` (EVENTS).
COMMANDS = (RegisterDrone,)
EVENTS = (
    DroneRegistered,
    DroneRegistrationRejected,
    DroneAssigned,
    DroneUnavailable,
    DroneReleased,
)
