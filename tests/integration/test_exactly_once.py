"""The toy two-service pipeline on the real broker: exactly once, across crashes and take-overs."""

from __future__ import annotations

import collections
import sqlite3

import pytest

from harness.processes import wait_until
from tests.support.toy_pipeline import ToyPipeline

pytestmark = pytest.mark.integration


def _assert_exactly_once(pipe: ToyPipeline, n: int) -> None:
    counted = pipe.counted()
    causes = collections.Counter(r.event.causation_id for r in counted)
    dupes = {c: k for c, k in causes.items() if k > 1}
    assert not dupes, f"duplicated outputs for inputs {list(dupes)[:5]}"
    assert len(counted) == n
    # Totals are computed from local state: a lost or doubled state update shows up here.
    last = {}
    for r in counted:
        last[r.event.hub] = r.event.total
    assert last == pipe.expected_totals()
    doubled = pipe.doubled()
    assert len(doubled) == n
    assert len({r.event.causation_id for r in doubled}) == n


def test_two_services_process_every_record_exactly_once(toy: ToyPipeline) -> None:
    n = 600
    toy.produce_numbers(n)
    counter = toy.start("counter", "a")
    doubler = toy.start("doubler", "a")
    wait_until(lambda: len(toy.doubled()) >= n, 120, f"{n} doubled sums")
    assert counter.stop() == 0 and doubler.stop() == 0
    _assert_exactly_once(toy, n)
    assert toy.rebuild_verify("counter").returncode == 0
    assert toy.rebuild_verify("doubler").returncode == 0
    # Alter one document behind the store's back: the verify must notice.
    store_file = next((toy.state_dir).rglob("counter/p*.sqlite"))
    with sqlite3.connect(store_file) as db:
        db.execute("UPDATE docs SET value = '{\"total\":-1}' WHERE tbl = 'totals'")
    tampered = toy.rebuild_verify("counter")
    assert tampered.returncode == 1, tampered.stdout
    assert "MISMATCH" in tampered.stdout


@pytest.mark.parametrize("point", ["before_kafka_commit", "after_kafka_commit"])
def test_crash_at_a_commit_boundary_loses_and_doubles_nothing(toy: ToyPipeline, point: str) -> None:
    n = 400
    toy.produce_numbers(n)
    _crash_then_finish(toy, n, point, batch_size=50)


def _crash_then_finish(toy: ToyPipeline, n: int, point: str, batch_size: int) -> None:
    """Kill -9 the counter at `point` after 2 committed batches, restart it: every input of the
    `n` is counted once, and the store still is the fold of its log."""
    crashing = toy.start(
        "counter", "a", CHOREO_FAULT_POINT=point, CHOREO_FAULT_AFTER_BATCHES="2",
        CHOREO_BATCH_SIZE=str(batch_size),
    )
    code = crashing.wait(120)
    assert code == -9, f"the fault hook should kill -9 the worker, got {code}: {crashing.log()[-2000:]}"
    counter = toy.start("counter", "a", CHOREO_BATCH_SIZE=str(batch_size))
    doubler = toy.start("doubler", "a")
    wait_until(lambda: len(toy.doubled()) >= n, 120, f"{n} doubled sums after restart")
    wait_until(lambda: toy.input_committed("counter", "counter.commands"), 60,
               "every command's offset committed")
    assert counter.stop() == 0 and doubler.stop() == 0
    _assert_exactly_once(toy, n)
    verify = toy.rebuild_verify("counter")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_survivor_takes_over_a_killed_instance_and_restores_its_state(toy: ToyPipeline) -> None:
    n = 600
    a = toy.start("counter", "a", CHOREO_STATE_DIR=str(toy.state_dir / "a"), CHOREO_BATCH_SIZE="20")
    b = toy.start("counter", "b", CHOREO_STATE_DIR=str(toy.state_dir / "b"), CHOREO_BATCH_SIZE="20")
    wait_until(lambda: "assigned" in a.log() and "assigned" in b.log(), 60, "both instances assigned")
    toy.produce_numbers(n // 2)
    wait_until(lambda: len(toy.counted()) >= n // 2, 120, "the first half counted")
    assert a.kill9() == -9
    toy.produce_numbers(n // 2)
    wait_until(lambda: len(toy.counted()) >= n, 120, "the second half counted by the survivor")
    assert b.alive()
    doubler = toy.start("doubler", "a")
    wait_until(lambda: len(toy.doubled()) >= n, 120, "every sum doubled")
    assert b.stop() == 0 and doubler.stop() == 0
    _assert_exactly_once(toy, n)
    assert "restored" in b.log(), "the survivor should have restored the taken-over partitions"


def test_same_transactional_id_fences_the_older_instance(toy: ToyPipeline) -> None:
    n = 400
    first = toy.start("counter", "a", CHOREO_BATCH_SIZE="10")
    toy.produce_numbers(n // 2)
    wait_until(lambda: len(toy.counted()) >= 50, 120, "the first instance working")
    second = toy.start("counter", "a", CHOREO_BATCH_SIZE="10")
    toy.produce_numbers(n // 2)
    code = first.wait(120)
    assert code == 1, f"the fenced instance should stop with exit 1, got {code}"
    assert "Traceback" not in first.log()
    wait_until(lambda: len(toy.counted()) >= n, 120, "the new instance finishing the input")
    doubler = toy.start("doubler", "a")
    wait_until(lambda: len(toy.doubled()) >= n, 120, "every sum doubled")
    assert second.stop() == 0 and doubler.stop() == 0
    _assert_exactly_once(toy, n)


def test_offsets_of_records_that_write_nothing_are_committed_once_the_input_is_quiet(
    toy: ToyPipeline,
) -> None:
    """A batch that writes nothing leaves its offsets for a later transaction; when none comes,
    the worker commits them alone: no lag is left standing on a quiet input."""
    n = 200
    commands = toy.produce_numbers(n)
    counter = toy.start("counter", "a")
    wait_until(lambda: len(toy.counted()) >= n, 120, f"{n} counted")
    toy.resend(commands)  # duplicates: the counter decides nothing for any of them
    wait_until(lambda: toy.input_committed("counter", "counter.commands"), 60,
               "the duplicates' offsets committed while the worker runs")
    assert counter.alive()
    assert counter.stop() == 0
    assert len(toy.counted()) == n


def test_a_crash_while_offsets_are_carried_loses_and_doubles_nothing(toy: ToyPipeline) -> None:
    n = 300
    for _ in range(n // 10):
        toy.resend(toy.produce_numbers(10))  # each command twice: the copies write nothing
    _crash_then_finish(toy, n, "offsets_carried", batch_size=4)
