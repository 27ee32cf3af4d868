"""The stack the benchmark runs on: the configured one, the running local one, or its own."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from choreo.settings import load_settings
from choreo.stack import info as stack_info
from choreo.stack import lifecycle
from choreo.stack.discovery import layout_for, resolve_settings
from choreo.stack.layout import StackLayout
from choreo.stack.ports import free_port
from choreo.stack.readiness import kafka_ready, registry_ready


@dataclass(frozen=True)
class Endpoints:
    bootstrap_servers: str
    schema_registry_url: str
    source: str  # "env", "local stack" or "started by the bench"
    kafka_version: str = "unknown"
    registry_version: str = "unknown"


def _running_local_stack() -> Endpoints | None:
    settings = resolve_settings(load_settings())
    layout = layout_for(settings)
    info = stack_info.load(layout)
    if info is None or not lifecycle.running_components(layout, info):
        return None
    if not (kafka_ready(info) and registry_ready(info)):
        return None
    return Endpoints(
        info.bootstrap_servers, info.schema_registry_url, "local stack",
        info.kafka_version or "unknown", info.apicurio_version or "unknown",
    )


@contextmanager
def provide_endpoints() -> Iterator[Endpoints]:
    """KAFKA_BOOTSTRAP_SERVERS + SCHEMA_REGISTRY_URL if both are set; else the running local
    stack; else a stack of our own on free ports, stopped again at the end (only that one)."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    registry = os.environ.get("SCHEMA_REGISTRY_URL")
    if bootstrap and registry:
        yield Endpoints(bootstrap, registry, "env")
        return
    running = _running_local_stack()
    if running is not None:
        yield running
        return
    jars = load_settings().stack_dir
    state = Path(tempfile.mkdtemp(prefix="choreo-bench-stack-"))
    layout = StackLayout.of(state, jars_dir=jars)
    try:
        info = lifecycle.up(layout, brokers=1, kafka_port=free_port(), registry_port=free_port()).info
        yield Endpoints(
            info.bootstrap_servers, info.schema_registry_url, "started by the bench",
            info.kafka_version or "unknown", info.apicurio_version or "unknown",
        )
    finally:
        lifecycle.down(layout)
        shutil.rmtree(state, ignore_errors=True)
