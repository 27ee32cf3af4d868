"""`choreo run --instances N`: which workers it starts, their stable ids and metrics ports (no broker)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest

from choreo.exceptions import ConfigurationError
from choreo.runtime.supervisor import (
    SUPERVISOR_PID_ENV,
    Supervisor,
    check_instances,
    plan_children,
)

SERVICES = ["orders", "packaging", "drones", "delivery"]


def test_one_instance_per_service_is_what_run_always_started() -> None:
    plan = plan_children(SERVICES)
    assert [(c.service, c.instance, c.metrics_port) for c in plan] == [
        ("orders", "0", 0), ("packaging", "0", 0), ("drones", "0", 0), ("delivery", "0", 0),
    ]
    assert [c.label for c in plan] == ["orders/0", "packaging/0", "drones/0", "delivery/0"]


def test_one_instance_keeps_the_given_id_and_ports_p_p1_in_service_order() -> None:
    plan = plan_children(SERVICES, 1, 9100, instance="blue")
    assert [(c.instance, c.metrics_port) for c in plan] == [
        ("blue", 9100), ("blue", 9101), ("blue", 9102), ("blue", 9103),
    ]


@pytest.mark.parametrize("instances", [1, 2, 3, 6])
def test_n_instances_have_ids_0_to_n_minus_1_for_every_service(instances: int) -> None:
    plan = plan_children(SERVICES, instances)
    assert len(plan) == len(SERVICES) * instances
    for service in SERVICES:
        ids = [c.instance for c in plan if c.service == service]
        assert ids == [str(i) for i in range(instances)]
    assert len({(c.service, c.instance) for c in plan}) == len(plan)
    assert len({c.label for c in plan}) == len(plan)


def test_ports_are_p_plus_service_index_times_n_plus_instance() -> None:
    plan = plan_children(SERVICES, 2, 9100)
    assert [(c.label, c.metrics_port) for c in plan] == [
        ("orders/0", 9100), ("orders/1", 9101), ("packaging/0", 9102), ("packaging/1", 9103),
        ("drones/0", 9104), ("drones/1", 9105), ("delivery/0", 9106), ("delivery/1", 9107),
    ]


@pytest.mark.parametrize("instances", range(1, 13))
@pytest.mark.parametrize("services", [SERVICES[:1], SERVICES, [*SERVICES, "notifications"]])
def test_ports_never_collide_and_fill_one_range(services: list[str], instances: int) -> None:
    ports = [c.metrics_port for c in plan_children(services, instances, 20000)]
    assert sorted(ports) == list(range(20000, 20000 + len(services) * instances))


def test_no_metrics_port_means_none_for_every_instance() -> None:
    assert {c.metrics_port for c in plan_children(SERVICES, 3, 0)} == {0}


def test_a_port_range_past_65535_is_one_sentence() -> None:
    plan_children(SERVICES, 2, 65535 - 7)  # the last port fits exactly
    with pytest.raises(ConfigurationError) as caught:
        plan_children(SERVICES, 2, 65535 - 6)
    assert str(caught.value) == (
        "CHOREO_METRICS_PORT 65529 leaves no room for 8 workers (one port each, up to 65536; "
        "the last port is 65535): choose a lower one"
    )


def test_a_service_named_twice_is_refused() -> None:
    # Two children with one instance id would fence each other forever.
    with pytest.raises(ConfigurationError, match="named twice"):
        plan_children(["orders", "orders"])


@pytest.mark.parametrize("instances", [1, 3, 6])
def test_instances_from_one_to_the_partition_count_are_accepted(instances: int) -> None:
    check_instances(instances, 6)


@pytest.mark.parametrize("instances", [0, -1, 7, 100])
def test_instances_outside_one_to_the_partition_count_are_one_sentence(instances: int) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_instances(instances, 6)
    message = str(caught.value)
    assert message.startswith("--instances must be an integer from 1 to 6 (CHOREO_PARTITIONS")
    assert message.endswith(f"got {instances}") and "\n" not in message


def test_each_child_gets_its_own_port_in_its_environment() -> None:
    sup = Supervisor(plan_children(SERVICES, 2, 9100), env={"CHOREO_METRICS_PORT": "9100", "X": "1"})
    ports = [sup._env_of(c)["CHOREO_METRICS_PORT"] for c in sup.children]
    assert ports == [str(p) for p in range(9100, 9108)]
    assert all(sup._env_of(c)["X"] == "1" for c in sup.children)


def test_without_a_port_the_children_inherit_the_environment_and_learn_their_supervisor() -> None:
    sup = Supervisor(plan_children(SERVICES, 2), env={"X": "1"})
    # The supervisor's pid lets a worker stop when `choreo run` is gone (SIGKILL).
    assert all(sup._env_of(c) == {"X": "1", SUPERVISOR_PID_ENV: str(os.getpid())} for c in sup.children)


def test_log_lines_name_the_service_and_instance() -> None:
    out = io.StringIO()
    sup = Supervisor(plan_children(["orders", "packaging"], 2), env={}, out=out)
    for child in sup.children:
        sup._relay(child.plan, "worker started\n")
    sup._say(sup.children[0].plan, "exited with 1; restart #1 in 0.25s", "ERROR")
    assert out.getvalue().splitlines() == [
        "orders/0    | worker started", "orders/1    | worker started",
        "packaging/0 | worker started", "packaging/1 | worker started",
        "orders/0    | exited with 1; restart #1 in 0.25s",
    ]


def _json_supervisor() -> tuple[Supervisor, io.StringIO]:
    out = io.StringIO()
    return Supervisor(plan_children(["orders", "packaging"], 2), env={}, out=out, log_format="json"), out


def test_in_json_a_workers_json_line_passes_through_unchanged() -> None:
    sup, out = _json_supervisor()
    line = ('{"time": "2024-05-01T12:00:00.123Z", "level": "INFO", "service": "packaging", '
            '"instance": "1", "logger": "choreo.runtime.worker", "message": "a\\nb"}')
    sup._relay(sup.children[3].plan, line + "\n")
    assert out.getvalue() == line + "\n"  # no `packaging/1 |` prefix to break it


@pytest.mark.parametrize("printed", [
    "Traceback (most recent call last):", "error: CHOREO_BATCH_SIZE must be an integer", "{not json",
    '["a JSON array, not an object"]', "",
])
def test_in_json_a_printed_line_is_wrapped_in_an_object_naming_the_worker(printed: str) -> None:
    sup, out = _json_supervisor()
    sup._relay(sup.children[1].plan, printed + "\n")
    (line,) = out.getvalue().splitlines()
    wrapped = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", wrapped.pop("time"))
    assert wrapped == {"level": "WARNING", "service": "orders", "instance": "1",
                       "logger": "choreo.supervisor.output", "message": printed}


def test_in_json_the_supervisors_own_lines_are_objects_with_a_level() -> None:
    sup, out = _json_supervisor()
    sup._say(sup.children[2].plan, "exited with 4 (no batch could commit for too long)", "ERROR")
    sup._say(sup.children[2].plan, "stopped (0)")
    exited, stopped = (json.loads(line) for line in out.getvalue().splitlines())
    assert (exited["level"], exited["service"], exited["instance"], exited["logger"]) == (
        "ERROR", "packaging", "0", "choreo.supervisor")
    assert exited["message"].startswith("exited with 4")
    assert (stopped["level"], stopped["message"]) == ("INFO", "stopped (0)")


def test_in_json_every_line_a_child_writes_comes_out_as_one_object() -> None:
    # The pump as it reads a worker: its JSON log lines, then a crash printed outside logging.
    sup, out = _json_supervisor()
    child = subprocess.Popen([sys.executable, "-c", (
        "import json, sys\n"
        "print(json.dumps({'level': 'INFO', 'service': 'orders', 'message': 'up'}), flush=True)\n"
        "print('Traceback (most recent call last):', file=sys.stderr, flush=True)\n"
        "print(json.dumps({'level': 'ERROR', 'message': 'x\\ny', 'saga_id': 'o-1'}), flush=True)\n"
    )], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sup._pump(sup.children[0].plan, child)
    assert child.wait(30) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [
        ("INFO", "up"), ("WARNING", "Traceback (most recent call last):"), ("ERROR", "x\ny"),
    ]
    assert lines[2] == {"level": "ERROR", "message": "x\ny", "saga_id": "o-1"}  # as the child wrote it


def _supervised(code_on_sigterm: str) -> Supervisor:
    sup = Supervisor(plan_children(["orders"], 1, 0), env={}, out=io.StringIO())
    child = sup.children[0]
    child.proc = subprocess.Popen([sys.executable, "-c", (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *_: {code_on_sigterm})\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )], stdout=subprocess.PIPE)
    assert child.proc.stdout is not None and child.proc.stdout.readline() == b"ready\n"
    return sup


def test_a_worker_ending_with_an_error_of_its_own_while_stopping_is_a_clean_stop() -> None:
    # A fenced worker would have been restarted: the stop went as asked, and its line says 1.
    sup = _supervised("sys.exit(1)")
    assert sup._shutdown(timeout_s=30) == 0
    assert isinstance(sup.out, io.StringIO) and "stopped (1)" in sup.out.getvalue()


def test_a_worker_that_has_to_be_killed_fails_the_stop() -> None:
    sup = _supervised("None")  # ignores SIGTERM
    assert sup._shutdown(timeout_s=0.5) == 1
