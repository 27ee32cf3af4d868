"""`choreo audit` on the real stack cannot pass without reading the log, and
the tools show a record's own type, not its header's.

No workers run: the records are written as a service, a stranger or a dead-lettering service
would have written them, so each outcome follows from the log alone.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from choreo.kafka import clients
from choreo.kafka.partitioner import partition_for
from consumers.orders.events import CancelOrder, OrderPlaced
from harness.processes import run_cli
from producers import commands, seed
from tests.support.records import record
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.e2e

HUB = "hub-north"


def _produce(saga: SagaRun, logical: str, value: bytes, *, key: bytes | None = HUB.encode(),
             partition: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> int:
    """Write one record as a plain producer would; its offset."""
    producer = clients.plain_producer(saga.settings)
    where: list[int] = []
    target = partition if partition is not None else partition_for(HUB.encode(), saga.settings.partitions)
    sent: list[tuple[str, str | bytes | None]] = list(headers or [])
    producer.produce(saga.topic(logical), key=key, value=value, partition=target, headers=sent,
                     on_delivery=lambda _err, msg: where.append(msg.offset() or 0))
    assert producer.flush(30) == 0
    return where[0]


def _errors(stderr: str) -> list[str]:
    """The error lines: stderr also carries the audit's progress lines on a slow machine."""
    lines = stderr.strip().splitlines()
    assert all(line.startswith(("error: ", "audit: read ")) for line in lines), stderr
    return [line for line in lines if line.startswith("error: ")]


def _open_saga(saga: SagaRun) -> OrderPlaced:
    """An accepted order with no end yet, on the orders service's own topic."""
    placed: OrderPlaced = record(OrderPlaced, order_id="open-1", sku="SKU-0001", quantity=1, address="a")
    _produce(saga, "orders", saga.codec.encode(saga.topic("orders"), placed),
             headers=[("event_type", OrderPlaced.SCHEMA.encode())])
    return placed


def test_an_audit_whose_registry_does_not_answer_exits_2_in_one_sentence_in_seconds(saga: SagaRun) -> None:
    _open_saga(saga)
    with_registry = saga.choreo("audit")
    assert with_registry.returncode == 1 and "open-1: no end yet" in with_registry.stdout
    with socket.socket() as s:  # bound, never listening: nothing answers there
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/apis/ccompat/v7"
        started = time.monotonic()
        ran = run_cli(saga.settings, "audit", timeout=120, SCHEMA_REGISTRY_URL=dead)
        took = time.monotonic() - started
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "Audit of" not in ran.stdout  # no table that could read as a pass
    lines = _errors(ran.stderr)
    assert len(lines) == 1 and "schema registry" in lines[0] and "did not run" in lines[0], ran.stderr
    assert took < 30, f"took {took:.0f}s"


def test_a_record_on_an_own_topic_the_audit_cannot_read_fails_it_unless_a_service_dead_lettered_it(
    saga: SagaRun,
) -> None:
    junk_offset = _produce(saga, "orders", b"\x00junk")
    ran = saga.choreo("audit", "--allow-in-flight")
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "could not read 1 record(s) of the services' own topics" in ran.stderr
    assert f"{saga.topic('orders')}[" in ran.stderr and f"]@{junk_offset}" in ran.stderr
    assert len(_errors(ran.stderr)) == 1, ran.stderr

    # A service refused it (as a reader of the topic does): it is accounted for, and reported.
    home = partition_for(HUB.encode(), saga.settings.partitions)
    _produce(saga, "packaging.dlq", b"\x00junk", headers=[
        ("dlq.error.class", b"DecodeError"), ("dlq.error.message", b"malformed Avro body"),
        ("dlq.source.topic", saga.topic("orders").encode()),
        ("dlq.source.partition", str(home).encode()), ("dlq.source.offset", str(junk_offset).encode()),
    ])
    # And a valid command on a partition its key does not map to (librdkafka's default partitioner).
    order = commands.place_order(HUB, seed.stocked_skus(HUB)[0], 1, seed.deliverable_addresses(HUB)[0],
                                 datetime.now(UTC))
    elsewhere = (home + 1) % saga.settings.partitions
    _produce(saga, "orders.commands", saga.codec.encode(saga.topic("orders.commands"), order),
             partition=elsewhere)
    _open_saga(saga)
    ran = run_cli(saga.settings, "audit", "--allow-in-flight", COLUMNS="200")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = " ".join(ran.stdout.split())
    assert "Audit of 1 accepted sagas (1 in flight)" in out
    assert "Refused records" in out
    assert "packaging.dlq │ DecodeError │ 1" in out
    assert "refused on own topic │ orders │ undecodable or foreign │ 1" in out
    assert "misrouted │ orders.commands │ not on its key's partition │ 1" in out
    assert f"key 'hub-north' belongs on partition {home}" in out


def test_replay_shows_the_records_type_and_flags_a_header_that_claims_another(saga: SagaRun) -> None:
    order = commands.place_order(HUB, seed.stocked_skus(HUB)[0], 1, seed.deliverable_addresses(HUB)[0],
                                 datetime.now(UTC))
    _produce(saga, "orders.commands", saga.codec.encode(saga.topic("orders.commands"), order),
             headers=[("event_type", CancelOrder.SCHEMA.encode()), ("order_id", order.order_id.encode())])
    ran = saga.choreo("replay", "orders.commands", "--json")
    assert ran.returncode == 0, ran.stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [(x["type"], x["header_says"]) for x in lines] == [(type(order).SCHEMA, CancelOrder.SCHEMA)]
    table = saga.choreo("replay", "orders.commands", "--type", "CancelOrder")
    assert table.returncode == 0 and "0 record(s)" in table.stderr
