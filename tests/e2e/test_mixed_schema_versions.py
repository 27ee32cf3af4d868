"""Old and new writers on one topic: OrderCompleted written with schema v1 and v2 in one log.

A rolling upgrade as an operator does it. The previous release registered its schemas
(OrderCompleted v1, without `delivered_to`), and its orders worker ends a few sagas. The upgrade
registers the current schemas (v2 becomes version 2 of the subject, under FULL_TRANSITIVE)
and replaces that worker with the current one, on the same topic and store, which ends more
sagas. The orders topic then holds OrderCompleted records under two writer schema ids.

What must hold: every reader decodes each record with the schema id it was written with and
resolves it to the current schema (v1 records read with `delivered_to=None`), in the live
services that consume the orders topic (no dead letters), in `choreo rebuild orders --verify`
(which replays every record of the topic, v1 ones included, and matches the live store) and in
`choreo audit`.
"""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema

from choreo.bootstrap import event_classes
from choreo.domain import installation
from choreo.kafka import clients
from choreo.serde.codec import subject_for
from choreo.serde.compat import readable_by
from choreo.serde.registration import register_all
from choreo.serde.schemas import load_event_schemas
from choreo.settings import Settings
from choreo.timers import SCHEMA_DIR
from consumers.audit import audit
from consumers.orders.events import OrderCompleted, PlaceOrder
from harness.paths import REPO
from harness.processes import wait_until
from harness.stack import StackEndpoints
from producers import commands, seed
from producers.cli import saga_events
from tests.e2e import previous_release
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.e2e

PREVIOUS = "tests.e2e.previous_release:DOMAIN"
V2 = REPO / "schemas" / "orders" / "OrderCompleted.avsc"
HUBS = ("hub-north", "hub-south")


def _now() -> datetime:
    return datetime.now(UTC)


def _orders(wave: int) -> dict[str, PlaceOrder]:
    """Two orders per hub that complete, and one that fails (and is compensated): order id -> it."""
    placed = [
        commands.place_order(hub, seed.stocked_skus(hub)[i], 1 + i,
                             seed.deliverable_addresses(hub)[2 * wave + i], _now())
        for hub in HUBS for i in range(2)
    ]
    placed.append(commands.place_order(HUBS[0], seed.stocked_skus(HUBS[0])[0], 1,
                                       seed.UNKNOWN_ADDRESSES[wave], _now()))
    return {o.order_id: o for o in placed}


def _writer_id(value: bytes | None) -> int:
    assert value is not None
    magic, schema_id = struct.unpack_from(">bI", value)
    assert magic == 0
    return int(schema_id)


def test_records_written_with_v1_and_v2_are_read_rebuilt_and_audited(
    stack: StackEndpoints, topic_prefix: str, tmp_path: Path
) -> None:
    v1_text, v2_text = previous_release.ORDER_COMPLETED_V1.read_text(), V2.read_text()
    assert v1_text != v2_text and readable_by(v1_text, v2_text) is None

    # The previous release's `choreo schemas register`: OrderCompleted v1 is version 1.
    settings = Settings(bootstrap_servers=stack.bootstrap_servers,
                        schema_registry_url=stack.schema_registry_url, topic_prefix=topic_prefix)
    registry = clients.registry_client(settings)
    old = [previous_release.ORDERS_V1]
    register_all(registry, settings, old,  # choreo's own TimerFired is in every release's codec
                 load_event_schemas(event_classes(old), SCHEMA_DIR, *previous_release.DOMAIN.schema_dirs))
    subject = subject_for(settings.topic("orders"), OrderCompleted.SCHEMA)
    v1_id = registry.lookup_schema(subject, Schema(v1_text, "AVRO")).schema_id

    # The upgrade registers the current schemas (the registry checks v2 against v1) before any
    # worker of the new release starts; the old orders worker goes on writing v1 meanwhile.
    saga = SagaRun(stack.bootstrap_servers, stack.schema_registry_url, topic_prefix, tmp_path)
    try:
        assert registry.get_versions(subject) == [1, 2]
        v2_id = registry.lookup_schema(subject, Schema(v2_text, "AVRO")).schema_id
        assert v1_id != v2_id

        saga.seed(_now())
        old_orders = saga.start("orders", CHOREO_DOMAINS=PREVIOUS)
        for name in installation().service_names:
            if name != "orders":
                saga.start(name)
        saga.wait_seeded()
        first = _orders(0)
        saga.send(first.values())
        ends = saga.wait_for_ends(first)

        assert old_orders.stop() == 0, old_orders.log()[-3000:]
        saga.start("orders")
        second = _orders(1)
        saga.send(second.values())
        ends |= saga.wait_for_ends(second)
        failing = {o for o, c in {**first, **second}.items() if c.address in seed.UNKNOWN_ADDRESSES}
        assert ends == {o: "compensated" if o in failing else "completed" for o in {**first, **second}}
        # Orders' verdict comes first; shipped stock and returned drones may follow it.
        wait_until(lambda: audit(saga_events(saga.settings)).ok, 60,
                   "every saga to give back its stock and drone")
        saga.stop_workers()

        completed = {r.event.order_id: r for r in saga.events("orders")
                     if isinstance(r.event, OrderCompleted)}
        assert set(completed) == {o for o in ends if o not in failing}
        for order_id, r in completed.items():
            if order_id in first:
                assert _writer_id(r.value) == v1_id and r.event.delivered_to is None, r
            else:
                assert _writer_id(r.value) == v2_id, r
                assert r.event.delivered_to == second[order_id].address
        for name in installation().service_names:  # packaging and delivery read every OrderCompleted live
            assert saga.raw(f"{name}.dlq") == [], name

        verify = saga.rebuild_verify("orders")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert verify.stdout.count(" ok ") == saga.settings.partitions, verify.stdout
        replayed = sum(int(n) for n in re.findall(r" events=(\d+) ", verify.stdout))
        assert replayed == len(saga.raw("orders")), verify.stdout

        checked = saga.choreo("audit")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "ended_once" in checked.stdout and "VIOLATED" not in checked.stdout
    finally:
        saga.close()
