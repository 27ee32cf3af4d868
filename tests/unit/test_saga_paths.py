"""The whole saga in memory: the four paths, cancellation and the deadline, under random
interleavings."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from choreo.in_flight import IN_FLIGHT, count_in_flight
from choreo.testing import fire_due
from choreo.timers import TimerFired, due_timers, next_due_ms, to_ms
from consumers.audit import audit, summarise_outcomes
from consumers.delivery.events import DeliveryCompleted, DeliveryFailed
from consumers.domain import SAGA_ENDS
from consumers.drones.service import DRONES, FREE
from consumers.orders.events import (
    OrderCompensated,
    OrderCompleted,
    OrderDeadlinePassed,
    OrderFailed,
    PlaceOrder,
)
from consumers.packaging.service import RESERVATIONS, STOCK
from consumers.saga import saga_key
from producers.commands import add_stock, cancel_order, place_order, register_drone
from tests.support.records import T0
from tests.support.reference import SERVICE_NAMES
from tests.support.saga_sim import SagaSim

GOOD_ADDRESS = "1 Harbour Street, Northport"
DEADLINE = T0 + timedelta(minutes=10)  # the deadline the deadline tests give their orders
LATE = DEADLINE + timedelta(seconds=1)  # a clock past it
BEFORE_DELIVERY = ("OUT_OF_STOCK", "NO_DRONE")  # failures delivery never hears of


class DeadlineSim(SagaSim):
    """SagaSim with timers: `fire` does what the workers do with the timers due at a time, and
    the services skip the TimerFired records on another service's topic as they do."""

    def _process(self, name: str, topic: str, record: Any) -> None:
        if type(record) is TimerFired and not self.services[name].accepts(topic, TimerFired):
            return  # another service's timer bookkeeping: nothing to decide
        super()._process(name, topic, record)

    def fire(self, now: datetime) -> list[Any]:
        """Fire every service's timers due at `now` (orders' deadlines, drones' waits): each
        TimerFired on its own topic, then what was decided on it (the worker's order, so that a
        rebuild removes the timer where it did)."""
        decided: list[Any] = []
        for name, service in self.services.items():
            if service.uses_timers:
                decided += self._fire(name, now)
        return decided

    def _fire(self, name: str, now: datetime) -> list[Any]:
        service, state = self.services[name], self.states[name]
        firings = [t.fired(to_ms(now)) for t in due_timers(state, to_ms(now), limit=1_000_000)]
        decided = fire_due(service, state, now)
        for fired in firings:
            self._write(service.own_topic, fired)
            for out in (e for e in decided if e.causation_id == fired.event_id):
                assert type(out) in service.on_timer, f"{name} emitted {type(out)} on a timer"
                assert (out.order_id, out.hub) == (fired.data["order_id"], fired.data["hub"])
                assert out.occurred_at == fired.fired_at
                self._write(service.own_topic, out)
        assert all(any(e.causation_id == f.event_id for f in firings) for e in decided)
        return decided


def world(seed: int, drones: int = 3, stock: int = 50) -> DeadlineSim:
    """Stock and a fleet at hub-north (none at hub-west), settled before any order."""
    sim = DeadlineSim(random.Random(seed))
    sim.send(add_stock("hub-north", "SKU-0001", stock, T0), add_stock("hub-west", "SKU-0001", stock, T0))
    sim.send(*(register_drone("hub-north", f"drone-{i:02d}", T0) for i in range(1, drones + 1)))
    sim.run()
    return sim


def order(
    order_id: str,
    hub: str = "hub-north",
    sku: str = "SKU-0001",
    address: str = GOOD_ADDRESS,
    quantity: int = 2,
    deadline: datetime | None = None,
) -> PlaceOrder:
    command = place_order(hub, sku, quantity, address, T0 + timedelta(seconds=1), order_id=order_id)
    return command if deadline is None else replace(command, deadline=deadline)


