"""Edge builders, the seed and the load plan: valid commands, designed outcomes, reproducible."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

import pytest

from choreo.exceptions import ConfigurationError
from consumers.audit import audit
from consumers.orders.events import OrderCompleted, OrderFailed
from producers.commands import place_order
from producers.load_plan import plan_orders
from producers.seed import fleet_commands, hubs_without_drones, stock_commands
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
    assert len(types) == len(set(types)) == 25
    for name in SERVICE_NAMES:
        service = load_service(name)
        assert service.name == name and set(service.emits) <= set(types)
        for accepted in service.inputs.values():
            assert set(accepted) <= set(types)
    with pytest.raises(ConfigurationError, match="unknown service"):
        load_service("billing")
