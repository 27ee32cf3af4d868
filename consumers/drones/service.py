"""The drones service: the fleet of each hub, assigned to packages and released after flight."""

from __future__ import annotations

from typing import Any

from choreo.contract import Service, State, StateView
from choreo.keys import compose_key, key_parts, key_prefix
from consumers.delivery import events as delivery
from consumers.drones.events import (
    COMMANDS,
    EVENTS,
    DroneAssigned,
    DroneRegistered,
    DroneRegistrationRejected,
    DroneReleased,
    DroneUnavailable,
    RegisterDrone,
)
from consumers.ids import id_rejection
from consumers.limits import ID_MAX, clipped, field_too_long, shown
from consumers.packaging import events as packaging
from consumers.reference import hubs
from consumers.saga import caused_by, caused_by_without_order, saga_key

DRONES = "drones"  # drone_key -> {"order_id": the order it flies for, or None}
ASSIGNMENTS = "assignments"  # saga_key -> {"drone_id", "package_id", "status"}
# An index of the free drones, same keys as DRONES: finding a free drone reads one row, not the
# whole fleet.
FREE = "free_drones"


def drone_key(hub: str, drone_id: str) -> str:
    """Key of a drone in the drones table: one prefix per hub, so the fleet is a prefix scan.

    Escaped like every composite key (choreo/keys.py): a drone id may hold '/'.
    """
    return compose_key(hub, drone_id)


def decide(state: StateView, event: Any) -> list[Any]:
    """The drones' reaction to a fleet command or a saga event."""
    match event:
        case RegisterDrone():
            return [_register(state, event)]
        case packaging.PackagePrepared():
            if state.get(ASSIGNMENTS, saga_key(event.hub, event.order_id)) is not None:
                return []  # this package already has its answer
            return [_assign(state, event)]
        case delivery.DeliveryCompleted() | delivery.DeliveryFailed():
            assignment = state.get(ASSIGNMENTS, saga_key(event.hub, event.order_id))
            if assignment is None or assignment["status"] != "assigned":
                return []  # released already: a drone comes back once
            failure = event.reason if isinstance(event, delivery.DeliveryFailed) else None
            return [
                DroneReleased(
                    **caused_by(event, "DroneReleased"),
                    drone_id=assignment["drone_id"],
                    package_id=assignment["package_id"],
                    failure_reason=failure,
                )
            ]
    return []


def _register(state: StateView, command: RegisterDrone) -> DroneRegistered | DroneRegistrationRejected:
    problem = _registration_problem(state, command)
    if problem is None:
        return DroneRegistered(
            **caused_by_without_order(command, "DroneRegistered"), drone_id=command.drone_id
        )
    reason, detail = problem
    return DroneRegistrationRejected(
        **caused_by_without_order(command, "DroneRegistrationRejected"),
        drone_id=clipped(command.drone_id, ID_MAX),  # "as sent", but never an over-long one
        reason=reason,
        detail=detail,
    )


def _registration_problem(state: StateView, command: RegisterDrone) -> tuple[str, str] | None:
    too_long = field_too_long(command)
    if too_long is not None:
        return too_long  # first: no other reason's detail may quote an over-long value
    bad_id = id_rejection(command)
    if bad_id is not None:
        return bad_id
    if command.hub not in hubs():
        return "UNKNOWN_HUB", f"hub {shown(command.hub)} is not one of ours"
    if state.get(DRONES, drone_key(command.hub, command.drone_id)) is not None:
        drone, hub = shown(command.drone_id), shown(command.hub)
        return "DUPLICATE_DRONE", f"drone {drone} is already in {hub}'s fleet"
    return None


def _assign(state: StateView, package: packaging.PackagePrepared) -> DroneAssigned | DroneUnavailable:
    # Lowest free id in key order: deterministic, so a replayed decision picks the same drone.
    for key, _free in state.scan(FREE, prefix=key_prefix(package.hub)):
        _hub, drone_id = key_parts(key)
        return DroneAssigned(
            **caused_by(package, "DroneAssigned"),
            drone_id=drone_id,
            package_id=package.package_id,
            address=package.address,
        )
    return DroneUnavailable(
        **caused_by(package, "DroneUnavailable"), package_id=package.package_id, reason="NO_DRONE"
    )


def evolve(state: State, event: Any) -> None:
    """Apply one of the drones' own events to the fleet and its assignments."""
    match event:
        case DroneRegistered():
            state.put(DRONES, drone_key(event.hub, event.drone_id), {"order_id": None})
            state.put(FREE, drone_key(event.hub, event.drone_id), {})
        case DroneAssigned():
            state.put(DRONES, drone_key(event.hub, event.drone_id), {"order_id": event.order_id})
            state.delete(FREE, drone_key(event.hub, event.drone_id))
            state.put(
                ASSIGNMENTS,
                saga_key(event.hub, event.order_id),
                {"drone_id": event.drone_id, "package_id": event.package_id, "status": "assigned"},
            )
        case DroneUnavailable():
            state.put(
                ASSIGNMENTS,
                saga_key(event.hub, event.order_id),
                {"drone_id": None, "package_id": event.package_id, "status": "unavailable"},
            )
        case DroneReleased():
            state.put(DRONES, drone_key(event.hub, event.drone_id), {"order_id": None})
            state.put(FREE, drone_key(event.hub, event.drone_id), {})
            state.put(
                ASSIGNMENTS,
                saga_key(event.hub, event.order_id),
                {"drone_id": event.drone_id, "package_id": event.package_id, "status": "released"},
            )
        case DroneRegistrationRejected():
            pass  # changes nothing: it only answers the edge


SERVICE = Service(
    name="drones",
    inputs={
        "drones.commands": COMMANDS,
        # Whole topics, since a record of a type not listed here would be dead-lettered.
        "packaging": packaging.EVENTS,
        "delivery": delivery.EVENTS,
    },
    emits=EVENTS,
    decide=decide,
    evolve=evolve,
    description="Keeps the fleet per hub; assigns the lowest free drone to each package and "
    "releases it after the flight.",
)
