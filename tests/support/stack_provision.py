"""Provide a real Kafka + schema registry for a test session: from env, Docker, or the local stack."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StackEndpoints:
    """How tests reach the stack, and what they may do to it (restart hooks are optional)."""

    bootstrap_servers: str
    schema_registry_url: str  # the Confluent-compatible base URL (.../apis/ccompat/v7)
    registry_root: str  # http://host:port
    source: str  # "env", "docker" or "local"
    restart_registry: Callable[[], None] | None = None
    restart_stack: Callable[[], None] | None = None
    layout: Any = None  # the local stack's StackLayout, for tests that kill its processes


def registry_root_of(ccompat_url: str) -> str:
    """http://host:port of a registry given its ccompat base URL."""
    return ccompat_url.split("/apis/", 1)[0].rstrip("/")


def from_env() -> StackEndpoints | None:
    """The stack named by KAFKA_BOOTSTRAP_SERVERS + SCHEMA_REGISTRY_URL, when both are set."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    registry = os.environ.get("SCHEMA_REGISTRY_URL")
    if not (bootstrap and registry):
        return None
    return StackEndpoints(bootstrap, registry, registry_root_of(registry), "env")


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

    kafka = KafkaContainer("apache/kafka:4.3.0").with_kraft()
    registry = DockerContainer("apicurio/apicurio-registry:3.3.3").with_exposed_ports(8080)
    with kafka, registry:
        wait_for_logs(registry, "Listening on", timeout=180)
        root = f"http://{registry.get_container_host_ip()}:{registry.get_exposed_port(8080)}"
        yield StackEndpoints(
            kafka.get_bootstrap_server(), f"{root}/apis/ccompat/v7", root, "docker"
        )


@contextmanager
def local_stack() -> Iterator[StackEndpoints]:
    """The Maven-jar stack on free ports in a temp folder, jars shared with the project's .stack."""
    from choreo.stack import lifecycle
    from choreo.stack.layout import StackLayout
    from choreo.stack.ports import free_ports

    jars = Path(os.environ.get("CHOREO_STACK_DIR", REPO_ROOT / ".stack"))
    state = Path(tempfile.mkdtemp(prefix="choreo-test-stack-"))
    layout = StackLayout.of(state, jars_dir=jars)
    try:
        kafka_port, registry_port = free_ports(2)
        result = lifecycle.up(layout, brokers=1, kafka_port=kafka_port, registry_port=registry_port)
        info = result.info

        def restart_registry() -> None:
            lifecycle.restart_registry(layout)

        def restart_stack() -> None:
            lifecycle.down(layout)
            lifecycle.up(layout)

        yield StackEndpoints(
            info.bootstrap_servers,
            info.schema_registry_url,
            info.registry_root,
            "local",
            restart_registry=restart_registry,
            restart_stack=restart_stack,
            layout=layout,
        )
    finally:
        lifecycle.down(layout)
        shutil.rmtree(state, ignore_errors=True)


@contextmanager
def provide_stack() -> Iterator[StackEndpoints]:
    """Env if set, else Docker if it answers, else the local stack."""
    given = from_env()
    if given is not None:
        yield given
    elif docker_answers():
        with docker_stack() as endpoints:
            yield endpoints
    else:
        with local_stack() as endpoints:
            yield endpoints
