"""The saga's deadline, one decision at a time: orders' timer, delivery decides, packaging gives
the stock back, orders ends. Broker-free, and time is a value: no test waits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from choreo.contract import Service, derive_id
from choreo.exceptions import ConfigurationError
from choreo.testing import MemoryState, fire_due, handle
from choreo.timers import DueTimer, TimerFired, due_timers, next_due_ms, pending_timer, to_ms
from consumers.audit import audit
from consumers.delivery.events import DeliveryCancelled, DeliveryCompleted, DeliveryExpired, DeliveryFailed
from consumers.delivery.service import SERVICE as DELIVERY
from consumers.domain import DOMAIN
from consumers.drones.events import DroneAssigned, DroneReleased, DroneUnavailable
from consumers.drones.service import DRONES as FLEET
from consumers.drones.service import SERVICE as DRONES
from consumers.orders.events import (
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
from consumers.orders.service import ORDERS as SAGAS
from consumers.orders.service import SERVICE as ORDERS
from consumers.orders.service import deadline_timer
from consumers.packaging.events import PackagePrepared, PackagingFailed, StockReleased, StockShipped
from consumers.packaging.service import SERVICE as PACKAGING
from consumers.packaging.service import STOCK, package_id_for
from consumers.reference import DEADLINE_ENV, DEFAULT_DEADLINE_S, MAX_DEADLINE_S, default_deadline_s
from producers.commands import add_stock, cancel_order, place_order, register_drone
from tests.support.records import T0, record

ADDRESS = "1 Harbour Street, Northport"
DEADLINE = T0 + timedelta(minutes=10)
LATE = DEADLINE + timedelta(minutes=1)  # the clock when the timer fires
TIMER = deadline_timer("hub-north", "order-1")
SAGA = {"order_id": "order-1", "hub": "hub-north"}  # what the timer holds, to act on
PACKAGE = package_id_for("order-1")


@pytest.fixture(autouse=True)
def fresh_default() -> Iterator[None]:
    """default_deadline_s reads its variable once per process: each test reads it afresh."""
    default_deadline_s.cache_clear()
    yield
    default_deadline_s.cache_clear()


def place(deadline: datetime | None = DEADLINE) -> PlaceOrder:
    command = place_order("hub-north", "SKU-0001", 2, ADDRESS, T0, order_id="order-1")
    return replace(command, deadline=deadline)


def placed(state: MemoryState, deadline: datetime | None = DEADLINE) -> OrderPlaced:
    (event,) = handle(ORDERS, state, place(deadline))
    assert isinstance(event, OrderPlaced)
    return event


def status(state: MemoryState) -> str:
    row = state.get(SAGAS, "hub-north/order-1")
    assert row is not None
    return str(row["status"])


def passed() -> OrderDeadlinePassed:
    return record(OrderDeadlinePassed, deadline=DEADLINE, occurred_at=LATE)


def assigned(address: str = ADDRESS) -> DroneAssigned:
    return record(DroneAssigned, drone_id="drone-01", package_id=PACKAGE, address=address)


def expired() -> DeliveryExpired:
    return record(DeliveryExpired, reason="DEADLINE", occurred_at=LATE)


def refused() -> DeliveryFailed:
    return record(DeliveryFailed, drone_id="drone-01", package_id=PACKAGE, reason="DEADLINE")


def delivered() -> DeliveryCompleted:
    return record(DeliveryCompleted, drone_id="drone-01", package_id=PACKAGE, address=ADDRESS)


def stock_back(reason: str = "DEADLINE") -> StockReleased:
    return record(StockReleased, package_id=PACKAGE, sku="SKU-0001", quantity=2, reason=reason)


def released_drone() -> DroneReleased:
    return record(DroneReleased, drone_id="drone-01", package_id=PACKAGE, failure_reason="DEADLINE")


# -- orders: the timer ---------------------------------------------------------------------------


def test_an_order_placed_sets_its_deadline_timer() -> None:
    state = MemoryState()
    assert placed(state).deadline == DEADLINE
    assert pending_timer(state, TIMER) == DEADLINE
    (timer,) = due_timers(state, to_ms(LATE), limit=10)
    assert (timer.name, timer.data) == (TIMER, SAGA)
    assert fire_due(ORDERS, state, DEADLINE - timedelta(milliseconds=1)) == []  # not yet
    assert pending_timer(state, TIMER) == DEADLINE


@pytest.mark.parametrize(("env", "seconds"), [(None, DEFAULT_DEADLINE_S), ("120", 120), (" 60 ", 60)])
def test_an_order_without_a_deadline_gets_the_default(
    monkeypatch: pytest.MonkeyPatch, env: str | None, seconds: int
) -> None:
    if env is None:
        monkeypatch.delenv(DEADLINE_ENV, raising=False)
    else:
        monkeypatch.setenv(DEADLINE_ENV, env)
    state = MemoryState()
    event = placed(state, deadline=None)
    assert event.deadline == T0 + timedelta(seconds=seconds)
    assert pending_timer(state, TIMER) == event.deadline


@pytest.mark.parametrize("env", ["0", "abc", "-5", str(MAX_DEADLINE_S + 1)])
def test_a_default_deadline_out_of_range_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.setenv(DEADLINE_ENV, env)
    with pytest.raises(ConfigurationError, match=DEADLINE_ENV):
        default_deadline_s()


def test_an_orders_worker_refuses_a_bad_default_deadline_at_start_not_at_the_first_order(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Checked before any Kafka client is made: the worker exits 1 with the one sentence, where
    a check inside decide would have dead-lettered every order that names no deadline."""
    from choreo.runtime.worker import Worker, run_worker_safely
    from choreo.settings import Settings

    monkeypatch.setenv(DEADLINE_ENV, "soon")
    worker = Worker(ORDERS, Settings(bootstrap_servers="127.0.0.1:1"), None, DOMAIN.envelope)  # type: ignore[arg-type]
    assert run_worker_safely(worker) == 1
    assert f"{DEADLINE_ENV}='soon' is not a number of seconds" in caplog.text


