"""Edge builders, the seed and the load plan: valid commands, designed outcomes, reproducible."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

import pytest

from choreo.exceptions import ConfigurationError
from choreo.kafka.partitioner import partition_for
from choreo.timers import TimerFired
from consumers.audit import audit
from consumers.orders.events import OrderCompleted, OrderFailed
from consumers.reference import hubs
from producers.commands import place_order
from producers.load_plan import plan_orders
from producers.seed import (
    UNSTOCKED_SKU,
    fleet_commands,
    hubs_with_drones,
    hubs_without_drones,
    stock_commands,
    stocked_skus,
)
from tests.support.records import T0
from tests.support.reference import SERVICE_NAMES, all_event_types, load_service
from tests.support.saga_sim import SagaSim


def test_commands_need_an_aware_time_and_keep_milliseconds() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        place_order("hub-north", "SKU-0001", 1, "a", datetime(2026, 1, 1))
    command = place_order("hub-north", "SKU-0001", 1, "a", T0.replace(microsecond=123456))
    assert command.occurred_at.microsecond == 123000 and command.causation_id is None


def test_the_plan_is_reproducible_and_has_the_asked_shares() -> None:
    def plan(seed: int) -> list[tuple[str, str]]:
        return [(p.command.order_id, p.intent) for p in plan_orders(200, 0.1, 0.15, seed, T0, 0.05)]

    assert plan(1) == plan(1) != plan(2)
    assert Counter(intent for _, intent in plan(1)) == {
        "completed": 140,
        "ADDRESS_NOT_FOUND": 30,
        "OUT_OF_STOCK": 20,
        "NO_DRONE": 10,
    }
    with pytest.raises(ValueError, match="add up to at most 1"):
        list(plan_orders(10, 0.6, 0.6, 1, T0))


def test_the_seed_covers_every_hub_and_keeps_the_designed_fleets() -> None:
    shelves = Counter(c.hub for c in stock_commands(T0))
    fleets = Counter(c.hub for c in fleet_commands(T0))
    assert set(shelves) == set(hubs()) and len(hubs()) == 24
    assert all(shelves[h] == len(stocked_skus(h)) for h in hubs())
    assert UNSTOCKED_SKU not in {c.sku for c in stock_commands(T0)}
    designed = ("hub-north", "hub-south", "hub-east", "hub-west")
    assert [fleets[h] for h in designed] == [120, 120, 2, 0]
    assert set(fleets) == set(hubs_with_drones()) == set(hubs()) - {"hub-west"}
    # Small enough to seed in a moment: the twenty ordinary hubs stock two SKUs each.
    assert sum(shelves.values()) <= 60 and sum(fleets.values()) <= 700


def test_designed_failures_hit_their_hubs_and_the_rest_spreads_over_every_partition() -> None:
    plan = list(plan_orders(2000, 0.1, 0.1, seed=7, at=T0, no_drone_share=0.05))
    no_drone = {p.command.hub for p in plan if p.intent == "NO_DRONE"}
    assert no_drone == {"hub-west"}
    others = [p for p in plan if p.intent != "NO_DRONE"]
    assert {p.command.hub for p in others} == set(hubs_with_drones())
    assert all(p.command.sku == UNSTOCKED_SKU for p in others if p.intent == "OUT_OF_STOCK")
    per_partition = Counter(partition_for(p.command.hub.encode(), 6) for p in plan)
    assert len(per_partition) == 6 and min(per_partition.values()) >= len(plan) // 10, per_partition


def test_seeded_world_and_planned_orders_reach_their_designed_ends() -> None:
    sim = SagaSim(random.Random(5))
    sim.send(*stock_commands(T0), *fleet_commands(T0))
    sim.run()
    planned = list(plan_orders(150, 0.1, 0.1, seed=3, at=T0, no_drone_share=0.1))
    for p in planned:
        sim.send(p.command)
        sim.step()
    sim.run()
    ends = {
        e.order_id: ("completed" if isinstance(e, OrderCompleted) else e.reason)
        for e in sim.events()
        if isinstance(e, OrderCompleted | OrderFailed)
    }
    for p in planned:
        got = ends[p.command.order_id]
        # Only hub-east's two drones can run out for an order designed to complete.
        assert got == p.intent or (got, p.command.hub) == ("NO_DRONE", "hub-east"), (p, got)
    assert audit(sim.events()).ok
    assert hubs_without_drones() == ["hub-west"]


def test_every_service_loads_and_every_type_is_known_once() -> None:
    types = all_event_types()
    assert len(types) == len(set(types)) == 28
    for name in SERVICE_NAMES:
        service = load_service(name)
        assert service.name == name and set(service.emits) - {TimerFired} <= set(types)
        for accepted in service.inputs.values():
            assert set(accepted) <= set(types)
    with pytest.raises(ConfigurationError, match="unknown service"):
        load_service("billing")
