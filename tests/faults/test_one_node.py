"""The saga under faults on one broker: broker and registry loss, worker kills, rebalance storms,
a hostile command, damaged stores and a wedged worker. Nobody restarts anything by hand."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from choreo.runtime.store import lock_store, state_dir_of
from choreo.stack import processes
from harness.processes import ChildProcess, wait_until, worker_children
from producers import commands, seed
from producers.report import saga_events
from tests.faults.conftest import KillableStack
from tests.support import fault_injection as faults
from tests.support.fault_saga import RESULTS, FaultySaga, assert_clean

pytestmark = pytest.mark.integration


@pytest.fixture()
def saga(one_node: KillableStack, topic_prefix: str, tmp_path: Path) -> Iterator[FaultySaga]:
    run = FaultySaga(one_node.bootstrap_servers, one_node.schema_registry_url, topic_prefix, tmp_path)
    yield run
    run.close()


def test_broker_killed_and_restarted(saga: FaultySaga, one_node: KillableStack) -> None:
    saga.start_supervised()

    def inject() -> None:
        faults.kill_component(one_node.layout, "kafka-1")
        faults.bring_back(one_node.layout)

    # The broker's own restart (a JVM, about 10 s here) is the fault; the seconds count from
    # its return.
    assert_clean(saga.run_scenario("1 node: broker kill -9, restarted", inject, from_repair=True))


# FAULT_ROUNDS=10 runs the scenario ten times on one stack (each on topics of its own).
@pytest.mark.parametrize("round_", range(1, int(os.environ.get("FAULT_ROUNDS", "1")) + 1))
def test_broker_killed_then_registry_stopped_under_load(
    saga: FaultySaga, one_node: KillableStack, round_: int
) -> None:
    """1,000 orders at 100/s; 3 s in, the broker is killed and started again 10 s later, then
    the registry is stopped for 15 s. Every saga ends, or they wait behind a hanging transaction
    that its owner reports; resumed counts from the registry's return."""
    saga.start_supervised()
    first = saga.wave(100)
    saga.wait_ended(first, 240)
    load, placed = saga.load(1000, rate=100)
    wait_until(lambda: len(placed) >= 300, 60, "3 s of load placed")
    killed_at = time.monotonic()
    saga.mark("fault: broker kill -9")
    faults.kill_component(one_node.layout, "kafka-1")
    wait_until(lambda: time.monotonic() - killed_at >= 10, 20, "the broker down for 10 s")
    faults.bring_back(one_node.layout)
    back_at = time.monotonic()
    saga.mark("broker back; registry stopped")
    processes.stop(one_node.layout, ["registry"], grace_seconds=10)
    wait_until(lambda: time.monotonic() - back_at >= 15, 30, "the registry down for 15 s")
    faults.bring_back(one_node.layout)
    registry_back_at = time.monotonic()
    saga.mark("registry back")
    load.join(120)
    assert not load.is_alive(), "the load did not finish placing its orders"
    after_kill = [order for at, order in placed if at >= killed_at]
    order_ids = [order for _, order in placed]
    name = "1 node: broker kill, registry stop, under load"
    recovery = 0.0
    try:
        # Seconds from the end of the last fault: while the registry is down, a restarted
        # worker (the broker's return can wedge a call, see the timeline) cannot read its input.
        if after_kill:
            recovery = saga.first_end_after(after_kill, registry_back_at, 120)
        saga.wait_ended(order_ids, 300)
    except AssertionError as stalled:
        # Kafka can lose the markers of a transaction that was being committed or aborted when
        # its only broker died (docs/adr/0006-nothing-stalls.md, 7): its partition's readers
        # wait for ever. No worker can end it; the one that owns the topic must say so, for
        # exactly the partitions that hang, with the command that ends them.
        stuck, reported = saga.stuck_partitions(), saga.hanging_reported()
        assert stuck and reported == stuck, f"sagas stalled, and not for a reported reason: {stalled}"
        result = saga.verdict(
            f"{name}: stalled behind a reported hanging transaction", first + order_ids,
            recovery or time.monotonic() - registry_back_at, stalled=True,
        )
        RESULTS.append(result)
        # Stalled, yet exactly once: nothing doubled, no invariant broken by what did end.
        assert (result.duplicates, result.violations) == (0, 0), result
        return
    saga.stop_supervised()
    result = saga.verdict(name, first + order_ids, recovery)
    RESULTS.append(result)
    assert_clean(result)


def test_registry_down_for_15_seconds(saga: FaultySaga, one_node: KillableStack) -> None:
    saga.start_supervised()
    back: list[threading.Thread] = []

    def inject() -> None:
        processes.stop(one_node.layout, ["registry"], grace_seconds=0)
        back.append(faults.later(15, lambda: faults.bring_back(one_node.layout)))

    result = saga.run_scenario(
        "1 node: registry down 15 s", inject, after_fault=lambda: back[0].join(120)
    )
    assert_clean(result)


def test_workers_killed_again_and_again(saga: FaultySaga) -> None:
    saga.start_supervised()
    killer: list[threading.Thread] = []

    def inject() -> None:
        assert saga.supervisor is not None
        killer.append(faults.keep_killing_workers(saga.supervisor.pid, times=6, every_s=3))

    result = saga.run_scenario(
        "workers SIGKILLed 6 times, 3 s apart", inject, after_fault=lambda: killer[0].join(60)
    )
    assert_clean(result)
    assert saga.run_log.read_text().count("exited with -9") >= 6


