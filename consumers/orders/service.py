"""The orders service: accepts orders, and follows every saga to exactly one end."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from choreo.contract import (
    Service,
    State,
    StateView,
    TimerFired,
    cancel_timer,
    saga_ended,
    saga_started,
    set_timer,
)
from consumers.delivery import events as delivery
from consumers.drones import events as drones
from consumers.ids import id_rejection
from consumers.limits import field_too_long, shown
from consumers.orders.events import (
    COMMANDS,
    EVENTS,
    CancelOrder,
    OrderCancellationRejected,
    OrderCancellationRequested,
    OrderCompensated,
    OrderCompleted,
    OrderDeadlinePassed,
    OrderFailed,
    OrderPlaced,
    OrderRejected,
    PlaceOrder,
)
from consumers.orders.validation import rejection
from consumers.packaging import events as packaging
from consumers.reference import default_deadline_s
from consumers.saga import caused_by, caused_by_timer, saga_key

ORDERS = "orders"  # saga_key -> {"status", "reason", "cancel_requested"}
# A saga's status: placed -> completed, or placed -> failed -> compensated; "rejected" is kept so
# that a PlaceOrder repeating a rejected id is a duplicate too (also one rejected for an over-long
# hub or order id: saga_key clips them as the rejection does, so the replay finds the row).
ENDED = frozenset({"completed", "failed", "compensated"})


def deadline_timer(hub: str, order_id: str) -> str:
    """The name of a saga's deadline timer: one per saga, named by its state key."""
    return f"deadline:{saga_key(hub, order_id)}"


def decide(state: StateView, event: Any) -> list[Any]:
    """The orders' reaction to a command, another service's saga event, or a deadline."""
    if isinstance(event, TimerFired):
        return _deadline_passed(state, event)
    order = state.get(ORDERS, saga_key(event.hub, event.order_id)) if hasattr(event, "order_id") else None
    match event:
        case PlaceOrder():
            return [] if order is not None else [_place(event)]
        case CancelOrder():
            return _cancel(order, event)
        case packaging.PackagingFailed():
            # Nothing was reserved, so the saga is compensated as soon as it fails.
            return _fail(order, event, event.reason, compensated=True)
        case drones.DroneUnavailable():
            return _fail(order, event, event.reason, compensated=False)
        case delivery.DeliveryFailed() | delivery.DeliveryExpired():
            return _fail(order, event, event.reason, compensated=False)
        case packaging.StockReleased():
            # The last compensation step of every saga that took stock (the drone, if any,
            # came back first: ADR 0003), so it both proves the failure and ends compensation.
            return _fail(order, event, event.reason, compensated=True)
        case delivery.DeliveryCompleted():
            if order is None or order["status"] != "placed":
                return []
            return [
                OrderCompleted(
                    **caused_by(event, "OrderCompleted"),
                    package_id=event.package_id,
                    drone_id=event.drone_id,
                    delivered_to=event.address,
                )
            ]
    return []


def _place(command: PlaceOrder) -> OrderPlaced | OrderRejected:
    problem = rejection(command)
    if problem is not None:
        reason, detail = problem
        return OrderRejected(**caused_by(command, "OrderRejected"), reason=reason, detail=detail)
    deadline = command.deadline or command.occurred_at + timedelta(seconds=default_deadline_s())
    return OrderPlaced(
        **caused_by(command, "OrderPlaced"),
        sku=command.sku,
        quantity=command.quantity,
        address=command.address,
        deadline=deadline,
        priority=command.priority,
    )


def _deadline_passed(state: StateView, fired: TimerFired) -> list[Any]:
    """The saga is still running at its deadline: say so, and delivery decides (ADR 0007)."""
    order_id, hub = fired.data["order_id"], fired.data["hub"]
    order = state.get(ORDERS, saga_key(hub, order_id))
    if order is None or order["status"] != "placed":
        return []  # ended meanwhile (its end cancels the timer; this is belt and braces)
    return [OrderDeadlinePassed(**caused_by_timer(fired, "OrderDeadlinePassed"), deadline=fired.due)]


