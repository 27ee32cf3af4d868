"""The drones service: the fleet of each hub, assigned to packages and released after flight.

A package goes to the free drone of lowest id that can carry it (a drone's `max_payload_grams`,
0 for no limit, against the package's `weight_grams`). A package that finds no such drone free
waits in the hub's queue for the next drone released or registered that can carry it, EXPRESS
orders before STANDARD ones and first come first served within each, and fails with NO_DRONE
when its wait ends (a timer: `CHOREO_DRONE_WAIT_S` after the order's time). A hub with no drone
at all, or a wait of 0, fails it at once, and one whose drones are all too weak for it with
TOO_HEAVY. A queued package whose order's deadline passed (`DeliveryExpired`) leaves the queue
with `DroneUnavailable(DEADLINE)`: no drone goes to a saga that has ended.

Rows written before priorities and payloads existed have no `priority`, `weight` or
`max_payload`: they read as STANDARD, 0 and no limit, and new rows carry those keys only when
they say more, so a store that both versions wrote is the store either would rebuild.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

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
from consumers.orders.events import EXPRESS
from consumers.packaging import events as packaging
from consumers.reference import drone_wait_s, hubs
from consumers.saga import caused_by, caused_by_timer, caused_by_without_order, saga_key

# drone_key -> {"order_id": the order it flies for, or None; "max_payload": grams, when limited}
DRONES = "drones"
# saga_key -> {"drone_id", "package_id", "status"}; status "waiting" adds "queued": its QUEUE key.
ASSIGNMENTS = "assignments"
# An index of the free drones, same keys as DRONES ({"max_payload"} when limited): finding a free
# drone reads one row, not the whole fleet, unless the package is too heavy for the first ones.
FREE = "free_drones"
# Packages waiting for a drone, per hub in arrival order: "<hub>/<seq, 12 digits>" -> {"order_id",
# "package_id", "address", "occurred_at" (ISO 8601), and "priority": EXPRESS, "weight": grams when
# they say more than STANDARD and 0}; QUEUE_SEQ: hub -> {"next": the next seq, "waiting": how many
# wait, "express": how many of them are EXPRESS, when any}. The counts are read before the queue:
# every flight's end asks whether anyone waits, and a document read is cached for the batch where a
# scan is a query each time.
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
                return [registered, *_serve_queue(state, event.hub, event.drone_id,
                                                  event.max_payload_grams, event)]
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
            # The drone is back: the package first in its hub's queue that it can carry takes it.
            drone = state.get(DRONES, drone_key(event.hub, assignment["drone_id"])) or {}
            return [released, *_serve_queue(state, event.hub, assignment["drone_id"],
                                            drone.get("max_payload", 0), event)]
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


def _serve_queue(
    state: StateView, hub: str, drone_id: str, max_payload: int, cause: Any,
) -> list[DroneAssigned]:
    """The free drone `drone_id` to the first package in `hub`'s queue that it can carry, EXPRESS
    before STANDARD, if one waits."""
    counter = state.get(QUEUE_SEQ, hub)
    if counter is None or not counter["waiting"]:
        return []
    waiting = _first_waiting(state, hub, max_payload, express_only=bool(counter.get("express")))
    if waiting is None and counter.get("express"):
        waiting = _first_waiting(state, hub, max_payload, express_only=False)
    if waiting is None:
        return []
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


def _first_waiting(
    state: StateView, hub: str, max_payload: int, express_only: bool,
) -> dict[str, Any] | None:
    """The first package of `hub`'s queue (the first EXPRESS one) a drone of `max_payload` can
    carry. Without a limit and without EXPRESS packages waiting, that is the first row."""
    for _key, waiting in state.scan(QUEUE, prefix=key_prefix(hub)):
        if express_only and waiting.get("priority") != EXPRESS:
            continue
        if _carries(max_payload, waiting.get("weight", 0)):
            return waiting
    return None


def _carries(max_payload: int, weight: int) -> bool:
    return max_payload == 0 or weight <= max_payload


def _register(state: StateView, command: RegisterDrone) -> DroneRegistered | DroneRegistrationRejected:
    problem = _registration_problem(state, command)
    if problem is None:
        return DroneRegistered(
            **caused_by_without_order(command, "DroneRegistered"), drone_id=command.drone_id,
            max_payload_grams=command.max_payload_grams,
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
    if command.max_payload_grams < 0:
        return ("INVALID_PAYLOAD", f"max_payload_grams {command.max_payload_grams} must be 0 "
                "(no limit) or more")
    if state.get(DRONES, drone_key(command.hub, command.drone_id)) is not None:
        drone, hub = shown(command.drone_id), shown(command.hub)
        return "DUPLICATE_DRONE", f"drone {drone} is already in {hub}'s fleet"
    return None


def _assign(
    state: StateView, package: packaging.PackagePrepared
) -> DroneAssigned | DroneUnavailable | PackageQueued:
    # Lowest free id in key order that can carry it: deterministic, so a replayed decision
    # picks the same drone.
    for key, free in state.scan(FREE, prefix=key_prefix(package.hub)):
        if _carries(free.get("max_payload", 0), package.weight_grams):
            _hub, drone_id = key_parts(key)
            return DroneAssigned(
                **caused_by(package, "DroneAssigned"),
                drone_id=drone_id,
                package_id=package.package_id,
                address=package.address,
            )
    fleet = _fleet_for(state, package)
    if fleet == "too weak":  # waiting would not help: no drone of the hub can lift it
        return DroneUnavailable(
            **caused_by(package, "DroneUnavailable"), package_id=package.package_id, reason="TOO_HEAVY"
        )
    wait_s = drone_wait_s()
    if wait_s == 0 or fleet == "none":  # no drone will ever come back to a hub without any
        return DroneUnavailable(
            **caused_by(package, "DroneUnavailable"), package_id=package.package_id, reason="NO_DRONE"
        )
    return PackageQueued(
        **caused_by(package, "PackageQueued"),
        package_id=package.package_id,
        address=package.address,
        wait_until=package.occurred_at + timedelta(seconds=wait_s),
        priority=package.priority,
        weight_grams=package.weight_grams,
    )


def _fleet_for(
    state: StateView, package: packaging.PackagePrepared,
) -> Literal["none", "too weak", "able"]:
    """"none" (the hub has no drone), "too weak" (none can lift the package) or "able" (one can:
    the first row, without payload limits), read lazily: one row in the common case."""
    found: Literal["none", "too weak"] = "none"
    for _key, drone in state.scan(DRONES, prefix=key_prefix(package.hub)):
        if _carries(drone.get("max_payload", 0), package.weight_grams):
            return "able"
        found = "too weak"
    return found


def evolve(state: State, event: Any) -> None:
    """Apply one of the drones' own events to the fleet, its assignments and the queues."""
    match event:
        case DroneRegistered():
            limit = {"max_payload": event.max_payload_grams} if event.max_payload_grams else {}
            state.put(DRONES, drone_key(event.hub, event.drone_id), {"order_id": None, **limit})
            state.put(FREE, drone_key(event.hub, event.drone_id), limit)
        case DroneAssigned():
            _dequeue(state, event.hub, event.order_id)
            _fly(state, event.hub, event.drone_id, event.order_id)
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
            _fly(state, event.hub, event.drone_id, None)
            state.put(
                ASSIGNMENTS,
                saga_key(event.hub, event.order_id),
                {"drone_id": event.drone_id, "package_id": event.package_id, "status": "released"},
            )
            saga_ended(state, saga_key(event.hub, event.order_id))
        case DroneRegistrationRejected():
            pass  # changes nothing: it only answers the edge