@pytest.mark.parametrize(
    "after",
    [timedelta(0), timedelta(seconds=-1), timedelta(seconds=MAX_DEADLINE_S, milliseconds=1)],
    ids=["at-the-order", "before-it", "too-far"],
)
def test_a_deadline_not_after_the_order_or_too_far_is_rejected(after: timedelta) -> None:
    state = MemoryState()
    (event,) = handle(ORDERS, state, place(T0 + after))
    assert isinstance(event, OrderRejected) and event.reason == "INVALID_DEADLINE"
    assert f"not within {MAX_DEADLINE_S} s after" in event.detail
    assert next_due_ms(state) is None


@pytest.mark.parametrize("after", [timedelta(milliseconds=1), timedelta(seconds=MAX_DEADLINE_S)])
def test_a_deadline_just_after_the_order_or_at_the_limit_is_accepted(after: timedelta) -> None:
    state = MemoryState()
    assert placed(state, T0 + after).deadline == T0 + after
    assert pending_timer(state, TIMER) == T0 + after


def test_an_order_placed_without_a_deadline_sets_no_timer() -> None:
    """An OrderPlaced written before deadlines existed: no timer on restore or rebuild."""
    state = MemoryState()
    ORDERS.evolve(state, record(OrderPlaced, sku="SKU-0001", quantity=2, address=ADDRESS))
    assert status(state) == "placed" and next_due_ms(state) is None
    assert fire_due(ORDERS, state, T0 + timedelta(days=365)) == []


