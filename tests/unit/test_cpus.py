"""The CPUs a process can use: its affinity capped by a cgroup CPU quota, read from fake cgroup trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from choreo.cpus import cgroup_cpu_quota, usable_cpus

V2_SELF = "0::/\n"


def _tree(tmp_path: Path, files: dict[str, str], self_cgroup: str) -> tuple[Path, Path]:
    """A fake /sys/fs/cgroup holding `files` (path -> content), and a fake /proc/self/cgroup."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    self_file = tmp_path / "self_cgroup"
    self_file.write_text(self_cgroup)
    return root, self_file


def _v2(tmp_path: Path, files: dict[str, str], self_cgroup: str = V2_SELF) -> tuple[Path, Path]:
    return _tree(tmp_path, {"cgroup.controllers": "cpuset cpu io memory pids\n", **files}, self_cgroup)


@pytest.mark.parametrize(("cpu_max", "cpus"), [
    ("150000 100000\n", 2),  # 1.5 CPUs of time: two processes can use it
    ("200000 100000\n", 2),
    ("100000 100000\n", 1),
    ("1000 100000\n", 1),  # a sliver is still one
    ("400000 50000\n", 8),
])
def test_a_v2_quota_rounds_up_to_whole_cpus(tmp_path: Path, cpu_max: str, cpus: int) -> None:
    root, self_file = _v2(tmp_path, {"cpu.max": cpu_max})
    assert cgroup_cpu_quota(root, self_file) == cpus
    assert usable_cpus(root, self_file, affinity=64) == cpus


def test_v2_max_is_no_quota(tmp_path: Path) -> None:
    root, self_file = _v2(tmp_path, {"cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(root, self_file) is None
    assert usable_cpus(root, self_file, affinity=12) == 12


def test_a_nested_v2_cgroup_takes_the_smallest_quota_on_the_way_up(tmp_path: Path) -> None:
    root, self_file = _v2(tmp_path, {
        "cpu.max": "max 100000\n",
        "kubepods.slice/cpu.max": "300000 100000\n",  # the pod: 3
        "kubepods.slice/pod1/cpu.max": "max 100000\n",
        "kubepods.slice/pod1/ctr/cpu.max": "max 100000\n",  # the container sets none itself
    }, "0::/kubepods.slice/pod1/ctr\n")
    assert usable_cpus(root, self_file, affinity=16) == 3


def test_the_own_cgroup_can_be_tighter_than_its_parent(tmp_path: Path) -> None:
    root, self_file = _v2(tmp_path, {
        "system.slice/cpu.max": "400000 100000\n",
        "system.slice/app.service/cpu.max": "50000 100000\n",
    }, "0::/system.slice/app.service\n")
    assert usable_cpus(root, self_file, affinity=16) == 1


def test_a_path_missing_below_the_root_reads_the_levels_that_exist(tmp_path: Path) -> None:
    # A container without its own cgroup namespace sees the host's path but has its own cgroup
    # mounted at the root.
    root, self_file = _v2(tmp_path, {"cpu.max": "200000 100000\n"}, "0::/docker/0123abcd\n")
    assert usable_cpus(root, self_file, affinity=16) == 2


def test_v1_quota_and_period(tmp_path: Path) -> None:
    root, self_file = _tree(tmp_path, {
        "cpu/cpu.cfs_quota_us": "250000\n", "cpu/cpu.cfs_period_us": "100000\n",
    }, "12:memory:/x\n4:cpu,cpuacct:/\n0::/\n")
    assert usable_cpus(root, self_file, affinity=16) == 3


def test_v1_minus_one_is_no_quota(tmp_path: Path) -> None:
    root, self_file = _tree(tmp_path, {
        "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n",
    }, "4:cpu,cpuacct:/\n0::/\n")
    assert cgroup_cpu_quota(root, self_file) is None
    assert usable_cpus(root, self_file, affinity=6) == 6


def test_a_nested_v1_cgroup_is_followed_from_its_cpu_line(tmp_path: Path) -> None:
    root, self_file = _tree(tmp_path, {
        "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n",
        "cpu/docker/abc/cpu.cfs_quota_us": "150000\n", "cpu/docker/abc/cpu.cfs_period_us": "100000\n",
    }, "5:memory:/other\n4:cpu,cpuacct:/docker/abc\n")
    assert usable_cpus(root, self_file, affinity=16) == 2


def test_no_cgroup_files_mean_the_affinity(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    assert cgroup_cpu_quota(missing, missing / "cgroup") is None
    assert usable_cpus(missing, missing / "cgroup", affinity=5) == 5


@pytest.mark.parametrize("cpu_max", ["", "garbage", "150000", "abc 100000", "150000 0",
                                     "-5 100000", "1 2 3"])
def test_a_malformed_v2_file_is_no_quota(tmp_path: Path, cpu_max: str) -> None:
    root, self_file = _v2(tmp_path, {"cpu.max": cpu_max})
    assert cgroup_cpu_quota(root, self_file) is None
    assert usable_cpus(root, self_file, affinity=4) == 4


def test_a_v2_file_that_is_not_text_is_no_quota(tmp_path: Path) -> None:
    root, self_file = _v2(tmp_path, {})
    (root / "cpu.max").write_bytes(b"\xff\xfe 100000")
    assert cgroup_cpu_quota(root, self_file) is None


@pytest.mark.parametrize(("quota", "period"), [("x", "100000"), ("150000", ""), ("150000", "0")])
def test_a_malformed_v1_file_is_no_quota(tmp_path: Path, quota: str, period: str) -> None:
    root, self_file = _tree(tmp_path, {"cpu/cpu.cfs_quota_us": quota, "cpu/cpu.cfs_period_us": period},
                            "4:cpu:/\n")
    assert cgroup_cpu_quota(root, self_file) is None


def test_a_malformed_level_does_not_hide_a_quota_above_it(tmp_path: Path) -> None:
    root, self_file = _v2(tmp_path, {"cpu.max": "200000 100000\n", "a/cpu.max": "junk"}, "0::/a\n")
    assert usable_cpus(root, self_file, affinity=8) == 2


def test_an_unreadable_self_cgroup_reads_the_root_only(tmp_path: Path) -> None:
    root, _ = _v2(tmp_path, {"cpu.max": "300000 100000\n"})
    assert usable_cpus(root, tmp_path / "no-such-file", affinity=8) == 3


def test_an_affinity_smaller_than_the_quota_wins(tmp_path: Path) -> None:
    root, self_file = _v2(tmp_path, {"cpu.max": "800000 100000\n"})
    assert usable_cpus(root, self_file, affinity=2) == 2


def test_at_least_one_cpu(tmp_path: Path) -> None:
    root, self_file = _v2(tmp_path, {"cpu.max": "max 100000\n"})
    assert usable_cpus(root, self_file, affinity=0) == 1


def test_this_machine_gives_a_count_within_its_affinity() -> None:
    import os

    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))
