"""Commands with an over-long field get a small FIELD_TOO_LONG rejection, once, and start nothing."""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema

from choreo.serde.codec import Codec, subject_for
from choreo.serde.schemas import load_event_schemas
from choreo.testing import MemoryState
from consumers.audit import audit, summarise_outcomes
from consumers.drones import service as drones
from consumers.drones.events import DroneRegistered, DroneRegistrationRejected
from consumers.limits import ADDRESS_MAX, FIELD_CAPS, FIELD_TOO_LONG, HUB_MAX, ID_MAX, SKU_MAX
from consumers.orders import service as orders
from consumers.orders.events import OrderCancellationRejected, OrderPlaced, OrderRejected
from consumers.packaging import service as packaging
from consumers.packaging.events import StockAdded, StockAddRejected
from harness.paths import SCHEMAS
from producers.commands import add_stock, cancel_order, place_order, register_drone
from producers.saga_watch import SagaWatcher
from tests.support.fake_registry import FakeRegistry
from tests.support.records import T0
from tests.support.reference import all_event_types

HOSTILE_HUB = "hub-north" + "\x00" * 240_000
ADDRESS = "1 Harbour Street, Northport"
# Far below Kafka's 1 MB record limit: the caps bound a rejection to well under this.
SMALL = 2_000

# A valid command of each kind, its service, and the rejection it gets.
COMMANDS: dict[str, tuple[Any, Any, type[Any]]] = {
    "PlaceOrder": (place_order("hub-north", "SKU-0001", 2, ADDRESS, T0), orders, OrderRejected),
    "CancelOrder": (cancel_order("order-1", "hub-north", T0), orders, OrderCancellationRejected),
    "AddStock": (add_stock("hub-north", "SKU-0001", 5, T0), packaging, StockAddRejected),
    "RegisterDrone": (register_drone("hub-north", "drone-09", T0), drones, DroneRegistrationRejected),
}
CAPPED = [
    (name, f.name)
    for name, (command, _, _) in COMMANDS.items()
    for f in dataclasses.fields(command)
    if f.name in FIELD_CAPS
]


def apply(service: Any, state: MemoryState, command: Any) -> list[Any]:
    out = list(service.decide(state, command))
    for event in out:
        service.evolve(state, event)
    return out


@cache
def codec() -> Codec:
    """The project's codec over every event schema, registered for topic "t" in a fake registry."""
    schemas = load_event_schemas(all_event_types(), SCHEMAS)
    registry = FakeRegistry()
    for es in schemas.values():
        registry.register_schema(subject_for("t", es.name), Schema(es.text, "AVRO"))
    return Codec(registry, schemas.values())  # type: ignore[arg-type]


def encoded_size(event: Any) -> int:
    """The event's size as a worker would produce it: Confluent framing plus strict Avro."""
    return len(codec().encode("t", event))


def assert_small(event: Any) -> None:
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, str) and f.name in FIELD_CAPS:
            assert len(value) <= FIELD_CAPS[f.name], f.name
    assert len(event.detail) < 500
    assert encoded_size(event) < SMALL


def test_the_measured_case_a_hub_of_240000_nuls_gets_one_small_rejection() -> None:
    command = place_order(HOSTILE_HUB, "SKU-0001", 2, ADDRESS, T0, order_id="order-1")
    state = MemoryState()
    (event,) = apply(orders, state, command)
    assert isinstance(event, OrderRejected) and event.reason == FIELD_TOO_LONG
    assert "hub is 240009 chars, over the limit of 64" in event.detail
    assert event.order_id == "order-1"  # within its cap: the edge can still match the answer
    assert event.causation_id == command.event_id
    assert event.hub.startswith("hub-north\\x00") and len(event.hub) == HUB_MAX
    assert_small(event)
    # Remembered under a short key, so a replay is a duplicate: no second answer, no saga.
    assert all(len(key) <= HUB_MAX + 1 + ID_MAX for key in state.tables[orders.ORDERS])
    assert apply(orders, state, command) == []
    assert orders.decide(MemoryState(), command) == [event]  # same input, same event id


def test_the_same_order_id_at_the_real_hub_is_still_its_own_saga() -> None:
    state = MemoryState()
    apply(orders, state, place_order(HOSTILE_HUB, "SKU-0001", 2, ADDRESS, T0, order_id="order-1"))
    (event,) = apply(orders, state, place_order("hub-north", "SKU-0001", 2, ADDRESS, T0, order_id="order-1"))
    assert isinstance(event, OrderPlaced)