@pytest.mark.parametrize(
    ("cause", "ends"),
    [
        (record(DeliveryCompleted, drone_id="d", package_id="p", address=ADDRESS), [OrderCompleted]),
        (record(DeliveryFailed, drone_id="d", package_id="p", reason="ADDRESS_NOT_FOUND"), [OrderFailed]),
        (record(DroneUnavailable, package_id="p", reason="NO_DRONE"), [OrderFailed]),
        (
            record(PackagingFailed, sku="SKU-0001", quantity=2, available=0, reason="OUT_OF_STOCK"),
            [OrderFailed, OrderCompensated],
        ),
    ],
    ids=["completed", "delivery-failed", "no-drone", "out-of-stock"],
)
def test_the_end_of_the_saga_cancels_its_timer(cause: Any, ends: list[type]) -> None:
    state = MemoryState()
    placed(state)
    assert [type(e) for e in handle(ORDERS, state, cause)] == ends
    assert pending_timer(state, TIMER) is None and next_due_ms(state) is None
    assert fire_due(ORDERS, state, LATE) == []


def test_the_deadline_of_a_placed_order_is_said_once() -> None:
    state = MemoryState()
    placed(state)
    (event,) = fire_due(ORDERS, state, LATE)
    assert isinstance(event, OrderDeadlinePassed)
    timer_record = derive_id(f"{TIMER}@{to_ms(DEADLINE)}", "TimerFired")
    assert (event.order_id, event.hub, event.deadline) == ("order-1", "hub-north", DEADLINE)
    assert event.occurred_at == LATE  # the firing's time, the only clock decide sees
    assert event.causation_id == timer_record
    assert event.event_id == derive_id(timer_record, "OrderDeadlinePassed")
    assert status(state) == "placed"  # delivery decides what the deadline does
    assert next_due_ms(state) is None
    assert fire_due(ORDERS, state, LATE + timedelta(days=1)) == []


def test_the_same_firing_gives_the_same_ids() -> None:
    """A firing retried after a crash (later, on a state restored from the same log)."""
    command = place()
    first, retried = MemoryState(), MemoryState()
    for state in (first, retried):
        handle(ORDERS, state, command)
    assert first.dump() == retried.dump()
    (a,) = fire_due(ORDERS, first, LATE)
    (b,) = fire_due(ORDERS, retried, LATE + timedelta(minutes=5))
    assert (a.event_id, a.causation_id) == (b.event_id, b.causation_id)
    assert a == replace(b, occurred_at=LATE)
    assert first.dump() == retried.dump()


@pytest.mark.parametrize(
    "causes",
    [
        [],
        [record(DeliveryCompleted, drone_id="d", package_id="p", address=ADDRESS)],
        [record(DeliveryFailed, drone_id="d", package_id="p", reason="CANCELLED")],
        [
            record(DeliveryFailed, drone_id="d", package_id="p", reason="CANCELLED"),
            record(StockReleased, package_id="p", sku="SKU-0001", quantity=2, reason="CANCELLED"),
        ],
    ],
    ids=["unknown", "completed", "failed", "compensated"],
)
def test_a_firing_for_an_order_no_longer_placed_says_nothing(causes: list[Any]) -> None:
    """Belt and braces: an end cancels the timer, but a firing that meets one says nothing."""
    state = MemoryState()
    if causes:
        placed(state)
    for cause in causes:
        handle(ORDERS, state, cause)
    fired = DueTimer(TIMER, to_ms(DEADLINE), SAGA).fired(to_ms(LATE))
    assert isinstance(fired, TimerFired)
    assert ORDERS.decide(state, fired) == []


# -- delivery: the point of no return decides ----------------------------------------------------


def test_an_undecided_delivery_expires_once() -> None:
    state = MemoryState()
    cause = passed()
    (event,) = handle(DELIVERY, state, cause)
    assert isinstance(event, DeliveryExpired) and event.reason == "DEADLINE"
    assert (event.causation_id, event.occurred_at) == (cause.event_id, LATE)
    assert handle(DELIVERY, state, cause) == [] and handle(DELIVERY, state, passed()) == []


