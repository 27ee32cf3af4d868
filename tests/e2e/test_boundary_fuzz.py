"""Boundary fuzz on the real stack: while valid orders flow, hostile records of every kind reach
every command and event topic (raw bytes, hostile values, misrouted keys, ids with the key
separator). No valid order may be lost, doubled or stalled, every refused record is dead-lettered
by each service that reads it, and the audit is clean and says what was refused.

The plan is drawn once by Hypothesis from a fixed seed (tests/support/boundary_fuzz.py), so a
failure reproduces; the four workers run once, with their shipped defaults, for the whole plan.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from choreo.exceptions import ChoreoError
from consumers.domain import SAGA_ENDS
from consumers.orders.events import OrderPlaced, OrderRejected, PlaceOrder
from tests.support.boundary_fuzz import Plan, draw_plan
from tests.support.fuzz_shots import Landed, ShotProducer, missing_dead_letters
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.e2e

# Sagas end within seconds; these bounds are what "nothing stalls" means here.
ENDS_WITHIN_S = 75
LAST_ENDS_WITHIN_S = 45
DEAD_LETTERED_WITHIN_S = 30
# The heading under which the audit lists what the services refused.
REFUSAL_REPORT = re.compile(r"refused records", re.IGNORECASE)


def test_hostile_records_on_every_topic_lose_double_and_stall_no_valid_order(
    saga: SagaRun, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = draw_plan(saga.settings.partitions)
    with capsys.disabled():
        print(f"\n{_tried(plan)}")
    saga.seed(datetime.now(UTC))
    saga.start_all()

    shooter = ShotProducer(saga.settings, saga.codec)
    landed = shooter.send(plan.before)
    saga.send(plan.first)
    landed += shooter.send(plan.hostile)
    saga.send(plan.second)
    problems = _not_ended(saga, [*plan.first, *plan.second], ENDS_WITHIN_S)
    # After every hostile record: one more batch on every partition must still get through.
    saga.send(plan.last)
    problems += _not_ended(saga, plan.last, LAST_ENDS_WITHIN_S)
    problems += _not_dead_lettered(saga, landed)
    problems += _workers_that_did_not_stop_cleanly(saga)

    orders_log = [r.event for r in saga.events("orders") if r.event is not None]
    problems += _not_once(orders_log, plan.valid)
    problems += _ended_by_a_twin(orders_log, plan.separated)
    audit = saga.choreo("audit")
    report = audit.stdout + audit.stderr
    if audit.returncode != 0 or "VIOLATED" in audit.stdout:
        problems.append(f"the audit is not clean (exit {audit.returncode}):\n{report}")
    elif not REFUSAL_REPORT.search(audit.stdout):
        problems.append(f"the audit does not say what was refused:\n{report}")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


def _tried(plan: Plan) -> str:
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(plan.kinds().items()))
    return (f"boundary fuzz tried {len(plan.valid)} valid orders and "
            f"{sum(plan.kinds().values())} hostile records: {kinds}")


def _not_ended(saga: SagaRun, orders: list[PlaceOrder], within_s: float) -> list[str]:
    try:
        saga.wait_for_ends([o.order_id for o in orders], timeout=within_s)
    except ChoreoError as e:
        return [f"valid orders stalled for {within_s:.0f}s: {e}"]
    return []


def _not_dead_lettered(saga: SagaRun, landed: list[Landed]) -> list[str]:
    deadline = time.monotonic() + DEAD_LETTERED_WITHIN_S
    while (missing := missing_dead_letters(saga.settings, landed)) and time.monotonic() < deadline:
        time.sleep(1)  # polling interval, not synchronisation: the deadline decides
    if len(missing) > 10:
        return [*missing[:10], f"... and {len(missing) - 10} more refused records not dead-lettered"]
    return missing


def _workers_that_did_not_stop_cleanly(saga: SagaRun) -> list[str]:
    problems = []
    for w in saga.workers:
        code = w.stop() if w.alive() else w.wait()
        if code != 0:
            problems.append(f"{w.name} exited {code} during the run:\n{w.tail()}")
    return problems


def _not_once(orders_log: Iterable[object], valid: list[PlaceOrder]) -> list[str]:
    """Each valid order answered once (placed or rejected) and ended once, on the orders topic."""
    answers: Counter[tuple[str, str]] = Counter()
    ends: Counter[tuple[str, str]] = Counter()
    for e in orders_log:
        saga_of = (getattr(e, "hub", ""), getattr(e, "order_id", ""))
        answers[saga_of] += isinstance(e, OrderPlaced | OrderRejected)
        ends[saga_of] += type(e) in SAGA_ENDS
    return [
        f"{o.order_id} at {o.hub}: answered {answers[(o.hub, o.order_id)]} times, "
        f"ended {ends[(o.hub, o.order_id)]} times"
        for o in valid if answers[(o.hub, o.order_id)] != 1 or ends[(o.hub, o.order_id)] != 1
    ]


def _ended_by_a_twin(orders_log: Iterable[object], separated: list[PlaceOrder]) -> list[str]:
    """An order whose id holds the separator completes (or is refused for its id): its twin, a
    record of hub "hub-north/<tag>" about order "<rest>", must never fail or cancel it."""
    ends = {(getattr(e, "hub", ""), getattr(e, "order_id", "")): SAGA_ENDS[type(e)]
            for e in orders_log if type(e) in SAGA_ENDS}
    return [
        f"{o.order_id} at {o.hub} ended {ends[(o.hub, o.order_id)]}: its twin reached it"
        for o in separated if ends.get((o.hub, o.order_id), "completed") not in ("completed", "rejected")
    ]