def _cancel(order: dict[str, Any] | None, command: CancelOrder) -> list[Any]:
    def rejected(reason: str, detail: str) -> list[Any]:
        fields = caused_by(command, "OrderCancellationRejected")
        return [OrderCancellationRejected(**fields, reason=reason, detail=detail)]

    too_long = field_too_long(command)
    if too_long is not None:
        # First, since an over-long order id may clip to the key of an order that does exist.
        return rejected(*too_long)
    bad_id = id_rejection(command)
    if bad_id is not None:
        # Before the look-up: an id no order can have names no order (a stand-in names a rejection).
        return rejected(*bad_id)
    order_id = shown(command.order_id)
    if order is None:
        return rejected("UNKNOWN_ORDER", f"no order {order_id} at {shown(command.hub)}")
    if order["status"] == "rejected":
        return rejected("ALREADY_ENDED", f"order {order_id} was rejected when placed")
    if order["status"] in ENDED:
        return rejected("ALREADY_ENDED", f"order {order_id} is already {order['status']}")
    if order["cancel_requested"]:
        return []  # a repeated cancel: the first one is already on its way
    return [OrderCancellationRequested(**caused_by(command, "OrderCancellationRequested"))]


def _fail(order: dict[str, Any] | None, cause: Any, reason: str, compensated: bool) -> list[Any]:
    """OrderFailed on the first evidence of failure, OrderCompensated once everything is back."""
    if order is None:
        return []
    out: list[Any] = []
    if order["status"] == "placed":
        out.append(OrderFailed(**caused_by(cause, "OrderFailed"), reason=reason))
    elif order["status"] == "failed":
        # The saga failed for the reason first seen; a release caused by a second failure racing
        # it (the deadline against NO_DRONE, say: ADR 0007) compensates that first one.
        reason = order["reason"]
    else:
        return []  # completed or already compensated: nothing more to say
    if compensated:
        out.append(OrderCompensated(**caused_by(cause, "OrderCompensated"), reason=reason))
    return out


def evolve(state: State, event: Any) -> None:
    """Apply one of the orders' own events to its table of sagas."""
    key = saga_key(event.hub, event.order_id)
    match event:
        case OrderPlaced():
            state.put(ORDERS, key, {"status": "placed", "reason": None, "cancel_requested": False})
            saga_started(state, key, event.occurred_at)  # orders holds every saga to its end
            if event.deadline is not None:
                _set_deadline(state, event, event.deadline)
        case OrderRejected():
            state.put(ORDERS, key, {"status": "rejected", "reason": event.reason, "cancel_requested": False})
        case OrderCancellationRequested():
            _update(state, key, cancel_requested=True)
        case OrderCompleted():
            _update(state, key, status="completed")
            saga_ended(state, key)
            cancel_timer(state, deadline_timer(event.hub, event.order_id))
        case OrderFailed():
            _update(state, key, status="failed", reason=event.reason)
            # Failed is decided: what is left (compensation) is already on its way.
            cancel_timer(state, deadline_timer(event.hub, event.order_id))
        case OrderCompensated():
            _update(state, key, status="compensated")
            saga_ended(state, key)
        case OrderCancellationRejected() | OrderDeadlinePassed():
            pass  # changes nothing: the first answers the edge, delivery decides on the second


def _set_deadline(state: State, placed: OrderPlaced, deadline: datetime) -> None:
    data = {"order_id": placed.order_id, "hub": placed.hub}
    set_timer(state, deadline_timer(placed.hub, placed.order_id), deadline, data)


def _update(state: State, key: str, **changes: Any) -> None:
    current = state.get(ORDERS, key)
    if current is not None:
        state.put(ORDERS, key, {**current, **changes})


SERVICE = Service(
    name="orders",
    inputs={
        "orders.commands": COMMANDS,
        # Whole topics, since a record of a type not listed here would be dead-lettered.
        "packaging": packaging.EVENTS,
        "drones": drones.EVENTS,
        "delivery": delivery.EVENTS,
    },
    emits=EVENTS,
    decide=decide,
    evolve=evolve,
    on_timer=(OrderDeadlinePassed,),
    check_settings=default_deadline_s,  # CHOREO_ORDER_DEADLINE_S, refused at start if wrong
    description="Validates orders and follows each saga to OrderCompleted or OrderFailed + "
    "OrderCompensated; says when a saga passes its deadline.",
)
