"""The harness's process probes must answer, never raise, whatever state the process is in:
a fault test once failed because a killed worker vanished from /proc between two reads."""

from __future__ import annotations

import subprocess
import sys

from harness.processes import pid_running, wait_until


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_live_process_is_running() -> None:
    proc = _sleeper()
    try:
        assert pid_running(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_unreaped_child_counts_as_gone() -> None:
    proc = _sleeper()
    proc.kill()
    # Not reaped yet: the child is a zombie until wait(), and a zombie holds no locks.
    wait_until(lambda: not pid_running(proc.pid), 10, "the zombie to count as gone")
    proc.wait()


def test_a_reaped_process_has_no_proc_entry_and_counts_as_gone() -> None:
    proc = _sleeper()
    proc.kill()
    proc.wait()
    assert not pid_running(proc.pid)
