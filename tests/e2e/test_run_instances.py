"""`choreo run --instances 2`: two supervised workers per service share each group's partitions,
serve metrics on ports of their own, run the saga correctly, and stop cleanly."""

from __future__ import annotations

import re
import socket
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka.admin import ConsumerGroupDescription, MemberDescription

from choreo.domain import installation
from choreo.kafka import clients
from harness.processes import pid_running, start_run, wait_until, worker_instances
from harness.stack import StackEndpoints
from producers.load_plan import plan_orders
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.e2e

PARTITIONS = 6
INSTANCES = 2
ORDERS = 120
# "orders/1    | ... worker <prefix>orders-1 started: inputs=[...] own=... metrics=127.0.0.1:9101"
STARTED = re.compile(r"^(\w+)/(\d+) +\| .*worker \S+-(\d+) started: inputs=.* metrics=(\S+)$", re.M)


@pytest.fixture()
def saga6(stack: StackEndpoints, topic_prefix: str, tmp_path: Path) -> Iterator[SagaRun]:
    """The saga on six partitions, so that two instances get three each."""
    run = SagaRun(stack.bootstrap_servers, stack.schema_registry_url, topic_prefix, tmp_path,
                  partitions=PARTITIONS)
    yield run
    run.close()


def _free_port_range(count: int) -> int:
    """The first of `count` consecutive loopback ports that are free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError(f"no {count} consecutive free ports on 127.0.0.1")


def _groups(saga: SagaRun) -> dict[str, ConsumerGroupDescription]:
    admin = clients.admin_client(saga.settings)
    names = [saga.settings.group(s) for s in installation().service_names]
    return {g: f.result(30) for g, f in admin.describe_consumer_groups(names).items()}


def _instance_of(group_id: str, member: MemberDescription) -> str:
    """The instance id a member runs as: its group.instance.id is `<group>-<instance>` (the
    transactional.id), and a static member's id starts with that."""
    named = member.group_instance_id or member.member_id
    found = re.match(rf"{re.escape(group_id)}-(\d+)(?:-|$)", named)
    return found.group(1) if found else f"?{named}"


def _split_problem(group: ConsumerGroupDescription) -> str | None:
    """Why the group is not two static members splitting every input topic 3 + 3, or None."""
    members = {_instance_of(group.group_id, m): m for m in group.members}
    if len(group.members) != INSTANCES or sorted(members) != [str(i) for i in range(INSTANCES)]:
        return f"{group.group_id}: members {sorted(members)} of {len(group.members)} ({group.state})"
    per_topic: dict[str, dict[str, set[int]]] = defaultdict(dict)
    for instance, m in members.items():
        for tp in m.assignment.topic_partitions:
            per_topic[tp.topic].setdefault(instance, set()).add(tp.partition)
    if not per_topic:
        return f"{group.group_id}: nothing assigned yet ({group.state})"
    for topic, owned in per_topic.items():
        sets = [owned.get(str(i), set()) for i in range(INSTANCES)]
        if [len(s) for s in sets] != [PARTITIONS // INSTANCES] * INSTANCES:
            return f"{group.group_id}: {topic} split {sets}"
        if set.union(*sets) != set(range(PARTITIONS)):
            return f"{group.group_id}: {topic} not covered by {sets}"
    # Range assignment gives an instance the same partition numbers on every input topic, so one
    # instance holds all of a saga's partition (the saga's events share a partition number).
    by_instance = {i: {frozenset(owned.get(str(i), set())) for owned in per_topic.values()}
                   for i in range(INSTANCES)}
    if any(len(numbers) != 1 for numbers in by_instance.values()):
        return f"{group.group_id}: partition numbers differ across topics: {dict(per_topic)}"
    return None


def _problems(saga: SagaRun) -> list[str]:
    return [p for g in _groups(saga).values() if (p := _split_problem(g)) is not None]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except OSError:
        return 0


def test_two_instances_per_service_split_the_partitions_and_run_the_saga(
    saga6: SagaRun, tmp_path: Path
) -> None:
    saga = saga6
    services = list(installation().service_names)
    workers = len(services) * INSTANCES
    base_port = _free_port_range(workers)
    log_path = tmp_path / "run.log"
    saga.seed(datetime.now(UTC))
    run = start_run(saga.settings, log_path, args=["--instances", str(INSTANCES)],
                    CHOREO_METRICS_PORT=str(base_port))
    try:
        wait_until(lambda: len(worker_instances(run.pid)) == workers or not run.alive(), 60,
                   f"{workers} worker processes")
        assert run.alive(), run.tail()
        assert set(worker_instances(run.pid)) == {
            (s, str(i)) for s in services for i in range(INSTANCES)
        }
        wait_until(lambda: len(STARTED.findall(log_path.read_text())) >= workers, 90,
                   f"{workers} worker starts")
        # Each line is prefixed with the service and instance it comes from, and each instance
        # serves on P + service_index * N + instance.
        starts = {(s, i): (own, metrics) for s, i, own, metrics in STARTED.findall(log_path.read_text())}
        assert set(starts) == {(s, str(i)) for s in services for i in range(INSTANCES)}, starts
        for (service, instance), (own_id, metrics) in starts.items():
            assert own_id == instance, (service, instance, own_id)
            port = base_port + services.index(service) * INSTANCES + int(instance)
            assert metrics == f"127.0.0.1:{port}", (service, instance, metrics)
        saga.wait_seeded(180)

        # Both instances of every service are members, each holding half of every input topic.
        last: list[str] = []

        def split() -> bool:
            last[:] = _problems(saga)
            return not last

        wait_until(split, 120, "every group split between its two instances")
        ports = range(base_port, base_port + workers)
        wait_until(lambda: all(_status(f"http://127.0.0.1:{p}/readyz") == 200 for p in ports), 60,
                   f"/readyz 200 on ports {base_port} to {base_port + workers - 1}")
        assert all(_status(f"http://127.0.0.1:{p}/healthz") == 200 for p in ports)

        plan = list(plan_orders(ORDERS, 0.05, 0.05, seed=23, at=datetime.now(UTC), no_drone_share=0.05))
        saga.send(p.command for p in plan)
        ends = saga.wait_for_ends([p.command.order_id for p in plan], timeout=300)
        assert len(ends) == ORDERS
        assert "completed" in ends.values()

        # Still the same two members per group: nobody crashed, nobody was restarted.
        assert _problems(saga) == [], last
        assert "exited with" not in log_path.read_text(), run.tail(60)

        children = worker_instances(run.pid)
        assert run.stop(120) == 0, run.tail(60)
        for key, pid in children.items():
            assert not pid_running(pid), f"{key} worker {pid} outlived the supervisor"
        text = log_path.read_text()
        for service in services:
            for instance in range(INSTANCES):
                assert re.search(rf"^{service}/{instance} +\| stopped \(0\)$", text, re.M), (
                    service, instance)
    finally:
        run.close()

    audit = saga.choreo("audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "ended_once" in audit.stdout and "VIOLATED" not in audit.stdout
    for service in services:
        verify = saga.rebuild_verify(service)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert verify.stdout.count(" ok ") == PARTITIONS, verify.stdout
        assert "MISMATCH" not in verify.stdout
