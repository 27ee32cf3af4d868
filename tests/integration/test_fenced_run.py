"""A second `choreo run` on the same state folder fences the first one's workers: each fenced
worker stops with one ERROR line, never a traceback (it used to end in `SystemError: <method
'code' of KafkaError> returned a result with an exception set` while closing)."""

from __future__ import annotations

import re
import time

import pytest

from harness.processes import ChildProcess, start_run
from tests.support.toy_pipeline import ToyPipeline

pytestmark = pytest.mark.integration

# `choreo run` prefixes each worker line: "counter/0 | exited with 1 (stopped on an error); ..."
EXITED = re.compile(r"^(\w+)/\d+ +\| exited with 1\b", re.M)


def _fenced_exits(run: ChildProcess) -> set[str]:
    return set(EXITED.findall(run.log()))


def test_workers_fenced_by_a_second_run_stop_in_one_sentence(toy: ToyPipeline) -> None:
    first = start_run(toy.settings, toy.log_dir / "first-run.log", toy.domains)
    toy.produce_numbers(100)
    # Started once the first run works: its workers hold transactions and stores by then.
    deadline = time.monotonic() + 120
    while len(toy.counted()) < 50:
        assert time.monotonic() < deadline, f"the first run counted nothing:\n{first.tail()}"
        toy.produce_numbers(10)
    second = start_run(toy.settings, toy.log_dir / "second-run.log", toy.domains)
    try:
        # Input keeps coming, so the first run's workers are fenced inside a transaction with
        # deliveries queued: the case where closing used to crash.
        deadline = time.monotonic() + 120
        while _fenced_exits(first) != {"counter", "doubler"}:
            assert time.monotonic() < deadline, (
                f"the first run's workers were not fenced:\n{first.tail(60)}"
            )
            toy.produce_numbers(20)
    finally:
        second.stop()
        first.stop()
    for run in (first, second):
        log = run.log()
        assert "Traceback" not in log and "SystemError" not in log, log[-6000:]
    log = first.log()
    for service in ("counter", "doubler"):
        said = re.findall(rf"^{service}/\d+ +\| .* ERROR .*$", log, re.M)
        # Either sentence names the cause: the producer's fencing, or the worker's own summary.
        assert said and all("fenced" in line or "took over" in line for line in said), log[-6000:]