def end_of(sim: SagaSim, order_id: str) -> str:
    ends = [
        e
        for e in sim.events()
        if getattr(e, "order_id", None) == order_id and isinstance(e, OrderCompleted | OrderFailed)
    ]
    assert len(ends) == 1, ends
    return "completed" if isinstance(ends[0], OrderCompleted) else ends[0].reason


def compensations(sim: SagaSim, order_id: str) -> int:
    return sum(isinstance(e, OrderCompensated) and e.order_id == order_id for e in sim.events())


def assert_consistent(sim: SagaSim) -> None:
    """The audit passes on the log in any topic merge, and every state rebuilds identically."""
    for events in (sim.events(), sim.shuffled_events()):
        report = audit(events)
        assert report.ok, [(i.name, i.violations) for i in report.invariants if not i.ok]
    for name in SERVICE_NAMES:
        assert sim.rebuild(name).dump() == sim.states[name].dump(), name


def assert_settled(sim: SagaSim) -> None:
    """Quiescent: every drone back in its free index, no stock held, no deadline timer left."""
    drones = sim.states["drones"]
    fleet = dict(drones.scan(DRONES))
    assert all(row["order_id"] is None for row in fleet.values()), fleet
    assert [key for key, _ in drones.scan(FREE)] == sorted(fleet)
    packaging = sim.states["packaging"]
    assert all(shelf["reserved"] == 0 for _, shelf in packaging.scan(STOCK))
    assert all(r["status"] != "reserved" for _, r in packaging.scan(RESERVATIONS))
    assert next_due_ms(sim.states["orders"]) is None
    assert_held_open_until_ended(sim)


def assert_held_open_until_ended(sim: SagaSim) -> None:
    """Orders holds exactly the sagas that have not ended open (the saga-age gauge's source);
    when every saga has ended, no service holds any."""
    ended = {saga_key(e.hub, e.order_id) for e in sim.events() if type(e) in SAGA_ENDS}
    placed = {saga_key(e.hub, e.order_id) for e in sim.events() if type(e).__name__ == "OrderPlaced"}
    assert {k for k, _ in sim.states["orders"].scan(IN_FLIGHT)} == placed - ended
    if placed <= ended:
        assert {n: count_in_flight(s) for n, s in sim.states.items()} == dict.fromkeys(sim.states, 0)


def deadline_end(sim: SagaSim, order_id: str) -> tuple[str, bool]:
    """The saga's one end, and whether delivery let the deadline stop it (DeliveryExpired).

    Expired, delivery never flies it: its only decision left is sending a late drone back
    (DEADLINE), and the end is DEADLINE unless a failure delivery never hears of came first.
    Not expired (no deadline passed, or it came after delivery decided), the end is the saga's own.
    """
    end = end_of(sim, order_id)
    trace = sim.of_order(order_id)
    expired = trace.count("DeliveryExpired")
    assert expired <= trace.count("OrderDeadlinePassed") <= 1, trace
    flown = [
        "completed" if isinstance(e, DeliveryCompleted) else e.reason
        for e in sim.events()
        if isinstance(e, DeliveryCompleted | DeliveryFailed) and e.order_id == order_id
    ]
    assert len(flown) <= 1, trace
    if expired:
        # A cancel that delivery accepted while the package waited for a drone ends the saga
        # (the drones' DroneUnavailable(CANCELLED)) before the deadline: delivery still marks
        # it expired when the deadline comes, and the end stays CANCELLED.
        cancelled_first = ("CANCELLED",) if "DeliveryCancelled" in trace else ()
        assert set(flown) <= {"DEADLINE"}, (end, trace)
        assert end in ("DEADLINE", *BEFORE_DELIVERY, *cancelled_first), (end, trace)
        assert trace.count("DroneReleased") == trace.count("DroneAssigned"), trace
    else:
        assert "DEADLINE" not in (end, *flown), (end, trace)
    assert compensations(sim, order_id) == (0 if end == "completed" else 1), trace
    # OrderCompensated carries "the failure reason of the saga, as in OrderFailed" (its schema).
    compensated = [
        e.reason for e in sim.events() if isinstance(e, OrderCompensated) and e.order_id == order_id
    ]
    assert compensated in ([], [end]), (end, compensated, trace)
    return end, bool(expired)


