"""The drones service: the fleet of each hub, assigned to packages and released after flight.

A package that finds every drone of its hub flying waits in the hub's queue, first come first
served, for the next drone released or registered, and fails with NO_DRONE when its wait ends
(a timer: `CHOREO_DRONE_WAIT_S` after the order's time). A hub with no drone at all, or a wait of
0, fails it at once. A queued package whose order's deadline passed (`DeliveryExpired`) leaves
the queue with `DroneUnavailable(DEADLINE)`: no drone goes to a saga that has ended.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from choreo.contract import (
    Service,
    State,
    StateView,
    TimerFired,
    cancel_timer,
    derive_id,
    saga_ended,
    saga_started,
    set_timer,
)
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
    PackageQueued,
    RegisterDrone,
)
from consumers.ids import id_rejection
from consumers.limits import ID_MAX, clipped, field_too_long, shown
from consumers.packaging import events as packaging
from consumers.reference import drone_wait_s, hubs
from consumers.saga import caused_by, caused_by_timer, caused_by_without_order, saga_key

DRONES = "drones"  # drone_key -> {"order_id": the order it flies for, or None}
# saga_key -> {"drone_id", "package_id", "status"}; status "waiting" adds "queued": its QUEUE key.
ASSIGNMENTS = "assignments"
# An index of the free drones, same keys as DRONES: finding a free drone reads one row, not the
# whole fleet.
FREE = "free_drones"
# Packages waiting for a drone, per hub in arrival order: "<hub>/<seq, 12 digits>" -> {"order_id",
# "package_id", "address", "occurred_at" (ISO 8601)}; QUEUE_SEQ: hub -> {"next": the next seq,
# "waiting": how many wait}. The count is read before the queue: every flight's end asks whether
# anyone waits, and a document read is cached for the batch where a scan is a query each time.
QUEUE = "queue"
QUEUE_SEQ = "queue_seq"


def drone_key(hub: str, drone_id: str) -> str:
    """Key of a drone in the drones table: one prefix per hub, so the fleet is a prefix scan.

    Escaped like every composite key (choreo/keys.py): a drone id may hold '/'.
    """
    return compose_key(hub, drone_id)


def wait_timer(hub: str, order_id: str) -> str:
    """The name of a queued package's wait timer: one per saga."""
    return f"wait:{saga_key(hub, order_id)}"


def decide(state: StateView, event: Any) -> list[Any]:
    """The drones' reaction to a fleet command, a saga event, or a package's wait ending."""
    match event:
        case RegisterDrone():
            registered = _register(state, event)
            if isinstance(registered, DroneRegistered):
                return [registered, *_serve_queue(state, event.hub, event.drone_id, event)]
            return [registered]
        case packaging.PackagePrepared():
            if state.get(ASSIGNMENTS, saga_key(event.hub, event.order_id)) is not None:
                return []  # this package already has its answer
            return [_assign(state, event)]
        case delivery.DeliveryCompleted() | delivery.DeliveryFailed():
            assignment = state.get(ASSIGNMENTS, saga_key(event.hub, event.order_id))
            if assignment is None or assignment["status"] != "assigned":
                return []  # released already: a drone comes back once
            failure = event.reason if isinstance(event, delivery.DeliveryFailed) else None
            released = DroneReleased(
                **caused_by(event, "DroneReleased"),
                drone_id=assignment["drone_id"],
                package_id=assignment["package_id"],
                failure_reason=failure,
            )
            # The drone is back: the package first in its hub's queue takes it.
            return [released, *_serve_queue(state, event.hub, assignment["drone_id"], event)]
        case delivery.DeliveryExpired():
            return _leave_queue(state, event.hub, event.order_id, caused_by(event, "DroneUnavailable"),
                                event.reason)
        case delivery.DeliveryCancelled():
            # Delivery would refuse the drone anyway (ADR 0002): the package stops waiting now.
            return _leave_queue(state, event.hub, event.order_id, caused_by(event, "DroneUnavailable"),
                                "CANCELLED")
        case TimerFired():
            hub, order_id = event.data["hub"], event.data["order_id"]
            return _leave_queue(state, hub, order_id, caused_by_timer(event, "DroneUnavailable"),
                                "NO_DRONE")
    return []


def _leave_queue(
    state: StateView, hub: str, order_id: str, fields: dict[str, Any], reason: str
) -> list[Any]:
    """DroneUnavailable for a package still waiting (its wait ended, or its saga did), else nothing."""
    assignment = state.get(ASSIGNMENTS, saga_key(hub, order_id))
    if assignment is None or assignment["status"] != "waiting":
        return []  # served meanwhile, or never queued
    return [DroneUnavailable(**fields, package_id=assignment["package_id"], reason=reason)]


def _serve_queue(state: StateView, hub: str, drone_id: str, cause: Any) -> list[DroneAssigned]:
    """The free drone `drone_id` to the package first in `hub`'s queue, if one waits."""
    counter = state.get(QUEUE_SEQ, hub)
    if counter is None or not counter["waiting"]:
        return []
    for _key, waiting in state.scan(QUEUE, prefix=key_prefix(hub)):
        return [DroneAssigned(
            event_id=derive_id(cause.event_id, "DroneAssigned"),
            order_id=waiting["order_id"],
            hub=hub,
            occurred_at=datetime.fromisoformat(waiting["occurred_at"]),
            causation_id=cause.event_id,  # what freed the drone: another saga's end, or a new drone
            drone_id=drone_id,
            package_id=waiting["package_id"],
            address=waiting["address"],
        )]
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


