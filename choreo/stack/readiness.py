"""Wait until the stack really answers: a Kafka metadata request and a registry API request."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from confluent_kafka.admin import AdminClient

from choreo.stack.errors import StackStartError
from choreo.stack.info import StackInfo
from choreo.stack.ports import port_answers


def kafka_ready(info: StackInfo) -> bool:
    """True when every node answers on its port and a metadata request lists all brokers."""
    if not all(port_answers(port) for port in info.kafka_ports):
        return False  # spares librdkafka's connection-refused noise while the JVM starts
    admin = AdminClient(
        {"bootstrap.servers": info.bootstrap_servers, "log_level": 0, "socket.timeout.ms": 2000}
    )
    try:
        metadata = admin.list_topics(timeout=2)
    except Exception:  # noqa: BLE001 - any failure just means "not yet"
        return False
    return len(metadata.brokers) == info.brokers


def registry_ready(info: StackInfo) -> bool:
    """True when the Confluent-compatible API lists subjects."""
    if not port_answers(info.registry_port):
        return False
    try:
        response = httpx.get(f"{info.schema_registry_url}/subjects", timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def wait_until(
    what: str,
    check: Callable[[], bool],
    deadline: float,
    failed: Callable[[], str | None] = lambda: None,
) -> None:
    """Poll `check` until it holds; stop early when `failed` reports why it never will."""
    delay = 0.1
    while True:
        if check():
            return
        reason = failed()
        if reason:
            raise StackStartError(f"{what} did not start: {reason}")
        if time.monotonic() >= deadline:
            raise StackStartError(f"{what} was not ready in time")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