CASES = {
    "ok": (order("ok"), "completed", 0),
    "oos": (order("oos", sku="SKU-0002"), "OUT_OF_STOCK", 1),
    "nodrone": (order("nodrone", hub="hub-west"), "NO_DRONE", 1),
    "lost": (order("lost", address="404 Nowhere Lane"), "ADDRESS_NOT_FOUND", 1),
}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_the_four_paths_end_right_in_any_interleaving(seed: int) -> None:
    sim = world(seed)
    sim.send(*(command for command, _, _ in CASES.values()))
    sim.run()
    for order_id, (_, end, compensated) in CASES.items():
        assert (end_of(sim, order_id), compensations(sim, order_id)) == (end, compensated)
    assert_consistent(sim)
    assert_held_open_until_ended(sim)


def test_the_paths_leave_the_expected_trace() -> None:
    sim = world(7)
    sim.send(order("lost", address="404 Nowhere Lane"))
    sim.run()
    trace = sim.of_order("lost")
    for step in (
        "OrderPlaced",
        "PackagePrepared",
        "DroneAssigned",
        "DeliveryFailed",
        "DroneReleased",
        "StockReleased",
        "OrderFailed",
        "OrderCompensated",
    ):
        assert trace.count(step) == 1, (step, trace)
    assert trace.index("DroneReleased") < trace.index("StockReleased") < trace.index("OrderCompensated")


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32), bad_address=st.booleans())
def test_a_cancel_racing_the_saga_gives_one_end_and_releases_once(seed: int, bad_address: bool) -> None:
    sim = world(seed)
    sim.send(order("c", address="404 Nowhere Lane" if bad_address else GOOD_ADDRESS))
    rng = random.Random(seed)
    for _ in range(rng.randrange(0, 12)):  # the cancel arrives somewhere along the saga
        sim.step()
    sim.send(cancel_order("c", "hub-north", T0), cancel_order("c", "hub-north", T0))
    sim.run()
    end = end_of(sim, "c")
    assert end in ("CANCELLED", "ADDRESS_NOT_FOUND" if bad_address else "completed")
    assert compensations(sim, "c") == (0 if end == "completed" else 1)
    assert_consistent(sim)


def test_a_cancel_after_delivery_changes_nothing() -> None:
    sim = world(3)
    sim.send(order("late"))
    sim.run()
    before = {n: s.dump() for n, s in sim.states.items() if n != "orders"}
    sim.send(cancel_order("late", "hub-north", T0))
    sim.run()
    assert end_of(sim, "late") == "completed"
    assert {n: s.dump() for n, s in sim.states.items() if n != "orders"} == before
    assert sim.of_order("late")[-1] == "OrderCancellationRejected"


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    orders=st.lists(
        st.tuples(
            st.sampled_from(["hub-north", "hub-west", "hub-mars"]),
            st.sampled_from(["SKU-0001", "SKU-0002", "bad"]),
            st.integers(0, 12),
            st.sampled_from([GOOD_ADDRESS, "404 Nowhere Lane", ""]),
            st.booleans(),  # cancel it too
        ),
        max_size=25,
    ),
    drones=st.integers(0, 3),
    stock=st.integers(0, 30),
)
def test_mixed_orders_with_contention_all_end_and_pass_the_audit(
    seed: int, orders: list[tuple[str, str, int, str, bool]], drones: int, stock: int
) -> None:
    sim = world(seed, drones=drones, stock=stock)
    rng = random.Random(seed)
    for i, (hub, sku, quantity, address, cancel) in enumerate(orders):
        sim.send(order(f"o{i}", hub, sku, address, quantity))
        if cancel:
            sim.send(cancel_order(f"o{i}", hub, T0))
        for _ in range(rng.randrange(0, 6)):  # let sagas overlap and race for stock and drones
            sim.step()
    sim.run()
    assert_consistent(sim)
    assert_held_open_until_ended(sim)  # some may still queue for a drone: those are held
    rows = summarise_outcomes(sim.events())
    assert sum(r.orders for r in rows) == len(orders)
    assert all(r.compensated == r.orders for r in rows if r.outcome == "failed")