@pytest.mark.parametrize("address", [ADDRESS, "404 Nowhere Lane"], ids=["delivered", "not-found"])
def test_the_deadline_after_delivery_decided_changes_nothing(address: str) -> None:
    state = MemoryState()
    (decided,) = handle(DELIVERY, state, assigned(address))
    assert isinstance(decided, DeliveryCompleted | DeliveryFailed)
    before = state.dump()
    assert handle(DELIVERY, state, passed()) == []
    assert state.dump() == before


def test_the_deadline_overrides_a_cancel_waiting_for_the_drone() -> None:
    state = MemoryState()
    (noted,) = handle(DELIVERY, state, record(OrderCancellationRequested))
    assert isinstance(noted, DeliveryCancelled)
    (event,) = handle(DELIVERY, state, passed())
    assert isinstance(event, DeliveryExpired) and event.reason == "DEADLINE"
    (sent_back,) = handle(DELIVERY, state, assigned())
    assert isinstance(sent_back, DeliveryFailed) and sent_back.reason == "DEADLINE"
    assert handle(DELIVERY, state, assigned()) == []


def test_a_drone_assigned_after_expiry_is_sent_back_with_deadline() -> None:
    state = MemoryState()
    handle(DELIVERY, state, passed())
    drone = assigned()
    (event,) = handle(DELIVERY, state, drone)
    assert isinstance(event, DeliveryFailed) and event.reason == "DEADLINE"
    assert (event.drone_id, event.package_id, event.causation_id) == (
        "drone-01",
        drone.package_id,
        drone.event_id,
    )
    assert handle(DELIVERY, state, record(OrderCancellationRequested)) == []
    assert handle(DELIVERY, state, passed()) == [] and handle(DELIVERY, state, drone) == []


# -- packaging: the stock goes back --------------------------------------------------------------


def packed() -> MemoryState:
    state = MemoryState()
    handle(PACKAGING, state, add_stock("hub-north", "SKU-0001", 5, T0))
    (package,) = handle(PACKAGING, state, record(OrderPlaced, sku="SKU-0001", quantity=2, address=ADDRESS))
    assert isinstance(package, PackagePrepared)
    return state


def test_expiry_releases_the_reserved_stock_once() -> None:
    state = packed()
    cause = expired()
    (event,) = handle(PACKAGING, state, cause)
    assert isinstance(event, StockReleased) and event.reason == "DEADLINE"
    assert (event.package_id, event.sku, event.quantity) == (PACKAGE, "SKU-0001", 2)
    assert event.causation_id == cause.event_id
    assert state.get(STOCK, "hub-north/SKU-0001") == {"on_hand": 5, "reserved": 0, "shipped": 0}
    before = state.dump()
    assert handle(PACKAGING, state, expired()) == []
    # The late drone comes back afterwards (delivery refused it): the stock is back already.
    assert handle(PACKAGING, state, released_drone()) == []
    assert handle(PACKAGING, state, refused()) == []
    assert state.dump() == before


def test_expiry_without_a_reservation_changes_nothing() -> None:
    never_packed = MemoryState()
    handle(PACKAGING, never_packed, add_stock("hub-north", "SKU-0001", 5, T0))
    out_of_stock = MemoryState()
    order = record(OrderPlaced, sku="SKU-0001", quantity=2, address=ADDRESS)
    (failed,) = handle(PACKAGING, out_of_stock, order)
    assert isinstance(failed, PackagingFailed)
    shipped = packed()
    (ship,) = handle(PACKAGING, shipped, delivered())
    assert isinstance(ship, StockShipped)
    for state in (never_packed, out_of_stock, shipped):
        before = state.dump()
        assert handle(PACKAGING, state, expired()) == []
        assert state.dump() == before


