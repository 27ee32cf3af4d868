"""Events and commands of the drones service, one frozen dataclass per schemas/drones/*.avsc."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from consumers.envelope import HubRecord, SagaRecord
from consumers.orders.events import STANDARD


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterDrone(HubRecord):
    """Command: add a drone to the fleet of `hub`."""

    SCHEMA: ClassVar[str] = "delivery.drones.RegisterDrone"

    drone_id: str
    max_payload_grams: int = 0  # 0: no limit


@dataclass(frozen=True, slots=True, kw_only=True)
class DroneRegistered(HubRecord):
    """A drone joined the fleet of a hub, free."""

    SCHEMA: ClassVar[str] = "delivery.drones.DroneRegistered"

    drone_id: str
    max_payload_grams: int = 0  # 0: no limit, as every drone registered before payloads existed


@dataclass(frozen=True, slots=True, kw_only=True)
class DroneRegistrationRejected(HubRecord):
    """A RegisterDrone command failed validation; the fleet is unchanged."""

    SCHEMA: ClassVar[str] = "delivery.drones.DroneRegistrationRejected"

    drone_id: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DroneAssigned(SagaRecord):
    """A free drone (the lowest free id at the hub) was given the package."""

    SCHEMA: ClassVar[str] = "delivery.drones.DroneAssigned"

    drone_id: str
    package_id: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DroneUnavailable(SagaRecord):
    """No drone of the hub was free for the package."""

    SCHEMA: ClassVar[str] = "delivery.drones.DroneUnavailable"

    package_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageQueued(SagaRecord):
    """No drone was free: the package waits for the next one, in turn, until `wait_until`."""

    SCHEMA: ClassVar[str] = "delivery.drones.PackageQueued"

    package_id: str
    address: str
    wait_until: datetime
    priority: str = STANDARD  # the order's: the queue serves EXPRESS first
    weight_grams: int = 0  # only a drone that can carry it takes it from the queue; 0: any


@dataclass(frozen=True, slots=True, kw_only=True)
class DroneReleased(SagaRecord):
    """The drone came back and is free again."""

    SCHEMA: ClassVar[str] = "delivery.drones.DroneReleased"

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
    PackageQueued,
)
