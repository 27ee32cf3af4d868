"""The whole saga in memory: the four paths and cancellation, under random interleavings."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.audit import audit, summarise_outcomes
from consumers.orders.events import OrderCompensated, OrderCompleted, OrderFailed, PlaceOrder
from producers.commands import add_stock, cancel_order, place_order, register_drone
from tests.support.records import T0
from tests.support.reference import SERVICE_NAMES
from tests.support.saga_sim import SagaSim

GOOD_ADDRESS = "1 Harbour Street, Northport"


def world(seed: int, drones: int = 3, stock: int = 50) -> SagaSim:
    """Stock and a fleet at hub-north (none at hub-west), settled before any order."""
    sim = SagaSim(random.Random(seed))
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
) -> PlaceOrder:
    return place_order(hub, sku, quantity, address, T0 + timedelta(seconds=1), order_id=order_id)


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
    rows = summarise_outcomes(sim.events())
    assert sum(r.orders for r in rows) == len(orders)
    assert all(r.compensated == r.orders for r in rows if r.outcome == "failed")