def test_a_package_packed_after_expiry_goes_back_the_ordinary_way() -> None:
    state = MemoryState()
    handle(PACKAGING, state, add_stock("hub-north", "SKU-0001", 5, T0))
    assert handle(PACKAGING, state, expired()) == []
    (package,) = handle(PACKAGING, state, record(OrderPlaced, sku="SKU-0001", quantity=2, address=ADDRESS))
    assert isinstance(package, PackagePrepared)  # packing does not know of the deadline
    (event,) = handle(PACKAGING, state, released_drone())  # refused by delivery, flown back
    assert isinstance(event, StockReleased) and event.reason == "DEADLINE"
    assert handle(PACKAGING, state, released_drone()) == []


# -- orders: the saga ends once ------------------------------------------------------------------


def test_orders_fails_on_expiry_and_is_compensated_when_the_stock_is_back() -> None:
    state = MemoryState()
    placed(state)
    (failed,) = handle(ORDERS, state, expired())
    assert isinstance(failed, OrderFailed) and failed.reason == "DEADLINE"
    assert next_due_ms(state) is None
    assert handle(ORDERS, state, refused()) == []
    (compensated,) = handle(ORDERS, state, stock_back())
    assert isinstance(compensated, OrderCompensated) and compensated.reason == "DEADLINE"
    for late in (stock_back(), expired(), released_drone(), assigned()):
        assert handle(ORDERS, state, late) == []
    assert status(state) == "compensated"


@pytest.mark.parametrize(
    ("first", "then", "reason"),
    [
        (
            expired(),
            record(PackagingFailed, sku="SKU-0001", quantity=2, available=0, reason="OUT_OF_STOCK"),
            "DEADLINE",
        ),
        (expired(), stock_back("NO_DRONE"), "DEADLINE"),
        (record(DroneUnavailable, package_id=PACKAGE, reason="NO_DRONE"), stock_back("DEADLINE"), "NO_DRONE"),
    ],
    ids=["expired-then-out-of-stock", "expired-then-no-drone-stock", "no-drone-then-expired-stock"],
)
def test_a_saga_failed_one_way_and_given_back_another_is_compensated_with_its_failure(
    first: Any, then: Any, reason: str
) -> None:
    """The deadline lets two failures race: orders hears of one first (its OrderFailed), while
    packaging gives the stock back on the other. OrderCompensated carries "the failure reason of
    the saga, as in OrderFailed" (schemas/orders/OrderCompensated.avsc), not the late one's."""
    state = MemoryState()
    placed(state)
    (failed,) = handle(ORDERS, state, first)
    assert isinstance(failed, OrderFailed) and failed.reason == reason
    (compensated,) = handle(ORDERS, state, then)
    assert isinstance(compensated, OrderCompensated) and status(state) == "compensated"
    assert compensated.reason == failed.reason


def test_stock_released_before_the_expiry_reaches_orders_ends_the_saga_with_deadline() -> None:
    state = MemoryState()
    placed(state)
    failed, compensated = handle(ORDERS, state, stock_back())
    assert isinstance(failed, OrderFailed) and failed.reason == "DEADLINE"
    assert isinstance(compensated, OrderCompensated)
    assert handle(ORDERS, state, expired()) == []
    assert next_due_ms(state) is None


# -- the four together: a late drone after the saga ended ----------------------------------------


class Saga:
    """The four services' states and everything they wrote, driven by hand (no interleaving)."""

    def __init__(self) -> None:
        self.services: dict[str, Service] = {s.name: s for s in (ORDERS, PACKAGING, DRONES, DELIVERY)}
        self.states = {name: MemoryState() for name in self.services}
        self.log: list[Any] = []
        self.deliver("packaging", add_stock("hub-north", "SKU-0001", 5, T0))
        self.deliver("drones", register_drone("hub-north", "drone-01", T0))

    def deliver(self, name: str, event: Any) -> list[Any]:
        out = handle(self.services[name], self.states[name], event)
        self.log += out
        return out

    def fire(self, now: datetime) -> list[Any]:
        out = fire_due(ORDERS, self.states["orders"], now)
        self.log += out
        return out

    def ends(self) -> list[Any]:
        return [e for e in self.log if isinstance(e, OrderCompleted | OrderFailed | OrderCompensated)]

    def assert_settled(self) -> None:
        report = audit(self.log)
        assert report.ok, [(i.name, i.violations) for i in report.invariants if not i.ok]
        assert self.states["drones"].get(FLEET, "hub-north/drone-01") == {"order_id": None}
        assert self.states["packaging"].get(STOCK, "hub-north/SKU-0001") == {
            "on_hand": 5,
            "reserved": 0,
            "shipped": 0,
        }
        assert [(type(e).__name__, e.reason) for e in self.ends()] == [
            ("OrderFailed", "DEADLINE"),
            ("OrderCompensated", "DEADLINE"),
        ]


