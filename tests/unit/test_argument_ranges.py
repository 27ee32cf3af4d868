"""Ports, partitions, offsets and times out of range are one sentence each, before anything starts.

Kafka reads a time before 1970 as a special offset (the end, or the last record), and a number
past 64 bits overflows inside the client: every such value is refused where it is parsed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from choreo.cli.arguments import check_ports, kafka_time, start_position
from choreo.exceptions import ConfigurationError
from choreo.ops import offsets_reset
from choreo.settings import load_settings
from consumers.orders.service import SERVICE as ORDERS
from tests.unit.test_cli_errors import _run, env, one_sentence  # noqa: F401 - env is the fixture

pytestmark = pytest.mark.usefixtures("env")


@pytest.fixture
def no_stack_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """`stack up` must refuse before it starts anything: starting is an error of the test."""
    from choreo.stack import lifecycle

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("stack up went on to start a stack")

    monkeypatch.setattr(lifecycle, "up", refuse)


# -- stack up -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_stack_start")
@pytest.mark.parametrize(("args", "needles"), [
    (("--kafka-port", "70000"), ("--kafka-port must be a port from 1 to 65535, got 70000",)),
    (("--kafka-port", "-1"), ("--kafka-port must be a port from 1 to 65535, got -1",)),
    (("--kafka-port", "0"), ("--kafka-port", "got 0")),
    (("--registry-port", "70000"), ("--registry-port must be a port from 1 to 65535",)),
    (("--brokers", "3", "--kafka-port", "65534"),
     ("--kafka-port 65534 with 3 nodes needs ports 65534 to 65536", "choose --kafka-port 65533")),
])
def test_stack_up_refuses_ports_out_of_range(tmp_path: Path, args: tuple[str, ...],
                                            needles: tuple[str, ...]) -> None:
    one_sentence(_run("stack", "up", "--dir", str(tmp_path / "s"), *args), *needles)


@pytest.mark.usefixtures("no_stack_start")
def test_stack_up_checks_every_node_port_from_the_configured_bootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:65534")
    one_sentence(_run("stack", "up", "--brokers", "3", "--dir", str(tmp_path / "s")),
                 "the port of KAFKA_BOOTSTRAP_SERVERS", "65534 to 65536")


@pytest.mark.usefixtures("no_stack_start")
@pytest.mark.parametrize("command", ["up", "status", "down", "logs"])
def test_a_stack_folder_that_is_a_file_is_one_sentence(tmp_path: Path, command: str) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    one_sentence(_run("stack", command, "--dir", str(a_file)), f"{a_file} (--dir) is a file")
    one_sentence(_run("stack", command, "--dir", str(a_file / "below")),
                 f"is inside {a_file}, which is a file")


def test_stack_dir_from_the_environment_that_is_a_file_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    monkeypatch.setenv("CHOREO_STACK_DIR", str(a_file))
    one_sentence(_run("stack", "status"), "(CHOREO_STACK_DIR) is a file")


# -- times before 1970 ----------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["1969-12-31T23:59:59.999", "1969-12-31T23:59:59.997",
                                  "0001-01-01", "1970-01-01T00:30+01:00"])
def test_reset_to_a_time_before_1970_is_one_sentence(when: str) -> None:
    # .999 was Kafka's "end" (-1), .997 its last record (-3 read as a special value), 0001 an
    # "API version not supported"; 00:30+01:00 is 23:30 UTC the day before.
    one_sentence(_run("reset", "orders", "--to-datetime", when),
                 f"--to-datetime '{when}' is before 1970-01-01", "use --to-earliest")


@pytest.mark.parametrize("args", [("orders",), ("packaging", "--dry-run")])
def test_replay_from_a_time_before_1970_is_one_sentence(args: tuple[str, ...]) -> None:
    one_sentence(_run("replay", *args, "--from", "1969-12-31T23:59:59.999"),
                 "--from '1969-12-31T23:59:59.999' is before 1970-01-01", "use --from beginning")


def test_reset_plan_refuses_a_time_before_1970_before_asking_kafka() -> None:
    # Settings point at a closed port: reaching Kafka would be a different error.
    with pytest.raises(ConfigurationError, match="before 1970-01-01"):
        offsets_reset.plan(load_settings(), ORDERS, to_time=datetime(1969, 12, 31, 23, 59, tzinfo=UTC))


def test_the_epoch_itself_and_the_far_future_are_times_kafka_can_take() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert kafka_time("1970-01-01T00:00", "--to-datetime", "use --to-earliest") == epoch
    assert start_position("9999-12-31T23:59:59").time == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


# -- offsets and partitions -----------------------------------------------------------------------


@pytest.mark.parametrize(("args", "needles"), [
    (("replay", "orders", "--from", "99999999999999999999"),
     ("--from must be an offset from 0 to 9223372036854775807", "got 99999999999999999999")),
    (("replay", "orders", "--partition", "-1"), ("--partition must be a partition number", "got -1")),
    (("replay", "orders", "-p", "0", "-p", "4294967296"), ("--partition", "got 4294967296")),
    (("dlq", "list", "orders", "--offset", "-1"), ("--offset must be an offset from 0", "got -1")),
    (("dlq", "list", "orders", "--partition", "-3"), ("--partition must be a partition number",)),
    (("dlq", "retry", "orders", "--offset", "99999999999999999999"),
     ("--offset must be an offset from 0 to 9223372036854775807",)),
    (("dlq", "retry", "orders", "--partition", "2147483648"), ("--partition", "0 to 2147483647")),
])
def test_offsets_and_partitions_out_of_range_are_one_sentence(
    args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    one_sentence(_run(*args), *needles)


def test_the_largest_offset_and_port_span_are_accepted() -> None:
    assert start_position(str(2**63 - 1)).offset == 2**63 - 1
    assert check_ports(65533, 3, "--kafka-port") == 65533
    with pytest.raises(ConfigurationError, match="past 65535"):
        check_ports(65534, 3, "--kafka-port")