def _fly(state: State, hub: str, drone_id: str, order_id: str | None) -> None:
    """The drone flies for `order_id`, or is free again (None); its payload limit stays."""
    key = drone_key(hub, drone_id)
    drone = {**(state.get(DRONES, key) or {}), "order_id": order_id}
    state.put(DRONES, key, drone)
    if order_id is None:
        state.put(FREE, key, {"max_payload": drone["max_payload"]} if drone.get("max_payload") else {})
    else:
        state.delete(FREE, key)


def _enqueue(state: State, queued: PackageQueued) -> None:
    counter = state.get(QUEUE_SEQ, queued.hub) or {"next": 0, "waiting": 0}
    key = compose_key(queued.hub, f"{counter['next']:012d}")
    express = queued.priority == EXPRESS
    state.put(QUEUE_SEQ, queued.hub, _counted(
        {**counter, "next": counter["next"] + 1, "waiting": counter["waiting"] + 1}, express, +1))
    state.put(QUEUE, key, {
        "order_id": queued.order_id, "package_id": queued.package_id, "address": queued.address,
        "occurred_at": queued.occurred_at.isoformat(),
        **({"priority": EXPRESS} if express else {}),
        **({"weight": queued.weight_grams} if queued.weight_grams else {}),
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
        waiting = state.get(QUEUE, assignment["queued"]) or {}
        state.delete(QUEUE, assignment["queued"])
        cancel_timer(state, wait_timer(hub, order_id))
        counter = state.get(QUEUE_SEQ, hub) or {"next": 0, "waiting": 1}
        express = waiting.get("priority") == EXPRESS
        state.put(QUEUE_SEQ, hub, _counted({**counter, "waiting": counter["waiting"] - 1}, express, -1))


def _counted(counter: dict[str, Any], express: bool, delta: int) -> dict[str, Any]:
    """`counter` with its count of EXPRESS packages moved by `delta` when `express`; the key is
    there only while some wait (rows of stores written before priorities have none), and goes
    with the last waiting package whatever it says, so a count that code without priorities
    left behind cannot outlive the queue."""
    left = counter.get("express", 0) + (delta if express else 0)
    counter = {k: v for k, v in counter.items() if k != "express"}
    return {**counter, "express": left} if left > 0 and counter["waiting"] > 0 else counter


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
