"""Fault injection is inert unless armed, and with a once-file fires a single time."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from choreo.exceptions import ConfigurationError
from choreo.runtime.faults import POINTS, FaultInjector


@pytest.fixture(autouse=True)
def kills(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record what `at()` would kill instead of killing the test process."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    return sent


def test_unset_environment_is_inert(kills: list[tuple[int, int]]) -> None:
    faults = FaultInjector({})
    assert not faults._armed("wedge:send_offsets_to_transaction")
    faults.wedge("send_offsets_to_transaction")  # returns at once
    faults.at("before_kafka_commit")  # does not kill this process
    faults.at("after_kafka_commit")
    assert kills == []


def test_an_armed_kill_point_kills_this_process(kills: list[tuple[int, int]]) -> None:
    faults = FaultInjector({"CHOREO_FAULT_POINT": "after_kafka_commit"})
    faults.at("before_kafka_commit")
    assert kills == []
    faults.at("after_kafka_commit")
    assert kills == [(os.getpid(), signal.SIGKILL)]


def test_wedge_returns_at_once_unless_its_own_call_is_armed(kills: list[tuple[int, int]]) -> None:
    faults = FaultInjector({"CHOREO_FAULT_POINT": "wedge:send_offsets_to_transaction"})
    assert faults._armed("wedge:send_offsets_to_transaction")
    assert not faults._armed("wedge:flush")
    faults.wedge("flush")  # another call: returns
    faults.at("before_kafka_commit")  # a kill point that is not armed: returns
    assert kills == []


def test_fault_waits_for_the_batches_to_commit() -> None:
    faults = FaultInjector({"CHOREO_FAULT_POINT": "wedge:flush", "CHOREO_FAULT_AFTER_BATCHES": "2"})
    assert not faults._armed("wedge:flush")
    faults.wedge("flush")  # not yet: returns
    faults.batch_committed()
    assert not faults._armed("wedge:flush")
    faults.batch_committed()
    assert faults._armed("wedge:flush")


def test_empty_after_batches_means_zero() -> None:
    faults = FaultInjector({"CHOREO_FAULT_POINT": "wedge:flush", "CHOREO_FAULT_AFTER_BATCHES": ""})
    assert faults.after == 0 and faults._armed("wedge:flush")


def test_once_file_arms_only_the_first_time(tmp_path: Path) -> None:
    marker = tmp_path / "fired"
    env = {
        "CHOREO_FAULT_POINT": "wedge:send_offsets_to_transaction",
        "CHOREO_FAULT_ONCE_FILE": str(marker),
    }
    faults = FaultInjector(env)
    assert not faults._armed("wedge:flush")  # another point does not use up the once-file
    assert not marker.exists()
    assert faults._armed("wedge:send_offsets_to_transaction")
    assert marker.exists()
    assert not faults._armed("wedge:send_offsets_to_transaction")
    faults.wedge("send_offsets_to_transaction")  # already fired: returns at once
    restarted = FaultInjector(env)  # a restarted worker sees the marker and runs normally
    assert not restarted._armed("wedge:send_offsets_to_transaction")
    restarted.wedge("send_offsets_to_transaction")


def test_once_file_is_not_used_up_before_the_batches_count(
    tmp_path: Path, kills: list[tuple[int, int]]
) -> None:
    marker = tmp_path / "fired"
    faults = FaultInjector({
        "CHOREO_FAULT_POINT": "before_kafka_commit",
        "CHOREO_FAULT_AFTER_BATCHES": "1",
        "CHOREO_FAULT_ONCE_FILE": str(marker),
    })
    faults.at("before_kafka_commit")  # too early: neither fires nor creates the marker
    assert not marker.exists() and kills == []
    faults.batch_committed()
    faults.at("before_kafka_commit")
    assert marker.exists() and kills == [(os.getpid(), signal.SIGKILL)]
    faults.at("before_kafka_commit")  # fired once already
    assert len(kills) == 1


def test_an_unknown_fault_point_is_a_configuration_error() -> None:
    # A typo would otherwise arm nothing, and a crash test that never crashes passes for nothing.
    with pytest.raises(ConfigurationError, match="before_kafka_comit"):
        FaultInjector({"CHOREO_FAULT_POINT": "before_kafka_comit"})
    with pytest.raises(ConfigurationError, match="wedge:produce"):
        FaultInjector({"CHOREO_FAULT_POINT": "wedge:produce"})


def test_every_documented_point_is_accepted() -> None:
    for point in POINTS:
        assert FaultInjector({"CHOREO_FAULT_POINT": point}).point == point


def test_a_bad_batch_count_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="CHOREO_FAULT_AFTER_BATCHES"):
        FaultInjector({"CHOREO_FAULT_POINT": "after_kafka_commit", "CHOREO_FAULT_AFTER_BATCHES": "two"})


def test_code_can_only_name_listed_points() -> None:
    # The lists above are what the configuration check trusts: a new point must join them.
    faults = FaultInjector({})
    with pytest.raises(ValueError):
        faults.at("somewhere_else")
    with pytest.raises(ValueError):
        faults.wedge("produce")