def test_rebalance_storm(saga: FaultySaga) -> None:
    saga.start_supervised()
    storm: list[threading.Thread] = []
    unclean: list[str] = []  # logs of extra instances that did not stop with exit code 0

    def extra_instances() -> None:
        for round_ in range(2):
            extra = [
                saga.start(service, instance=str(1 + round_))
                for service in ("orders", "packaging", "drones", "delivery")
            ]
            def all_started(extra: list[ChildProcess] = extra) -> bool:
                return all(" started: inputs=" in w.log() for w in extra)

            wait_until(all_started, 60, "extras up")
            for w in extra:
                if w.stop(90) != 0:
                    unclean.append(w.log()[-2000:])

    def inject() -> None:
        storm.append(threading.Thread(target=extra_instances, daemon=True))
        storm[0].start()

    result = saga.run_scenario(
        "rebalance storm: 4 extra instances, twice", inject, after_fault=lambda: storm[0].join(300)
    )
    assert_clean(result)
    assert not storm[0].is_alive() and not unclean, unclean


def test_hostile_oversized_command_then_200_orders(saga: FaultySaga) -> None:
    saga.start_supervised()
    north = "hub-north"
    hostile = commands.place_order(
        north + "\x00" * 240_000, seed.stocked_skus(north)[0], 1,
        seed.deliverable_addresses(north)[0], datetime.now(UTC),
    )
    result = saga.run_scenario(
        "hostile 240 kB command, then 200 orders", lambda: saga.send([hostile])
    )
    assert_clean(result)
    rejected = [
        r.event for r in saga.events("orders") if type(r.event).__name__ == "OrderRejected"
        and r.event.causation_id == hostile.event_id
    ]
    dead = saga.raw("orders.dlq")
    assert [e.reason for e in rejected] == ["FIELD_TOO_LONG"] or len(dead) == 1


def test_damaged_stores_heal_from_the_log(saga: FaultySaga) -> None:
    saga.start_supervised()
    services = ("packaging", "drones")
    folders = [state_dir_of(saga.settings) / service for service in services]
    damaged: list[str] = []

    def inject() -> None:
        # Hold every store's lock from the moment the workers die, so the restarted workers
        # wait for the damage to be done, then find it when they open their stores.
        assert saga.supervisor is not None
        paths = sorted(p for folder in folders for p in folder.glob("p*.sqlite"))
        for service in services:
            faults.kill_worker(saga.supervisor.pid, service)
        locks = [lock_store(p, 30) for p in paths]
        damaged.extend(faults.damage_stores(paths))
        for lock in locks:
            lock.close()

    result = saga.run_scenario("damaged stores: junk, cut, broken JSON", inject)
    assert_clean(result)
    kinds = {line.split(": ", 1)[1] for line in damaged}
    assert kinds == {"junk header", "cut in half", "broken JSON"}, damaged
    moved = [p for folder in folders for p in folder.glob("p*.sqlite.damaged-*")]
    assert len(moved) >= len(damaged)  # each damaged file kept for inspection


def test_a_wedged_send_offsets_is_left_behind_and_the_batch_redone_on_new_producers(
    saga: FaultySaga, tmp_path: Path
) -> None:
    armed_marker = tmp_path / "wedge-fired"
    armed_marker.touch()  # present = disarmed; the fault fires once it is removed
    saga.start_supervised(
        CHOREO_FAULT_POINT="wedge:send_offsets_to_transaction",
        CHOREO_FAULT_ONCE_FILE=str(armed_marker),
    )
    result = saga.run_scenario("worker wedged in send_offsets (producers renewed)", armed_marker.unlink)
    assert_clean(result)
    log = saga.run_log.read_text()
    assert "renewing the transactional producers: send_offsets_to_transaction has not returned" in log
    # No restart was needed: the worker went on with new producers.
    assert "exited with 3" not in log and result.watchdog_exits == 0


def test_a_participant_down_for_longer_than_the_deadline(saga: FaultySaga) -> None:
    """drones stopped (SIGSTOP) for 30 s while orders with a 15 s deadline arrive: every order
    ends once (those waiting at drones with DEADLINE, compensated), with nobody restarted by
    hand; once drones resumes (or is restarted, fenced), what it assigns to those ended sagas
    is sent back, and the log passes the audit."""
    saga.start_supervised()
    back: list[threading.Thread] = []

    def inject() -> None:
        assert saga.supervisor is not None
        drones = worker_children(saga.supervisor.pid)["drones"]
        os.kill(drones, signal.SIGSTOP)
        back.append(faults.later(30, lambda: os.kill(drones, signal.SIGCONT)))

    def after_fault() -> None:
        back[0].join(60)
        saga.wait_settled(120)

    result = saga.run_scenario(
        "drones SIGSTOP 30 s, orders' deadline 15 s", inject, after_fault=after_fault, deadline_s=15,
    )
    assert_clean(result)
    reasons = Counter(getattr(e, "reason", None) for e in saga_events(saga.settings)
                      if type(e).__name__ == "OrderFailed")
    assert reasons["DEADLINE"] > 0, reasons
