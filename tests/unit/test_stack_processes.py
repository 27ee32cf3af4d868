"""The stack's own process probes: a process we just spawned must never be taken for gone."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from choreo.stack import processes
from choreo.stack.layout import StackLayout


@pytest.fixture
def layout(tmp_path: Path) -> StackLayout:
    return StackLayout.of(tmp_path)


@pytest.fixture
def registry(layout: StackLayout) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", processes.marker(layout, "registry")]
    )
    yield proc
    proc.kill()
    proc.wait()


def test_a_command_line_read_empty_during_exec_is_not_an_exit(
    layout: StackLayout, registry: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Right after a spawn the kernel has closed the child's close-on-exec descriptors (so Popen
    # returned) but not yet written its arguments: /proc/PID/cmdline reads empty. Replay that.
    real = processes._cmdline
    empty_reads = [""] * 3

    def cmdline(pid: int) -> str | None:
        return empty_reads.pop() if empty_reads else real(pid)

    monkeypatch.setattr(processes, "_cmdline", cmdline)

    assert not processes.exited(layout, "registry", registry.pid)


def test_a_process_whose_command_line_stays_empty_is_not_ours(
    layout: StackLayout, registry: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A kernel thread (a reused pid) has no arguments at all: the wait for them is bounded.
    monkeypatch.setattr(processes, "EXEC_SETTLE_S", 0.05)
    monkeypatch.setattr(processes, "_cmdline", lambda pid: "")

    assert processes.exited(layout, "registry", registry.pid)


def test_a_stopped_process_counts_as_exited(
    layout: StackLayout, registry: subprocess.Popen[bytes]
) -> None:
    assert not processes.exited(layout, "registry", registry.pid)
    registry.kill()
    registry.wait()
    assert processes.exited(layout, "registry", registry.pid)
