"""The saga on 3 brokers (replication 3, min ISR 2) when the broker that coordinates a group or a
transaction dies, or a broker stops answering for longer than the session timeout."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import ConfigResource, ConfigSource

from choreo.kafka import clients
from choreo.settings import Settings
from harness.processes import run_cli
from tests.faults.conftest import KillableStack
from tests.support import fault_injection as faults
from tests.support.fault_saga import FaultySaga, assert_clean

pytestmark = pytest.mark.integration

# FAULT_ROUNDS=5 runs each cluster scenario five times on the one cluster (topics of its own each).
ROUNDS = range(1, int(os.environ.get("FAULT_ROUNDS", "1")) + 1)


@pytest.fixture()
def saga(cluster: KillableStack, topic_prefix: str, tmp_path: Path) -> Iterator[FaultySaga]:
    run = FaultySaga(
        cluster.bootstrap_servers, cluster.schema_registry_url, topic_prefix, tmp_path,
        replication_factor=3,
    )
    yield run
    run.close()
    faults.bring_back(cluster.layout)  # the next scenario starts with three brokers


@pytest.mark.parametrize("round_", ROUNDS)
def test_group_coordinator_killed(saga: FaultySaga, cluster: KillableStack, round_: int) -> None:
    saga.start_supervised()
    admin = clients.admin_client(saga.settings)

    def inject() -> None:
        node = faults.group_coordinator(admin, saga.settings.group("packaging"))
        faults.kill_component(cluster.layout, f"kafka-{node}")

    result = saga.run_scenario(
        "3 nodes: group coordinator kill -9", inject,
        after_fault=lambda: faults.bring_back(cluster.layout),
    )
    assert_clean(result)


@pytest.mark.parametrize("round_", ROUNDS)
def test_transaction_coordinator_killed(saga: FaultySaga, cluster: KillableStack, round_: int) -> None:
    saga.start_supervised()
    admin = clients.admin_client(saga.settings)

    def inject() -> None:
        node = faults.transaction_coordinator(admin, f"{saga.settings.group('packaging')}-0")
        faults.kill_component(cluster.layout, f"kafka-{node}")

    result = saga.run_scenario(
        "3 nodes: transaction coordinator kill -9", inject,
        after_fault=lambda: faults.bring_back(cluster.layout),
    )
    assert_clean(result)


@pytest.mark.parametrize("round_", ROUNDS)
def test_broker_paused_longer_than_the_session_timeout(
    saga: FaultySaga, cluster: KillableStack, round_: int
) -> None:
    saga.start_supervised()
    admin = clients.admin_client(saga.settings)
    resumed: list[threading.Thread] = []

    def inject() -> None:
        node = faults.group_coordinator(admin, saga.settings.group("orders"))
        # The shipped session timeout is 10 s: 15 s is well past it.
        resumed.append(faults.pause(cluster.layout, f"kafka-{node}", 15))

    result = saga.run_scenario(
        "3 nodes: coordinator SIGSTOP 15 s, SIGCONT", inject,
        after_fault=lambda: resumed[0].join(60),
    )
    assert_clean(result)


def test_topics_on_three_brokers_need_two_copies_of_every_write(
    cluster: KillableStack, topic_prefix: str, tmp_path: Path
) -> None:
    """`choreo topics create` (and the harness, which makes the saga's topics as it does) sets
    `min.insync.replicas` 2 on each topic itself, not leaving it to a broker default that is 1
    on most clusters, where an `acks=all` write may be on the leader alone."""
    settings = Settings(
        bootstrap_servers=cluster.bootstrap_servers, schema_registry_url=cluster.schema_registry_url,
        topic_prefix=topic_prefix, replication_factor=3, state_dir=tmp_path / "state",
    )
    created = run_cli(settings, "topics", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    admin = clients.admin_client(settings)
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(topic_prefix)]
    assert {f"{topic_prefix}orders", f"{topic_prefix}packaging.dlq"} <= set(names)
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    for resource, future in admin.describe_configs(resources).items():
        entry = future.result(timeout=10)["min.insync.replicas"]
        assert (entry.value, ConfigSource(entry.source)) == ("2", ConfigSource.DYNAMIC_TOPIC_CONFIG), (
            resource, entry)
