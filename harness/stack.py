"""A real Kafka + schema registry: the one named by KAFKA_BOOTSTRAP_SERVERS + SCHEMA_REGISTRY_URL,
else (if asked) the running local stack or Docker, else a throw-away local stack on free ports."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from choreo.stack import lifecycle
from choreo.stack.layout import StackLayout
from choreo.stack.ports import free_ports
from harness.paths import stack_jars


@dataclass(frozen=True)
class StackEndpoints:
    """How to reach the stack, and what may be done to it (restart hooks and layout: local only)."""

    bootstrap_servers: str
    schema_registry_url: str  # the Confluent-compatible base URL (.../apis/ccompat/v7)
    source: str  # "env", "local stack", "docker" or "throw-away"
    kafka_version: str = "unknown"
    registry_version: str = "unknown"
    restart_registry: Callable[[], None] | None = None
    restart_stack: Callable[[], None] | None = None
    # A stack this machine runs (throw-away, or `choreo stack up`): where its pids are. Tests
    # kill processes only through a throw-away stack's (tests/faults/conftest.py).
    layout: StackLayout | None = None

    @property
    def registry_root(self) -> str:
        """http://host:port of the registry."""
        return registry_root_of(self.schema_registry_url)


def registry_root_of(ccompat_url: str) -> str:
    """http://host:port of a registry given its ccompat base URL."""
    return ccompat_url.split("/apis/", 1)[0].rstrip("/")


def from_env() -> StackEndpoints | None:
    """The stack named by KAFKA_BOOTSTRAP_SERVERS + SCHEMA_REGISTRY_URL, when both are set."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    registry = os.environ.get("SCHEMA_REGISTRY_URL")
    if not (bootstrap and registry):
        return None
    return StackEndpoints(bootstrap, registry, "env")


def running_local_stack() -> StackEndpoints | None:
    """The local stack of `choreo stack up`, when it is running and answers."""
    from choreo.settings import load_settings
    from choreo.stack import info as stack_info
    from choreo.stack.discovery import layout_for, resolve_settings
    from choreo.stack.readiness import kafka_ready, registry_ready

    layout = layout_for(resolve_settings(load_settings()))
    info = stack_info.load(layout)
    if info is None or not lifecycle.running_components(layout, info):
        return None
    if not (kafka_ready(info) and registry_ready(info)):
        return None
    return StackEndpoints(
        info.bootstrap_servers, info.schema_registry_url, "local stack",
        info.kafka_version or "unknown", info.apicurio_version or "unknown", layout=layout,
    )


def broker_pids(endpoints: StackEndpoints) -> list[int]:
    """The pids of the Kafka nodes of a stack this machine runs (none for one reached by address)."""
    from choreo.stack import info as stack_info

    if endpoints.layout is None:
        return []
    running = lifecycle.running_components(endpoints.layout, stack_info.load(endpoints.layout))
    return [pid for component, pid in running.items() if component.startswith("kafka-")]


def docker_answers(timeout: float = 2.0) -> bool:
    """True when a Docker engine answers a ping quickly; never hangs on a missing engine."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return False


@contextmanager
def docker_stack() -> Iterator[StackEndpoints]:
    """Kafka and Apicurio in containers (the same images as docker-compose.yml)."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.kafka import KafkaContainer

    kafka = KafkaContainer("apache/kafka:4.2.2").with_kraft()
    registry = DockerContainer("apicurio/apicurio-registry:3.3.3").with_exposed_ports(8080)
    with kafka, registry:
        wait_for_logs(registry, "Listening on", timeout=180)
        root = f"http://{registry.get_container_host_ip()}:{registry.get_exposed_port(8080)}"
        yield StackEndpoints(kafka.get_bootstrap_server(), f"{root}/apis/ccompat/v7", "docker")


@contextmanager
def throwaway_stack(
    brokers: int = 1, kafka_port: int | None = None, registry_port: int | None = None,
    purge: bool = False,
) -> Iterator[StackEndpoints]:
    """The Maven-jar stack in a temp folder on free ports (jars shared with the project's .stack),
    stopped and deleted at the end."""
    state = Path(tempfile.mkdtemp(prefix=f"choreo-stack-{brokers}-"))
    layout = StackLayout.of(state, jars_dir=stack_jars())
    try:
        if kafka_port is None or registry_port is None:
            kafka_port, registry_port = free_ports(2)
        info = lifecycle.up(
            layout, brokers=brokers, kafka_port=kafka_port, registry_port=registry_port
        ).info

        def restart_registry() -> None:
            lifecycle.restart_registry(layout)

        def restart_stack() -> None:
            lifecycle.down(layout)
            lifecycle.up(layout)

        yield StackEndpoints(
            info.bootstrap_servers, info.schema_registry_url, "throw-away",
            info.kafka_version or "unknown", info.apicurio_version or "unknown",
            restart_registry=restart_registry, restart_stack=restart_stack, layout=layout,
        )
    finally:
        lifecycle.down(layout, purge=purge)
        shutil.rmtree(state, ignore_errors=True)


@contextmanager
def provide_stack(running_local: bool = False, docker: bool = False) -> Iterator[StackEndpoints]:
    """The stack from the environment if set; else the running local stack (`running_local`);
    else Docker if it answers (`docker`); else a throw-away stack, stopped at the end."""
    given = from_env() or (running_local_stack() if running_local else None)
    if given is not None:
        yield given
    elif docker and docker_answers():
        with docker_stack() as endpoints:
            yield endpoints
    else:
        with throwaway_stack() as endpoints:
            yield endpoints
