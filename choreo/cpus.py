"""How many CPUs this process can use: its affinity, capped by a cgroup CPU quota (a container's).

`os.sched_getaffinity` counts the CPUs the process may run on, which in a container limited with
`--cpus 2` (Kubernetes: `limits.cpu: 2`) is still every CPU of the host: sized by it, a pool of
processes would be throttled by the quota, each getting a slice of the CPUs it was sized for.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


def usable_cpus(
    cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP, affinity: int | None = None,
) -> int:
    """The CPUs this process can keep busy: min(its affinity, ceil(quota / period)), at least 1.

    The quota is the smallest of those on the way from this process's own cgroup (named in
    `self_cgroup`, i.e. /proc/self/cgroup) up to `cgroup_root`: cgroup v2's `cpu.max`, else v1's
    `cpu/cpu.cfs_quota_us` and `cpu.cfs_period_us`. A file that is missing, unreadable or
    malformed sets no quota. `affinity` stands for the affinity's count (tests).
    """
    cpus = _affinity() if affinity is None else affinity
    quota = cgroup_cpu_quota(cgroup_root, self_cgroup)
    if quota is not None:
        cpus = min(cpus, quota)
    return max(1, cpus)


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> int | None:
    """The CPU quota of this process's cgroups, rounded up to whole CPUs; None when none is set."""
    v2_path, v1_path = _own_cgroups(self_cgroup)
    # Every v2 cgroup folder has cgroup.controllers: v2 is mounted at the root. Else v1, whose
    # cpu controller has a tree of its own under cpu/ (a hybrid host's v2 tree holds no cpu.max).
    if (cgroup_root / "cgroup.controllers").exists():
        quotas = [_v2_quota(folder) for folder in _levels(cgroup_root, v2_path)]
    else:
        quotas = [_v1_quota(folder) for folder in _levels(cgroup_root / "cpu", v1_path)]
    known = [q for q in quotas if q is not None]
    return min(known) if known else None


def _affinity() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # no affinity call (macOS): every CPU


def _own_cgroups(self_cgroup: Path) -> tuple[str, str]:
    """(v2 path, v1 path of the cpu controller) from /proc/self/cgroup; `/` for one not named.

    Its lines are `hierarchy:controllers:path`: v2's is `0::/path`, v1's cpu line names `cpu`
    among its controllers (`4:cpu,cpuacct:/docker/abc`). In a container with its own cgroup
    namespace both are `/`, and the root is the container's own cgroup.
    """
    v2 = v1 = "/"
    try:
        text = self_cgroup.read_text()
    except (OSError, UnicodeDecodeError):
        return v2, v1
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _levels(root: Path, path: str) -> Iterator[Path]:
    """`root/path` and each folder above it, up to `root` itself."""
    parts = [p for p in path.strip().split("/") if p and p != "."]
    if ".." in parts:  # not a path the kernel writes: look at the root only
        parts = []
    for depth in range(len(parts), -1, -1):
        yield root.joinpath(*parts[:depth])


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _whole_cpus(quota: int, period: int) -> int | None:
    return math.ceil(quota / period) if quota > 0 and period > 0 else None


def _v2_quota(folder: Path) -> int | None:
    """`cpu.max` in `folder`: `150000 100000` is 2 CPUs; `max 100000` is no quota."""
    fields = (_read(folder / "cpu.max") or "").split()
    try:
        return _whole_cpus(int(fields[0]), int(fields[1])) if len(fields) == 2 else None
    except ValueError:  # `max`, or junk
        return None


def _v1_quota(folder: Path) -> int | None:
    """`cpu.cfs_quota_us` / `cpu.cfs_period_us` in `folder` (a quota of -1 is none)."""
    try:
        return _whole_cpus(int(_read(folder / "cpu.cfs_quota_us") or ""),
                           int(_read(folder / "cpu.cfs_period_us") or ""))
    except ValueError:
        return None
