"""Keys that cannot collide: ids holding the key separator, blank ids, clipped stand-ins.

Reproduced on decide/evolve alone: before keys were escaped, ("hub-north/y", "col-1") and
("hub-north", "y/col-1") shared the key "hub-north/y/col-1".
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from choreo.cli.main import app
from choreo.keys import compose_key, key_parts, key_prefix
from choreo.ops.state_view import Document, DocumentFilter
from choreo.testing import MemoryState, handle
from consumers.drones.events import (
    DroneAssigned,
    DroneRegistered,
    DroneRegistrationRejected,
    PackageQueued,
)
from consumers.drones.service import SERVICE as DRONES
from consumers.ids import id_problem
from consumers.limits import HUB_MAX, ID_MAX, clipped
from consumers.orders.events import (
    OrderCancellationRejected,
    OrderCancellationRequested,
    OrderPlaced,
    OrderRejected,
)
from consumers.orders.service import SERVICE as ORDERS
from consumers.packaging.events import PackagePrepared, StockAddRejected
from consumers.packaging.service import SERVICE as PACKAGING
from consumers.reference import hubs
from consumers.saga import saga_key
from producers.commands import add_stock, cancel_order, place_order, register_drone
from tests.support.records import T0, record

ORDER: dict[str, Any] = {"sku": "SKU-0001", "quantity": 1, "address": "1 Harbour Street, Northport"}
BAD_IDS = ["", " ", "\t\n", "a\x00b", "bell\x07", "left\u202eright", "zero\u200bwidth"]

# Texts rich in what escaping is about: separators, '%', the letters of '%2F' and '%25', blanks.
tricky = st.text(alphabet=st.sampled_from("/%25Fa ") | st.characters(), max_size=12)
# Up to twice the caps, so that clipping is exercised too.
hub_ids = tricky | st.text(min_size=HUB_MAX - 2, max_size=2 * HUB_MAX)
order_ids = tricky | st.text(min_size=ID_MAX - 2, max_size=2 * ID_MAX)


# -- (a), (b): the findings, on decide/evolve -------------------------------------------------


def test_a_rejected_order_at_a_hub_holding_a_slash_does_not_block_a_real_one() -> None:
    state = MemoryState()
    (rejected,) = handle(ORDERS, state, place_order("hub-north/y", **ORDER, at=T0, order_id="col-1"))
    assert isinstance(rejected, OrderRejected) and rejected.reason == "UNKNOWN_HUB"
    (placed,) = handle(ORDERS, state, place_order("hub-north", **ORDER, at=T0, order_id="y/col-1"))
    assert isinstance(placed, OrderPlaced) and placed.order_id == "y/col-1"


def test_a_cancel_for_an_unknown_hub_does_not_cancel_a_real_order() -> None:
    state = MemoryState()
    (placed,) = handle(ORDERS, state, place_order("hub-north", **ORDER, at=T0, order_id="y/can-1"))
    assert isinstance(placed, OrderPlaced)
    (answer,) = handle(ORDERS, state, cancel_order("can-1", "hub-north/y", T0))
    assert isinstance(answer, OrderCancellationRejected) and answer.reason == "UNKNOWN_ORDER"
    (cancel,) = handle(ORDERS, state, cancel_order("y/can-1", "hub-north", T0))
    assert isinstance(cancel, OrderCancellationRequested)  # the real one is still cancellable


# -- (c): the encoder --------------------------------------------------------------------------


@given(st.lists(tricky | st.text(), min_size=1, max_size=4))
def test_a_key_splits_back_into_exactly_its_parts(parts: list[str]) -> None:
    key = compose_key(*parts)
    assert key_parts(key) == tuple(parts)  # a round trip: so different parts never meet
    assert key.startswith(key_prefix(*parts[:-1])) if len(parts) > 1 else True


@given(st.lists(tricky, min_size=1, max_size=4), st.lists(tricky, min_size=1, max_size=4))
def test_different_parts_never_give_the_same_key(a: list[str], b: list[str]) -> None:
    assert (compose_key(*a) == compose_key(*b)) == (a == b)


@given(st.lists(st.text(alphabet=st.characters(exclude_characters="/%")), min_size=1, max_size=4))
def test_keys_of_ids_without_separator_or_percent_are_the_plain_join_stores_hold(parts: list[str]) -> None:
    assert compose_key(*parts) == "/".join(parts)


def test_a_key_needs_a_part() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        compose_key()


@given(hub_ids, order_ids, hub_ids, order_ids)
def test_saga_keys_are_injective_over_clipped_ids(h1: str, o1: str, h2: str, o2: str) -> None:
    same_saga = (clipped(h1, HUB_MAX), clipped(o1, ID_MAX)) == (clipped(h2, HUB_MAX), clipped(o2, ID_MAX))
    assert (saga_key(h1, o1) == saga_key(h2, o2)) == same_saga
    assert key_parts(saga_key(h1, o1)) == (clipped(h1, HUB_MAX), clipped(o1, ID_MAX))


@given(st.text(min_size=ID_MAX + 1, max_size=3 * ID_MAX))
def test_a_clipped_stand_in_is_never_a_valid_id_so_never_a_real_order_s_key(long_id: str) -> None:
    stand_in = clipped(long_id, ID_MAX)
    assert saga_key("hub-north", long_id) == saga_key("hub-north", stand_in)  # rejection finds it
    assert id_problem("order_id", stand_in) is not None
    assert id_problem("drone_id", stand_in) is not None


def test_a_command_whose_id_is_a_stand_in_is_rejected_and_cannot_cancel_the_rejection() -> None:
    state = MemoryState()
    long_id = "o" * (ID_MAX + 50)
    (too_long,) = handle(ORDERS, state, place_order("hub-north", **ORDER, at=T0, order_id=long_id))
    assert isinstance(too_long, OrderRejected) and too_long.reason == "FIELD_TOO_LONG"
    stand_in = too_long.order_id
    (rejected,) = handle(ORDERS, state, place_order("hub-north", **ORDER, at=T0, order_id=stand_in + "x"))
    assert isinstance(rejected, OrderRejected)  # another id, so an answer of its own
    (cancel,) = handle(ORDERS, state, cancel_order(stand_in, "hub-north", T0))
    assert isinstance(cancel, OrderCancellationRejected) and cancel.reason == "INVALID_ORDER_ID"


# -- (d): one rule for ids, in every service that takes commands --------------------------------


@pytest.mark.parametrize("bad", BAD_IDS)
def test_an_order_with_a_blank_or_control_id_is_rejected_with_the_reason(bad: str) -> None:
    state = MemoryState()
    (event,) = handle(ORDERS, state, place_order("hub-north", **ORDER, at=T0, order_id=bad))
    assert isinstance(event, OrderRejected) and event.reason == "INVALID_ORDER_ID"
    assert "order id" in event.detail and "\x00" not in event.detail
    (cancel,) = handle(ORDERS, state, cancel_order(bad, "hub-north", T0))
    assert isinstance(cancel, OrderCancellationRejected) and cancel.reason == "INVALID_ORDER_ID"


@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_drone_with_a_blank_or_control_id_is_refused_with_the_reason(bad: str) -> None:
    state = MemoryState()
    (event,) = handle(DRONES, state, register_drone("hub-north", bad, T0))
    assert isinstance(event, DroneRegistrationRejected) and event.reason == "INVALID_DRONE_ID"
    assert state.dump() == MemoryState().dump()


def test_a_drone_id_holding_a_slash_is_registered_and_assigned_as_it_is() -> None:
    state = MemoryState()
    for drone in ("bay/2", "bay%2F1"):
        (registered,) = handle(DRONES, state, register_drone("hub-north", drone, T0))
        assert isinstance(registered, DroneRegistered)
    (south,) = handle(DRONES, state, register_drone("hub-south", "bay", T0))
    assert isinstance(south, DroneRegistered)
    pkg = {"package_id": "p", "sku": "SKU-0001", "quantity": 1, "address": "1 Harbour Street"}
    packages = (record(PackagePrepared, order_id=o, **pkg) for o in "abc")
    first, second, third = (handle(DRONES, state, p)[0] for p in packages)
    assert isinstance(first, DroneAssigned) and isinstance(second, DroneAssigned)
    assert sorted([first.drone_id, second.drone_id]) == ["bay%2F1", "bay/2"]
    # hub-south's "bay" is not hub-north's: the third package waits for one of the north's two.
    assert isinstance(third, PackageQueued)


def test_stock_for_a_blank_hub_is_refused_with_the_reason() -> None:
    state = MemoryState()
    (event,) = handle(PACKAGING, state, add_stock(" ", "SKU-0001", 5, T0))
    assert isinstance(event, StockAddRejected) and event.reason == "UNKNOWN_HUB"
    assert state.dump() == MemoryState().dump()


def test_every_hub_of_ours_keeps_the_id_rule() -> None:
    assert [h for h in hubs() if id_problem("hub", h) is not None] == []


@pytest.mark.parametrize("good", ["order-1", "y/can-1", "50%", "%2F", "Ω-ü 7", "a" * ID_MAX])
def test_printable_ids_are_valid_separators_included(good: str) -> None:
    assert id_problem("order_id", good) is None
    (event,) = handle(ORDERS, MemoryState(), place_order("hub-north", **ORDER, at=T0, order_id=good))
    assert isinstance(event, OrderPlaced)


# -- the tools: `choreo state` decodes keys ----------------------------------------------------


def test_the_state_filter_reads_key_parts_decoded() -> None:
    real = Document(0, "orders", saga_key("hub-north", "y/can-1"), {"status": "placed"})
    rejected = Document(0, "orders", saga_key("hub-north/y", "can-1"), {"status": "rejected"})
    north, north_y = DocumentFilter(key="hub-north", key_field="hub"), DocumentFilter(key="hub-north/y")
    assert [d for d in (real, rejected) if north.matches(d)] == [real]
    assert [d for d in (real, rejected) if north_y.matches(d)] == [rejected]
    by_order = DocumentFilter(fields=(("order_id", "y/can-1"),))
    assert [d for d in (real, rejected) if by_order.matches(d)] == [real]


# -- the CLI: a bad id is a usage error before anything is produced ----------------------------


@pytest.fixture
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    # Closed ports: a command that got as far as producing would fail another way (exit 1).
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://127.0.0.1:1/apis/ccompat/v7")


def _usage_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and all(n in line for n in needles), line
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("no_broker")
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["order", "place", "--hub", "hub-north", "--sku", "SKU-0001", "--address", "a", "--order-id", " "],
         "order id ' ' is empty or blank"),
        (["order", "place", "--hub", "\t", "--sku", "SKU-0001", "--address", "a"], "hub '\\t' is empty"),
        (["order", "cancel", "", "--hub", "hub-north"], "order id '' is empty or blank"),
        (["order", "cancel", "o\x1b[31m", "--hub", "hub-north"], "control or format character U+001B"),
        (["fleet", "add", "--hub", "hub-north", "--drone", " "], "drone id ' ' is empty or blank"),
    ],
)
def test_the_cli_refuses_a_bad_id_in_one_sentence(args: list[str], needle: str) -> None:
    _usage_error(CliRunner().invoke(app, args), needle)