def test_a_drone_assigned_before_expiry_but_heard_after_the_end_is_released_and_nothing_ends_twice() -> None:
    saga = Saga()
    (order,) = saga.deliver("orders", place())
    (package,) = saga.deliver("packaging", order)
    (drone,) = saga.deliver("drones", package)
    assert isinstance(drone, DroneAssigned)  # delivery has not heard of it yet
    (deadline,) = saga.fire(LATE)
    (expiry,) = saga.deliver("delivery", deadline)
    assert isinstance(expiry, DeliveryExpired)
    assert saga.deliver("drones", expiry) == []
    (stock,) = saga.deliver("packaging", expiry)
    assert isinstance(stock, StockReleased) and stock.reason == "DEADLINE"
    saga.deliver("orders", expiry)
    saga.deliver("orders", stock)
    assert status(saga.states["orders"]) == "compensated"
    # The stock went back on the expiry (the package never flew), so orders is compensated while
    # the drone, assigned before delivery heard of the deadline, is still to come back.
    assert saga.states["drones"].get(FLEET, "hub-north/drone-01") == {"order_id": "order-1"}
    # The saga has ended; now the drone reaches delivery, which sends it back.
    (sent_back,) = saga.deliver("delivery", drone)
    assert isinstance(sent_back, DeliveryFailed) and sent_back.reason == "DEADLINE"
    (back,) = saga.deliver("drones", sent_back)
    assert isinstance(back, DroneReleased) and back.failure_reason == "DEADLINE"
    assert saga.deliver("packaging", sent_back) == [] and saga.deliver("packaging", back) == []
    for late in (package, drone, sent_back, back):
        assert saga.deliver("orders", late) == []
    saga.assert_settled()


def test_a_package_packed_after_the_saga_ended_goes_back_and_nothing_ends_twice() -> None:
    saga = Saga()
    (order,) = saga.deliver("orders", place())
    (deadline,) = saga.fire(LATE)
    assert saga.deliver("packaging", deadline) == [] and saga.deliver("delivery", order) == []
    (expiry,) = saga.deliver("delivery", deadline)
    assert saga.deliver("packaging", expiry) == []  # nothing packed yet: nothing to give back
    (failed,) = saga.deliver("orders", expiry)
    assert isinstance(failed, OrderFailed)
    # The OrderPlaced reaches packaging only now: packed, flown to delivery, refused, back.
    (package,) = saga.deliver("packaging", order)
    (drone,) = saga.deliver("drones", package)
    (sent_back,) = saga.deliver("delivery", drone)
    assert isinstance(sent_back, DeliveryFailed) and sent_back.reason == "DEADLINE"
    (back,) = saga.deliver("drones", sent_back)
    (stock,) = saga.deliver("packaging", back)
    assert isinstance(stock, StockReleased) and stock.reason == "DEADLINE"
    for late in (package, drone, sent_back, back):
        assert saga.deliver("orders", late) == []
    (compensated,) = saga.deliver("orders", stock)
    assert isinstance(compensated, OrderCompensated)
    # A cancel now is too late, and says so without touching anything.
    (answer,) = saga.deliver("orders", cancel_order("order-1", "hub-north", T0))
    assert isinstance(answer, OrderCancellationRejected) and answer.reason == "ALREADY_ENDED"
    saga.assert_settled()