def run_with_deadline(seed: int) -> DeadlineSim:
    """The four paths with a deadline that the clock passes at a random step of the sagas."""
    sim = world(seed)
    sim.send(*(replace(command, deadline=DEADLINE) for command, _, _ in CASES.values()))
    rng = random.Random(seed)
    for _ in range(rng.randrange(0, 40)):  # before, during or after the sagas (about 60 steps)
        sim.step()
    sim.fire(LATE)  # other services' inputs may still be pending
    sim.run()
    return sim


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_the_deadline_at_any_point_ends_each_path_once(seed: int) -> None:
    sim = run_with_deadline(seed)
    for order_id, (_, own, _) in CASES.items():
        end, expired = deadline_end(sim, order_id)
        assert end in (own, "DEADLINE")
        if own not in BEFORE_DELIVERY:
            # Delivery decides: the deadline wins exactly when it came before the drone.
            assert (end == "DEADLINE") == expired
    assert_consistent(sim)
    assert_settled(sim)
    assert sim.fire(LATE + timedelta(days=1)) == []  # every end cancelled its timer


def test_the_deadline_at_random_points_reaches_both_sides_of_every_path() -> None:
    # Each path ends its own way when the deadline comes late; one that reaches delivery ends
    # with DEADLINE when it comes early (oos and nodrone only when orders hears of it first).
    wanted = {(o, own) for o, (_, own, _) in CASES.items()} | {("ok", "DEADLINE"), ("lost", "DEADLINE")}
    seen: set[tuple[str, str]] = set()
    for seed in range(100):  # fixed seeds: every run checks the rules whatever hypothesis draws
        sim = run_with_deadline(seed)
        seen |= {(order_id, deadline_end(sim, order_id)[0]) for order_id in CASES}
    assert wanted <= seen, f"not seen: {wanted - seen}"


def test_a_deadline_before_the_drone_sends_the_late_drone_back() -> None:
    for seed in range(300):
        sim = run_with_deadline(seed)
        trace = sim.of_order("ok")
        if "DroneAssigned" in trace and end_of(sim, "ok") == "DEADLINE":
            break
    else:
        raise AssertionError("no seed expired the saga before its drone was assigned")
    steps = ("OrderDeadlinePassed", "DeliveryExpired", "DeliveryFailed", "DroneReleased", "StockReleased")
    for step in steps:
        assert trace.count(step) == 1, (step, trace)
    (failed,) = (e for e in sim.events() if isinstance(e, DeliveryFailed) and e.order_id == "ok")
    assert failed.reason == "DEADLINE"
    assert trace.index("DeliveryExpired") < trace.index("DeliveryFailed") < trace.index("DroneReleased")


