"""Sagas held open: the marks `evolve` sets and clears, the worker's look at the oldest, and the
gauge that keeps ageing between looks. Broker-free; clocks are values, no test waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest

from choreo.contract import in_flight_since, saga_ended, saga_started
from choreo.in_flight import IN_FLIGHT, SINCE, count_in_flight, oldest_in_flight_ms
from choreo.runtime.metrics import WorkerMetrics
from choreo.runtime.saga_ages import SagaAges
from choreo.testing import MemoryState, fire_due, handle
from choreo.timers import to_ms
from consumers.drones.service import SERVICE as DRONES
from consumers.reference import DEFAULT_DRONE_WAIT_S, drone_wait_s
from consumers.saga import saga_key
from producers.commands import register_drone
from tests.support.fake_clock import FakeClock
from tests.support.records import T0
from tests.unit.test_drones_queue import delivered, package


@pytest.fixture()
def store(state_store: Any) -> Any:
    return state_store  # both stores (tests/support/stores.py)


def at(seconds: float) -> Any:
    return T0 + timedelta(seconds=seconds)


def test_the_oldest_saga_held_is_one_indexed_row_and_ending_it_moves_to_the_next(store: Any) -> None:
    assert oldest_in_flight_ms(store) is None and count_in_flight(store) == 0
    saga_started(store, "hub/b", at(20))
    saga_started(store, "hub/a", at(10))
    saga_started(store, "hub/c", at(30))
    assert oldest_in_flight_ms(store) == to_ms(at(10))
    assert count_in_flight(store) == 3
    saga_ended(store, "hub/a")
    assert oldest_in_flight_ms(store) == to_ms(at(20))
    assert in_flight_since(store, "hub/a") is None
    assert in_flight_since(store, "hub/b") == at(20)


def test_a_saga_marked_again_keeps_the_time_it_was_first_held(store: Any) -> None:
    saga_started(store, "s", at(10))
    saga_started(store, "s", at(50))  # queued at 10, got its drone at 50: held since 10
    assert in_flight_since(store, "s") == at(10)
    assert sum(1 for _ in store.scan(SINCE)) == 1


def test_ending_a_saga_not_held_changes_nothing(store: Any) -> None:
    saga_ended(store, "never")
    saga_started(store, "s", at(1))
    saga_ended(store, "s")
    saga_ended(store, "s")
    assert list(store.scan(IN_FLIGHT)) == [] and list(store.scan(SINCE)) == []


def test_separators_and_odd_characters_in_a_saga_key_do_not_break_the_index(store: Any) -> None:
    keys = ["a/b", "a%2Fb", "%", "/", "ü/ß", "x" * 300]
    for i, key in enumerate(keys):
        saga_started(store, key, at(i))
    assert {k for k, _ in store.scan(IN_FLIGHT)} == set(keys)
    for key in keys[:-1]:
        saga_ended(store, key)
    assert oldest_in_flight_ms(store) == to_ms(at(len(keys) - 1))


def test_a_naive_start_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        saga_started(MemoryState(), "s", at(0).replace(tzinfo=None))


def test_the_gauge_ages_between_looks_and_reads_zero_when_nothing_is_held() -> None:
    wall, clock = FakeClock(to_ms(at(100)) / 1000), FakeClock()
    ages = SagaAges(every_s=1.0, count_every_s=5.0, wall=wall, clock=clock)
    p0, p1 = MemoryState(), MemoryState()
    saga_started(p0, "late", at(90))
    saga_started(p1, "early", at(40))
    ages.check({0: p0, 1: p1})
    assert ages.oldest_age_s() == 60 and ages.in_flight == 2
    wall.advance(30)  # no look: a stuck saga keeps ageing while no input arrives
    assert ages.oldest_age_s() == 90
    saga_ended(p1, "early")
    clock.advance(0.5)
    ages.check({0: p0, 1: p1})  # too soon to look again
    assert ages.oldest_age_s() == 90
    clock.advance(0.5)
    ages.check({0: p0, 1: p1})
    assert ages.oldest_age_s() == 40
    assert ages.in_flight == 2  # counted every 5 s only
    clock.advance(5)
    ages.check({0: p0})  # partition 1 was revoked: its sagas are its new owner's
    assert (ages.oldest_age_s(), ages.in_flight) == (40, 1)
    saga_ended(p0, "late")
    clock.advance(5)
    ages.check({0: p0})
    assert (ages.oldest_age_s(), ages.in_flight) == (0, 0)


def test_the_metrics_endpoint_reads_the_age_at_each_scrape() -> None:
    wall = FakeClock(to_ms(at(100)) / 1000)
    ages = SagaAges(wall=wall, clock=FakeClock())
    metrics = WorkerMetrics("orders")
    metrics.follow_sagas(ages)
    state = MemoryState()
    saga_started(state, "s", at(70))
    ages.check({0: state})
    age = 'choreo_oldest_saga_age_seconds{service="orders"}'
    assert f"{age} 30.0" in generate_latest(metrics.registry).decode()
    wall.advance(15)
    scraped = generate_latest(metrics.registry).decode()
    assert f"{age} 45.0" in scraped
    assert 'choreo_sagas_in_flight{service="orders"} 1.0' in scraped


@pytest.fixture
def fresh_wait() -> Iterator[None]:
    drone_wait_s.cache_clear()
    yield
    drone_wait_s.cache_clear()


@pytest.mark.usefixtures("fresh_wait")
def test_drones_hold_a_saga_from_its_place_in_the_queue_until_its_drone_is_back() -> None:
    state = MemoryState()
    handle(DRONES, state, register_drone("hub-north", "drone-01", T0))
    (first,) = handle(DRONES, state, package("o1", at_s=0))
    handle(DRONES, state, package("o2", at_s=5))  # queued: no drone free
    assert in_flight_since(state, saga_key("hub-north", "o2")) == at(5)
    (_, served) = handle(DRONES, state, delivered(first))  # drone back: o2 takes it
    assert count_in_flight(state) == 1  # o1 let go, o2 still held ...
    assert in_flight_since(state, saga_key("hub-north", "o2")) == at(5)  # ... since it queued
    handle(DRONES, state, delivered(served))
    assert count_in_flight(state) == 0


@pytest.mark.usefixtures("fresh_wait")
def test_drones_let_go_of_a_package_whose_wait_ended() -> None:
    state = MemoryState()
    handle(DRONES, state, register_drone("hub-north", "drone-01", T0))
    handle(DRONES, state, package("o1"))
    handle(DRONES, state, package("o2"))
    assert count_in_flight(state) == 2
    fire_due(DRONES, state, at(DEFAULT_DRONE_WAIT_S + 1))  # o2's wait ends: DroneUnavailable
    assert in_flight_since(state, saga_key("hub-north", "o2")) is None
    assert in_flight_since(state, saga_key("hub-north", "o1")) == at(0)  # still in the air
