"""The watchdog: deadlines on guarded calls and on stop requests, in-process and in real processes."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from choreo.runtime import calls
from choreo.runtime.faults import FaultInjector
from choreo.runtime.watchdog import EXIT_WEDGED, NoWatchdog, Watchdog
from harness.paths import REPO
from harness.processes import wait_until
from tests.support.fake_clock import FakeClock


class FakeExit:
    def __init__(self) -> None:
        self.codes: list[int] = []

    def __call__(self, code: int) -> None:
        self.codes.append(code)


def _watchdog(clock: FakeClock, grace_s: float = 2.0, stop_grace_s: float = 5.0) -> Watchdog:
    return Watchdog(grace_s=grace_s, stop_grace_s=stop_grace_s, tick_s=0.01, exit_process=FakeExit(),
                    clock=clock)


# -- check() with an injected clock ------------------------------------------------------------


def test_no_call_and_no_stop_means_no_verdict() -> None:
    clock = FakeClock()
    wd = _watchdog(clock)
    clock.advance(1e6)
    assert wd.check() is None


def test_guarded_call_is_fine_until_timeout_plus_grace_then_named() -> None:
    clock = FakeClock()
    wd = _watchdog(clock, grace_s=2.0)
    with wd.guard("send_offsets_to_transaction", 10.0):
        clock.advance(11.9)
        assert wd.check() is None  # past the call's own timeout, still inside the grace
        clock.advance(0.1)
        assert wd.check() is None  # exactly on the deadline is not past it
        clock.advance(0.2)
        verdict = wd.check()
    assert verdict is not None
    assert "send_offsets_to_transaction" in verdict
    assert "12 s" in verdict
    assert wd.check() is None  # the call returned: nothing is overdue any more


def test_a_call_given_its_own_grace_is_ended_by_that_one() -> None:
    clock = FakeClock()
    wd = _watchdog(clock, grace_s=30.0)
    with wd.guard("send_offsets_to_transaction", 3.0, grace_s=2.0):
        clock.advance(5.0)
        assert wd.check() is None
        clock.advance(0.1)
        verdict = wd.check()
    assert verdict is not None and "send_offsets_to_transaction" in verdict


def test_a_returned_call_leaves_no_deadline_behind() -> None:
    clock = FakeClock()
    wd = _watchdog(clock)
    with wd.guard("flush", 1.0):
        clock.advance(0.5)
    clock.advance(100)
    assert wd.check() is None


def test_guard_ends_even_when_the_body_raises() -> None:
    clock = FakeClock()
    wd = _watchdog(clock)
    with pytest.raises(RuntimeError), wd.guard("produce", 1.0):
        raise RuntimeError("boom")
    clock.advance(100)
    assert wd.check() is None


def test_nested_guard_restarts_the_outer_clock_when_it_ends() -> None:
    clock = FakeClock()
    wd = _watchdog(clock, grace_s=2.0)
    with wd.guard("consume", 10.0):  # deadline 12 s from now
        clock.advance(5)
        with wd.guard("restore", 100.0):  # e.g. the assignment callback inside consume()
            clock.advance(50)  # far past consume's original deadline
            assert wd.check() is None  # only the innermost call of a thread is watched
        # restore returned at t=55: consume has 12 s again from here, not from t=0
        clock.advance(11.5)
        assert wd.check() is None
        clock.advance(1.0)
        verdict = wd.check()
        assert verdict is not None and verdict.startswith("consume ")
        assert "restore" not in verdict


def test_inner_guard_overrunning_is_named_not_the_outer() -> None:
    clock = FakeClock()
    wd = _watchdog(clock, grace_s=1.0)
    with wd.guard("consume", 100.0), wd.guard("list_topics", 2.0):
        clock.advance(3.5)
        verdict = wd.check()
    assert verdict is not None and verdict.startswith("list_topics ")


def test_stop_request_is_fine_within_stop_grace_then_reported() -> None:
    clock = FakeClock()
    wd = _watchdog(clock, stop_grace_s=5.0)
    wd.stop_requested()
    clock.advance(5.0)
    assert wd.check() is None
    clock.advance(0.5)
    verdict = wd.check()
    assert verdict is not None and "asked to stop" in verdict


def test_stop_deadline_starts_at_the_first_request() -> None:
    clock = FakeClock()
    wd = _watchdog(clock, stop_grace_s=5.0)
    wd.stop_requested()
    clock.advance(4)
    wd.stop_requested()  # a second SIGTERM does not push the deadline back
    clock.advance(2)
    assert wd.check() is not None


def test_stop_verdict_names_the_call_still_running() -> None:
    clock = FakeClock()
    wd = _watchdog(clock, grace_s=1000.0, stop_grace_s=5.0)
    with wd.guard("flush", 1000.0):
        wd.stop_requested()
        clock.advance(6)
        verdict = wd.check()
    assert verdict is not None
    assert "asked to stop" in verdict and "inside flush" in verdict


def test_no_watchdog_never_fires() -> None:
    clock = FakeClock()
    exits = FakeExit()
    wd = NoWatchdog(grace_s=0, stop_grace_s=0, exit_process=exits, clock=clock)
    wd.start()
    with wd.guard("send_offsets_to_transaction", 0):
        wd.stop_requested()
        clock.advance(1e6)
        assert wd.check() is None
    wd.close()
    assert exits.codes == []
    assert wd.fired is None


def test_thread_calls_exit_once_with_the_verdict() -> None:
    clock = FakeClock()
    exits = FakeExit()
    # The fake clock jumps 2.5 s between two ticks: not a stopped process here.
    wd = Watchdog(grace_s=1.0, stop_grace_s=1.0, tick_s=0.01, exit_process=exits, clock=clock,
                  frozen_after_s=10.0)
    wd.start(watch_signals=False)
    try:
        with wd.guard("committed", 1.0):
            clock.advance(2.5)
            pause = threading.Event()  # never set: a bounded wait between polls
            deadline = time.monotonic() + 5
            while not exits.codes and time.monotonic() < deadline:
                pause.wait(0.01)  # poll the fake exit, bounded
    finally:
        wd.close()
    assert exits.codes == [EXIT_WEDGED]
    assert wd.fired is not None and "committed" in wd.fired


def test_thread_stays_quiet_inside_the_deadline() -> None:
    clock = FakeClock()
    exits = FakeExit()
    wd = Watchdog(grace_s=1.0, stop_grace_s=1.0, tick_s=0.01, exit_process=exits, clock=clock)
    wd.start(watch_signals=False)
    try:
        with wd.guard("committed", 1.0):
            clock.advance(1.5)
            # many ticks pass on the real clock; the fake one says we are inside the deadline
            pause = threading.Event()
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                assert not exits.codes
                pause.wait(0.01)
    finally:
        wd.close()
    assert exits.codes == [] and wd.fired is None


def test_time_the_process_was_stopped_is_not_held_against_a_call() -> None:
    # SIGSTOP for 30 s inside a call with a 6 s deadline: the first tick after SIGCONT comes 30 s
    # late. Before, whether the call returned before that tick decided between a healthy worker
    # and an exit 3.
    clock = FakeClock()
    wd = Watchdog(grace_s=5.0, tick_s=0.5, exit_process=FakeExit(), clock=clock)
    wd.ticked()
    with wd.guard("consume", 1.0):
        clock.advance(0.5)
        assert wd.ticked() == 0.0
        clock.advance(30.5)  # stopped
        assert wd.ticked() == pytest.approx(30.0)
        assert wd.check() is None
        # Still inside, and ticking on time: a real wedge is still caught, after 6 s of running.
        for _ in range(10):
            clock.advance(0.5)
            assert wd.ticked() == 0.0
        assert wd.check() is None  # 6 s of running time: at the deadline, not past it
        clock.advance(0.5)
        verdict = wd.check()
        assert verdict is not None and "consume has not returned after" in verdict


def test_a_late_tick_also_moves_the_stop_deadline() -> None:
    clock = FakeClock()
    wd = Watchdog(stop_grace_s=5.0, tick_s=0.5, exit_process=FakeExit(), clock=clock)
    wd.ticked()
    wd.stop_requested()
    clock.advance(20.5)
    wd.ticked()
    assert wd.check() is None
    clock.advance(6)
    assert wd.check() is not None


def test_ticks_a_little_late_under_load_forgive_nothing() -> None:
    clock = FakeClock()
    wd = Watchdog(grace_s=1.0, tick_s=0.5, exit_process=FakeExit(), clock=clock)
    wd.ticked()
    with wd.guard("flush", 1.0):
        for _ in range(3):
            clock.advance(1.5)  # a second late each time: a busy machine, not a stopped process
            assert wd.ticked() == 0.0
        assert wd.check() is not None


# -- real processes ----------------------------------------------------------------------------

_PRELUDE = """
import logging, os, signal, sys, threading, time
from choreo.runtime.watchdog import Watchdog
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
"""


def _child(body: str) -> subprocess.Popen[str]:
    code = _PRELUDE + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[int | None, str]:
    """The exit code (None if it had to be killed) and stderr of the child."""
    try:
        rc: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = None
        proc.kill()
        proc.wait()
    assert proc.stderr is not None
    return rc, proc.stderr.read()


def _read_ready(proc: subprocess.Popen[str], timeout: float = 15) -> None:
    """Wait (bounded) for the child's "ready" line; kill it if it does not come."""
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if readable else ""  # the child writes the line at once
    if line.strip() != "ready":
        _, stderr = _finish(proc, timeout=0)
        pytest.fail(f"child not ready within {timeout} s: {line!r} {stderr}")


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR" in line.split(" choreo.", 1)[0]]


