"""CPU time of groups of processes over a stretch of a run, read from /proc (Linux).

A latency figure on a small machine is often a queue for its cores: this says who holds them
(the broker, the workers) while a measurement runs, next to how busy the machine was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_ticks(pid: int) -> int:
    """User + system clock ticks `pid` (all its threads) has used; 0 when it is gone."""
    try:
        return stat_ticks(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return 0


def stat_ticks(stat: str) -> int:
    """utime + stime of a /proc/<pid>/stat line (fields 14 and 15)."""
    # The command name is in parentheses and may hold spaces and ')': count after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    try:
        return cpu_line_ticks(Path("/proc/stat").read_text().split("\n", 1)[0])
    except OSError:
        return 0, 0


def cpu_line_ticks(line: str) -> tuple[int, int]:
    """(busy, total) of the `cpu ...` line of /proc/stat: idle and iowait are not busy."""
    values = [int(v) for v in line.split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


@dataclass
class CpuShares:
    """What a `measure()` found: each group's CPU in % of one core, the machine's busy %."""

    groups: dict[str, float] = field(default_factory=dict)
    machine_busy: float | None = None


@contextmanager
def measure(groups: Mapping[str, Sequence[int]]) -> Iterator[CpuShares]:
    """Measure the CPU each group of pids uses inside the `with` block (filled in at its end)."""
    shares = CpuShares()
    started = {name: sum(process_ticks(p) for p in pids) for name, pids in groups.items()}
    busy0, total0 = machine_ticks()
    began = os.times().elapsed
    yield shares
    seconds = max(os.times().elapsed - began, 1e-9)
    for name, pids in groups.items():
        used = sum(process_ticks(p) for p in pids) - started[name]
        shares.groups[name] = max(0.0, 100.0 * used / _TICKS_PER_S / seconds)  # 0 if it ended
    busy1, total1 = machine_ticks()
    if total1 > total0:
        shares.machine_busy = 100.0 * (busy1 - busy0) / (total1 - total0)
