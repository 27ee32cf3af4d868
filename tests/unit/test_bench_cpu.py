"""The bench's CPU shares: parsing /proc, and a spinning process measured against a sleeping one."""

from __future__ import annotations

import subprocess
import sys

from bench.cpu import cpu_line_ticks, measure, process_ticks, stat_ticks
from harness.processes import wait_until


def test_a_stat_line_whose_command_name_holds_spaces_and_parentheses() -> None:
    line = "4242 (java (kafka) 1) S 1 4242 4242 0 -1 4194560 900 0 0 0 1500 250 0 0 20 0 60 0"
    assert stat_ticks(line) == 1750


def test_idle_and_iowait_are_not_busy() -> None:
    busy, total = cpu_line_ticks("cpu  100 5 50 800 40 0 5 0 0 0")
    assert (busy, total) == (160, 1000)


def test_a_spinning_process_uses_more_cpu_than_a_sleeping_one() -> None:
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    sleep = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with measure({"spin": [spin.pid], "sleep": [sleep.pid]}) as shares:
            wait_until(lambda: process_ticks(spin.pid) > 20, 30, "the spinner to use 20 ticks")
    finally:
        spin.kill()
        sleep.kill()
        spin.wait()
        sleep.wait()
    assert shares.groups["spin"] > shares.groups["sleep"]
    assert shares.machine_busy is not None and 0.0 < shares.machine_busy <= 100.0