@pytest.mark.parametrize(("command_name", "field"), CAPPED, ids=[f"{c}.{f}" for c, f in CAPPED])
@pytest.mark.parametrize("size", ["cap+1", "huge"])
def test_every_capped_field_of_every_command_is_refused_when_over_its_cap(
    command_name: str, field: str, size: str
) -> None:
    command, service, rejected = COMMANDS[command_name]
    cap = FIELD_CAPS[field]
    length = cap + 1 if size == "cap+1" else 900_000
    hostile = dataclasses.replace(command, **{field: "z" * length})
    state = MemoryState()
    (event,) = apply(service, state, hostile)
    assert isinstance(event, rejected) and event.reason == FIELD_TOO_LONG
    assert f"{field} is {length} chars, over the limit of {cap}" in event.detail
    assert_small(event)
    assert all(len(k) <= 2 * ID_MAX + 1 for rows in state.tables.values() for k in rows)
    assert service.decide(MemoryState(), hostile) == [event]  # deterministic, same event id


@pytest.mark.parametrize(("command_name", "field"), CAPPED, ids=[f"{c}.{f}" for c, f in CAPPED])
def test_a_field_exactly_at_its_cap_is_not_too_long(command_name: str, field: str) -> None:
    command, service, _ = COMMANDS[command_name]
    at_cap = dataclasses.replace(command, **{field: "z" * FIELD_CAPS[field]})
    for event in service.decide(MemoryState(), at_cap):
        assert getattr(event, "reason", None) != FIELD_TOO_LONG


def test_a_normal_order_still_passes_even_with_every_field_at_its_cap() -> None:
    (event,) = orders.decide(MemoryState(), place_order("hub-north", "SKU-0001", 2, ADDRESS, T0))
    assert isinstance(event, OrderPlaced)
    longest = place_order(
        "hub-north", "SKU-0001", 2, ADDRESS.ljust(ADDRESS_MAX, "."), T0,
        order_id="o" * ID_MAX, event_id="e" * ID_MAX,
    )
    (event,) = orders.decide(MemoryState(), longest)
    assert isinstance(event, OrderPlaced) and event.order_id == "o" * ID_MAX
    assert event.address == longest.address and event.causation_id == "e" * ID_MAX


def test_normal_stock_and_drones_still_pass() -> None:
    (stock,) = packaging.decide(MemoryState(), add_stock("hub-north", "SKU-0001", 5, T0))
    (drone,) = drones.decide(MemoryState(), register_drone("hub-north", "d" * ID_MAX, T0))
    assert isinstance(stock, StockAdded) and isinstance(drone, DroneRegistered)


def test_rejections_quote_at_most_the_start_of_a_value() -> None:
    # Within every cap, but still only the start of it is echoed: SKU_MAX chars of junk.
    (event,) = orders.decide(MemoryState(), place_order("hub-north", "x" * SKU_MAX, 2, ADDRESS, T0))
    assert event.reason == "INVALID_SKU" and len(event.detail) < 150


def test_a_cancel_with_an_over_long_id_is_refused_even_if_it_clips_onto_a_known_order() -> None:
    state = MemoryState()
    long_id = "o" * 200
    apply(orders, state, place_order("hub-north", "SKU-0001", 2, ADDRESS, T0, order_id=long_id))
    (event,) = apply(orders, state, cancel_order(long_id, "hub-north", T0))
    assert isinstance(event, OrderCancellationRejected) and event.reason == FIELD_TOO_LONG


def test_the_audit_counts_a_field_too_long_rejection_as_rejected_not_as_a_lost_saga() -> None:
    state = MemoryState()
    events = apply(orders, state, place_order(HOSTILE_HUB, "SKU-0001", 2, ADDRESS, T0, order_id="x"))
    events += apply(orders, state, place_order("h" * 300, "SKU-0001", 2, ADDRESS, T0, order_id="y" * 300))
    report = audit(events)
    assert report.ok and report.sagas == 0 and report.in_flight == 0
    rows = summarise_outcomes(events)
    assert [(r.outcome, r.reason, r.orders) for r in rows] == [("rejected", FIELD_TOO_LONG, 2)]


def test_the_watcher_sees_an_order_with_an_over_long_id_end_in_its_rejection() -> None:
    long_id = "y" * 300
    command = place_order("hub-north", "SKU-0001", 2, ADDRESS, T0, order_id=long_id)
    (event,) = orders.decide(MemoryState(), command)
    watcher = SagaWatcher.__new__(SagaWatcher)  # no Kafka: feed it the decoded event's end directly
    watcher.ended = {event.order_id: "rejected"}
    assert watcher.wait_ended({long_id}, timeout_s=0) == {long_id: "rejected"}


def test_sku_and_drone_id_as_sent_are_clipped_in_their_rejections() -> None:
    (stock,) = packaging.decide(MemoryState(), add_stock("hub-north", "S" * 10_000, 5, T0))
    (drone,) = drones.decide(MemoryState(), register_drone("hub-north", "d" * 10_000, T0))
    assert len(stock.sku) == SKU_MAX and "10000 chars" in stock.sku
    assert len(drone.drone_id) == ID_MAX and "10000 chars" in drone.drone_id