def _assign(
    state: StateView, package: packaging.PackagePrepared
) -> DroneAssigned | DroneUnavailable | PackageQueued:
    # Lowest free id in key order: deterministic, so a replayed decision picks the same drone.
    for key, _free in state.scan(FREE, prefix=key_prefix(package.hub)):
        _hub, drone_id = key_parts(key)
        return DroneAssigned(
            **caused_by(package, "DroneAssigned"),
            drone_id=drone_id,
            package_id=package.package_id,
            address=package.address,
        )
    wait_s = drone_wait_s()
    has_fleet = next(iter(state.scan(DRONES, prefix=key_prefix(package.hub))), None) is not None
    if wait_s == 0 or not has_fleet:  # no drone will ever come back to a hub without any
        return DroneUnavailable(
            **caused_by(package, "DroneUnavailable"), package_id=package.package_id, reason="NO_DRONE"
        )
    return PackageQueued(
        **caused_by(package, "PackageQueued"),
        package_id=package.package_id,
        address=package.address,
        wait_until=package.occurred_at + timedelta(seconds=wait_s),
    )


def evolve(state: State, event: Any) -> None:
    """Apply one of the drones' own events to the fleet, its assignments and the queues."""
    match event:
        case DroneRegistered():
            state.put(DRONES, drone_key(event.hub, event.drone_id), {"order_id": None})
            state.put(FREE, drone_key(event.hub, event.drone_id), {})
        case DroneAssigned():
            _dequeue(state, event.hub, event.order_id)
            state.put(DRONES, drone_key(event.hub, event.drone_id), {"order_id": event.order_id})
            state.delete(FREE, drone_key(event.hub, event.drone_id))
            state.put(
                ASSIGNMENTS,
                saga_key(event.hub, event.order_id),
                {"drone_id": event.drone_id, "package_id": event.package_id, "status": "assigned"},
            )
            saga_started(state, saga_key(event.hub, event.order_id), event.occurred_at)
        case PackageQueued():
            _enqueue(state, event)
        case DroneUnavailable():
            _dequeue(state, event.hub, event.order_id)
            state.put(
                ASSIGNMENTS,
                saga_key(event.hub, event.order_id),
                {"drone_id": None, "package_id": event.package_id, "status": "unavailable"},
            )
            saga_ended(state, saga_key(event.hub, event.order_id))
        case DroneReleased():
            state.put(DRONES, drone_key(event.hub, event.drone_id), {"order_id": None})
            state.put(FREE, drone_key(event.hub, event.drone_id), {})
            state.put(
                ASSIGNMENTS,
                saga_key(event.hub, event.order_id),
                {"drone_id": event.drone_id, "package_id": event.package_id, "status": "released"},
            )
            saga_ended(state, saga_key(event.hub, event.order_id))
        case DroneRegistrationRejected():
            pass  # changes nothing: it only answers the edge


def _enqueue(state: State, queued: PackageQueued) -> None:
    counter = state.get(QUEUE_SEQ, queued.hub) or {"next": 0, "waiting": 0}
    key = compose_key(queued.hub, f"{counter['next']:012d}")
    state.put(QUEUE_SEQ, queued.hub, {"next": counter["next"] + 1, "waiting": counter["waiting"] + 1})
    state.put(QUEUE, key, {
        "order_id": queued.order_id, "package_id": queued.package_id, "address": queued.address,
        "occurred_at": queued.occurred_at.isoformat(),
    })
    state.put(ASSIGNMENTS, saga_key(queued.hub, queued.order_id),
              {"drone_id": None, "package_id": queued.package_id, "status": "waiting", "queued": key})
    set_timer(state, wait_timer(queued.hub, queued.order_id), queued.wait_until,
              {"order_id": queued.order_id, "hub": queued.hub})
    saga_started(state, saga_key(queued.hub, queued.order_id), queued.occurred_at)


def _dequeue(state: State, hub: str, order_id: str) -> None:
    """Take a saga's package out of its hub's queue, if it waits there (served, or gone)."""
    assignment = state.get(ASSIGNMENTS, saga_key(hub, order_id))
    if assignment is not None and assignment["status"] == "waiting":
        state.delete(QUEUE, assignment["queued"])
        cancel_timer(state, wait_timer(hub, order_id))
        counter = state.get(QUEUE_SEQ, hub) or {"next": 0, "waiting": 1}
        state.put(QUEUE_SEQ, hub, {**counter, "waiting": counter["waiting"] - 1})


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
    on_timer=(DroneUnavailable,),
    check_settings=drone_wait_s,  # CHOREO_DRONE_WAIT_S, refused at start if wrong
    description="Keeps the fleet per hub; assigns the lowest free drone to each package, queues "
    "it in turn when none is free (NO_DRONE when its wait ends), and releases the drone after "
    "the flight.",
)
