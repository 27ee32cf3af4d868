"""Stock is conserved per hub and SKU under any sequence of inputs packaging may see."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from choreo.testing import MemoryState
from consumers.audit import audit
from consumers.delivery.events import DeliveryCompleted
from consumers.drones.events import DroneReleased, DroneUnavailable
from consumers.orders.events import OrderPlaced
from consumers.packaging.events import StockAdded
from consumers.packaging.service import STOCK, decide, evolve
from producers.commands import add_stock
from tests.support.records import T0, record

HUBS = st.sampled_from(["hub-north", "hub-south"])
SKUS = st.sampled_from(["SKU-0001", "SKU-0002"])
ORDER_IDS = st.sampled_from([f"o{i}" for i in range(6)])

inputs = st.one_of(
    st.builds(lambda h, s, q: add_stock(h, s, q, T0), HUBS, SKUS, st.integers(-2, 20)),
    st.builds(
        lambda o, h, s, q: record(OrderPlaced, order_id=o, hub=h, sku=s, quantity=q, address="a"),
        ORDER_IDS,
        HUBS,
        SKUS,
        st.integers(1, 10),
    ),
    st.builds(
        lambda o, h: record(DroneUnavailable, order_id=o, hub=h, package_id="p", reason="NO_DRONE"),
        ORDER_IDS,
        HUBS,
    ),
    st.builds(
        lambda o, h, f: record(
            DroneReleased, order_id=o, hub=h, drone_id="d", package_id="p", failure_reason=f
        ),
        ORDER_IDS,
        HUBS,
        st.sampled_from([None, "ADDRESS_NOT_FOUND", "CANCELLED"]),
    ),
    st.builds(
        lambda o, h: record(DeliveryCompleted, order_id=o, hub=h, drone_id="d", package_id="p", address="a"),
        ORDER_IDS,
        HUBS,
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(inputs, max_size=60))
def test_added_equals_on_hand_plus_reserved_plus_shipped_and_never_negative(events: list[Any]) -> None:
    state = MemoryState()
    added: Counter[str] = Counter()
    emitted: list[Any] = []
    for event in events:
        for out in decide(state, event):
            evolve(state, out)
            emitted.append(out)
            if isinstance(out, StockAdded):
                added[f"{out.hub}/{out.sku}"] += out.quantity
        for key, shelf in state.scan(STOCK):
            assert min(shelf.values()) >= 0, (key, shelf)
            assert shelf["on_hand"] + shelf["reserved"] + shelf["shipped"] == added[key]
    stock = next(i for i in audit(emitted).invariants if i.name == "stock_conserved")
    assert stock.ok, stock.violations