def race_cancel_and_deadline(seed: int, bad_address: bool) -> DeadlineSim:
    """One saga, a cancel and the deadline, in either order, at random steps along it."""
    sim = world(seed)
    sim.send(order("c", address="404 Nowhere Lane" if bad_address else GOOD_ADDRESS, deadline=DEADLINE))
    rng = random.Random(seed)
    moves = [lambda: sim.send(cancel_order("c", "hub-north", T0)), lambda: sim.fire(LATE)]
    rng.shuffle(moves)
    for move in moves:
        for _ in range(rng.randrange(0, 6)):
            sim.step()
        move()
    sim.run()
    return sim


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32), bad_address=st.booleans())
def test_a_cancel_and_the_deadline_racing_the_saga_give_one_end(seed: int, bad_address: bool) -> None:
    sim = race_cancel_and_deadline(seed, bad_address)
    end, expired = deadline_end(sim, "c")
    assert end in ("CANCELLED", "DEADLINE", "ADDRESS_NOT_FOUND" if bad_address else "completed")
    # Delivery decides once: expired (even with a cancel waiting for the drone) it is DEADLINE,
    # cancelled first it is CANCELLED, decided first it is the saga's own end.
    assert (end == "DEADLINE") == expired
    assert (end == "CANCELLED") == ("DeliveryCancelled" in sim.of_order("c") and not expired)
    assert_consistent(sim)
    assert_settled(sim)


def test_a_cancel_waiting_for_the_drone_gives_way_to_the_deadline() -> None:
    for seed in range(300):
        sim = race_cancel_and_deadline(seed, bad_address=False)
        trace = sim.of_order("c")
        if "DeliveryCancelled" in trace and "DeliveryExpired" in trace:
            break
    else:
        raise AssertionError("no seed had the deadline pass while a cancel waited for the drone")
    assert deadline_end(sim, "c") == ("DEADLINE", True)
    assert trace.index("DeliveryCancelled") < trace.index("DeliveryExpired")
    assert_consistent(sim)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    orders=st.lists(
        st.tuples(
            st.sampled_from(["hub-north", "hub-west"]),
            st.integers(1, 12),
            st.sampled_from([GOOD_ADDRESS, "404 Nowhere Lane"]),
            st.integers(1, 3),  # deadline: minutes after T0
            st.booleans(),  # cancel it too
        ),
        max_size=15,
    ),
    clocks=st.lists(st.integers(0, 4), min_size=1, max_size=3),  # minutes after T0, fired at
    drones=st.integers(0, 3),
    stock=st.integers(0, 60),
)
def test_mixed_orders_with_deadlines_all_end_once_and_release_everything(
    seed: int,
    orders: list[tuple[str, int, str, int, bool]],
    clocks: list[int],
    drones: int,
    stock: int,
) -> None:
    sim = world(seed, drones=drones, stock=stock)
    rng = random.Random(seed)
    deadlines = {}
    firings = iter(sorted(clocks))  # the clock only goes forward
    for i, (hub, quantity, address, minutes, cancel) in enumerate(orders):
        deadlines[f"o{i}"] = T0 + timedelta(minutes=minutes)
        sim.send(order(f"o{i}", hub, "SKU-0001", address, quantity, deadline=deadlines[f"o{i}"]))
        if cancel:
            sim.send(cancel_order(f"o{i}", hub, T0))
        for _ in range(rng.randrange(0, 6)):  # let sagas overlap and race for stock and drones
            sim.step()
        if rng.random() < 0.3:
            clock = next(firings, None)
            if clock is not None:
                sim.fire(T0 + timedelta(minutes=clock, seconds=1))
    for clock in firings:
        sim.fire(T0 + timedelta(minutes=clock, seconds=1))
        for _ in range(rng.randrange(0, 20)):
            sim.step()
    sim.run()
    assert_consistent(sim)
    assert_settled(sim)
    last_clock = T0 + timedelta(minutes=max(clocks), seconds=1)
    for order_id, deadline in deadlines.items():
        assert "OrderPlaced" in sim.of_order(order_id)  # every one is valid: all are accepted
        end, _ = deadline_end(sim, order_id)
        passed = [e for e in sim.events() if isinstance(e, OrderDeadlinePassed) and e.order_id == order_id]
        assert all(e.deadline == deadline <= e.occurred_at <= last_clock for e in passed)
        if deadline > last_clock:
            assert not passed and end != "DEADLINE"
    rows = summarise_outcomes(sim.events())
    assert sum(r.orders for r in rows) == len(orders)
    assert all(r.compensated == r.orders for r in rows if r.outcome == "failed")