def test_a_wedged_call_ends_the_process_with_exit_wedged() -> None:
    proc = _child(
        """
        watchdog = Watchdog(grace_s=0.5, stop_grace_s=1, tick_s=0.05)
        watchdog.start(watch_signals=True)
        with watchdog.guard("send_offsets_to_transaction", 0.5):
            print("ready", flush=True)
            forever = threading.Event()
            while True:  # like librdkafka's untimed condition wait: never returns
                forever.wait(3600)
        """
    )
    _read_ready(proc)
    rc, stderr = _finish(proc, timeout=20)
    assert rc == EXIT_WEDGED, stderr
    errors = _error_lines(stderr)
    assert len(errors) == 1, stderr
    assert "send_offsets_to_transaction" in errors[0]
    took = re.search(r"after (\d+) s", errors[0])
    assert took is not None and int(took.group(1)) >= 1  # not before timeout + grace (1 s)


def test_a_process_stopped_inside_a_call_and_continued_is_not_ended() -> None:
    # The call stops its own process (as SIGSTOP or a frozen cgroup would), and goes on for
    # 0.6 s once continued: ticks see its deadline (1 s) passed unless the stopped time is
    # forgiven. Deterministic: the call is still running when the first tick comes.
    proc = _child(
        """
        watchdog = Watchdog(grace_s=0.5, stop_grace_s=1, tick_s=0.05)
        watchdog.start(watch_signals=True)
        with watchdog.guard("consume", 0.5):
            print("ready", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)
            time.sleep(0.6)
        print("returned", flush=True)
        """
    )
    _read_ready(proc)
    wait_until(lambda: _state(proc.pid) == "T", 10, "the child stopping itself", interval=0.01)
    time.sleep(3)  # the fault itself: the process stays stopped for 3 s
    proc.send_signal(signal.SIGCONT)
    rc, stderr = _finish(proc, timeout=20)
    assert rc == 0, stderr
    assert _error_lines(stderr) == [], stderr
    assert proc.stdout is not None and proc.stdout.read().strip() == "returned"


def _state(pid: int) -> str:
    """The process's state letter from /proc (T: stopped)."""
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]


def test_sigterm_is_honoured_within_stop_grace_even_if_main_thread_never_returns() -> None:
    proc = _child(
        """
        asked = []
        signal.signal(signal.SIGTERM, lambda signum, frame: asked.append(signum))  # only a flag
        watchdog = Watchdog(grace_s=0.5, stop_grace_s=1, tick_s=0.05)
        watchdog.start(watch_signals=True)
        print("ready", flush=True)
        while True:  # ignores the flag: never stops on its own
            time.sleep(0.1)
        """
    )
    _read_ready(proc)
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    rc, stderr = _finish(proc, timeout=1 + 10)
    assert rc == EXIT_WEDGED, stderr
    assert time.monotonic() - sent < 1 + 10
    errors = _error_lines(stderr)
    assert len(errors) == 1 and "asked to stop" in errors[0], stderr
    ago = re.search(r"asked to stop (\d+) s ago", errors[0])
    assert ago is not None and int(ago.group(1)) >= 1  # not before the stop grace


def test_sigterm_handler_calling_stop_requested_inside_a_guard_does_not_deadlock() -> None:
    # choreo.runtime.worker's SIGTERM handler calls watchdog.stop_requested(). A Python handler runs in the
    # main thread between bytecodes, possibly while that thread's guard() holds the watchdog's
    # lock; the clock below makes the signal arrive exactly there (guard() reads the clock under
    # its lock when a nested call ends). With a non-reentrant lock the handler, then the watchdog
    # thread, block forever and SIGTERM is never honoured.
    proc = _child(
        """
        main = threading.main_thread()
        pending = []
        def clock():
            if pending and threading.current_thread() is main:
                pending.clear()
                signal.raise_signal(signal.SIGTERM)  # its handler runs before this returns
            return time.monotonic()
        watchdog = Watchdog(grace_s=0.5, stop_grace_s=1, tick_s=0.05, clock=clock)
        signal.signal(signal.SIGTERM, lambda signum, frame: watchdog.stop_requested())
        watchdog.start(watch_signals=True)
        with watchdog.guard("consume", 30):
            with watchdog.guard("restore", 30):
                pending.append(True)
            print("ready", flush=True)
        while True:
            time.sleep(0.1)
        """
    )
    _read_ready(proc)
    rc, stderr = _finish(proc, timeout=15)
    assert rc == EXIT_WEDGED, f"child hung or died (rc={rc}): {stderr}"
    assert "asked to stop" in stderr


def test_a_call_that_returns_in_time_does_not_end_the_process() -> None:
    proc = _child(
        """
        watchdog = Watchdog(grace_s=0.5, stop_grace_s=1, tick_s=0.05)
        watchdog.start(watch_signals=True)
        print("ready", flush=True)
        with watchdog.guard("flush", 0.5):
            time.sleep(0.2)
        time.sleep(1.5)  # unguarded, well past the flush deadline
        watchdog.close()
        print("done", flush=True)
        """
    )
    _read_ready(proc)
    rc, stderr = _finish(proc, timeout=20)
    assert rc == 0, stderr
    assert _error_lines(stderr) == []


def test_a_call_slower_than_a_healthy_cluster_allows_is_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(slow_after_s: float) -> list[str]:
        monkeypatch.setattr(calls, "SLOW_CALL_S", slow_after_s)
        caplog.clear()
        with caplog.at_level("WARNING", logger="choreo.runtime.calls"):
            assert calls.guarded_call(NoWatchdog(), FaultInjector({}), "commit_transaction", 1.0,
                                      lambda: "done") == "done"
        return [r.getMessage() for r in caplog.records]

    assert run(60.0) == []
    (line,) = run(-1.0)
    assert line.startswith("commit_transaction returned after ")
