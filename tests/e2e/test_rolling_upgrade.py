"""A rolling upgrade of the whole saga, v1 to v2, while orders flow, on the real stack.

v1 is the reference saga before order priorities and package weights (tests/support/reference_v1:
the repository's own history, run by putting it first on the workers' PYTHONPATH); v2 is the
checkout. The operator's procedure (docs/changing-an-event.md): v1 runs, its schemas registered,
seeded, orders placed. Then the v2 schemas are registered beside v1's, and the services are
upgraded one at a time, readers before writers (drones, packaging, orders, delivery): a v2
instance joins the service's consumer group, both hold partitions while orders keep coming
(EXPRESS ones among them), then the v1 instance stops. What must hold afterwards:

- every order ended, once (`choreo audit`);
- `choreo rebuild <service> --verify` passes for every service on the mixed log;
- every record of the saga's topics decodes with Apache Avro's reference implementation, from the
  schema it was written with to v2's, and to v1's (old code reads new records);
- `choreo replay packaging --dry-run` of v2 over the history differs exactly where v1 packed:
  those packages weigh nothing in the log, and v2 would have weighed them.

The shipped defaults throughout (no quicker timeouts): this is what an operator's upgrade meets.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from choreo import bootstrap
from choreo.domain import installation
from choreo.edge import CommandSender
from choreo.kafka import clients
from choreo.provision import installed_schemas
from choreo.serde.codec import Codec
from consumers.drones.events import DroneRegistered, RegisterDrone
from consumers.orders.events import EXPRESS, STANDARD, PlaceOrder
from consumers.packaging.events import AddStock, PackagePrepared, StockAdded
from consumers.reference import sku_weights
from harness.paths import REPO
from harness.processes import ChildProcess, run_cli, wait_until
from harness.stack import StackEndpoints
from harness.topics import unique_prefix
from harness.watch import EndWatcher
from producers.commands import edge_time
from producers.load_plan import plan_orders
from tests.support.reference_v1 import build_v1
from tests.support.stack_slice import StackSlice
from tests.support.topic_reader import ReadRecord, read_topic

pytestmark = pytest.mark.e2e

# Readers of the new fields first, then their writers (docs/changing-an-event.md).
UPGRADE_ORDER = ("drones", "packaging", "orders", "delivery")
V1_ORDERS = 12
ENDS_WHILE_MIXED = 3  # sagas that end while a v1 and a v2 instance share a group


class UpgradeSlice(StackSlice):
    quick_timeouts: dict[str, int] = {}  # the shipped defaults

    codec: Codec  # v2's classes, which read every version: set once the v1 schemas exist

    def events(self, logical: str) -> list[ReadRecord]:
        return read_topic(self.settings, self.topic(logical), self.codec)

    def raw(self, logical: str) -> list[ReadRecord]:
        return read_topic(self.settings, self.topic(logical))


def _ok(done: Any, what: str) -> str:
    assert done.returncode == 0, f"{what}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return str(done.stdout)


class OrderFeeder:
    """Places valid orders from the v2 edge, every other one EXPRESS, until stopped."""

    def __init__(self, run: UpgradeSlice, per_second: float = 4.0) -> None:
        # A codec of its own: the test's thread reads with the other one meanwhile.
        self.sender = CommandSender(run.settings, bootstrap.build_codec(run.settings))
        self.interval = 1 / per_second
        self.sent: list[PlaceOrder] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, name="order-feeder", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> OrderFeeder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.sender.flush()
        assert self.error is None, f"the feeder failed: {self.error!r}"

    def _feed(self) -> None:
        try:
            for i, planned in enumerate(plan_orders(10_000, 0, 0, 11, datetime.now(UTC))):
                if self._stop.wait(self.interval):
                    return
                # Stamped as it leaves: the drones' wait and the deadline count from it.
                command = dataclasses.replace(planned.command, occurred_at=edge_time(datetime.now(UTC)),
                                              priority=EXPRESS if i % 2 else STANDARD)
                self.sender.send_all([command])
                self.sent.append(command)
        except BaseException as e:  # noqa: BLE001 - reported by __exit__, in the test's thread
            self.error = e


def _holding_partitions(admin: AdminClient, group: str) -> int:
    """How many members of `group` hold at least one partition (0 while the broker cannot say:
    a group in the middle of a rebalance is asked again)."""
    [(_, future)] = admin.describe_consumer_groups([group], request_timeout=10).items()
    try:
        description = future.result(timeout=15)
    except KafkaException:
        return 0
    return sum(1 for m in description.members if m.assignment and m.assignment.topic_partitions)


def _wait_both_hold(admin: AdminClient, group: str, service: str) -> None:
    wait_until(lambda: _holding_partitions(admin, group) == 2, 120,
               f"v1 and v2 instances of {service} both holding partitions")


def _wait_more_ended(ends: EndWatcher, more: int, what: str) -> None:
    """Until `more` sagas have ended beyond those ended now (the watcher reads headers only)."""
    ends.poll(0)
    count = len(ends.ended) + more

    def enough() -> bool:
        ends.poll(0.2)
        return len(ends.ended) >= count

    wait_until(enough, 180, what)


def _wait_seeded(run: UpgradeSlice) -> None:
    def applied() -> bool:
        stock = [r for r in run.events("packaging.commands") if isinstance(r.event, AddStock)]
        drones = [r for r in run.events("drones.commands") if isinstance(r.event, RegisterDrone)]
        added = [r for r in run.events("packaging") if isinstance(r.event, StockAdded)]
        registered = [r for r in run.events("drones") if isinstance(r.event, DroneRegistered)]
        return bool(stock) and len(added) == len(stock) and len(registered) == len(drones)

    wait_until(applied, 120, "the seed applied by the v1 services")


def _avro_decodes(run: UpgradeSlice, v1_schemas: Path) -> Counter[str]:
    """Every record of the saga's topics read with Apache Avro's reference implementation, from
    its writer's schema (by id, from the registry) to v2's and to v1's; how many records of the
    types v2 changed each version wrote."""
    registry = clients.registry_client(run.settings)
    v2 = {name: avro.schema.parse(es.text) for name, es in installed_schemas(
        list(installation().services)).items()}
    v1 = {}
    for path in v1_schemas.rglob("*.avsc"):
        parsed = avro.schema.parse(path.read_text())
        v1[parsed.fullname] = parsed  # type: ignore[attr-defined]
    writers: dict[int, Any] = {}
    seen: Counter[str] = Counter()
    topics = {t for s in installation().services for t in (*s.inputs, s.own_topic)}
    for topic in sorted(topics):
        for record in run.raw(topic):
            assert record.value is not None
            magic, schema_id = struct.unpack_from(">bI", record.value)
            assert magic == 0, (topic, record.offset)
            if schema_id not in writers:
                text = registry.get_schema(schema_id).schema_str
                assert text is not None
                writers[schema_id] = avro.schema.parse(text)
            writer = writers[schema_id]
            name = writer.fullname
            for reader in (v2.get(name), v1.get(name)):
                if reader is None:  # TimerFired: choreo's own, not the domain's (v1's folder)
                    continue
                body = io.BytesIO(record.value[5:])
                decoded = avro.io.DatumReader(writer, reader).read(avro.io.BinaryDecoder(body))
                assert isinstance(decoded, dict) and body.tell() == len(record.value) - 5
            if name in v1 and v1[name].to_json() != v2[name].to_json():  # a type v2 changed
                seen["v2 writer" if writer.to_json() == v2[name].to_json() else "v1 writer"] += 1
    return seen


def test_a_rolling_upgrade_from_v1_to_v2_ends_every_order_and_rebuilds_the_mixed_log(
    stack: StackEndpoints, tmp_path: Path,
) -> None:
    v1 = build_v1(tmp_path / "v1")
    # PYTHONSAFEPATH: `python -m` would put the working directory (the checkout, v2) first.
    old = {"PYTHONPATH": f"{v1}:{REPO}", "PYTHONSAFEPATH": "1"}
    run = UpgradeSlice(stack.bootstrap_servers, stack.schema_registry_url, unique_prefix(), tmp_path)
    try:
        # -- v1, as it ran before the upgrade --------------------------------------------------
        for args in (("topics", "create"), ("schemas", "register"), ("seed",)):
            _ok(run_cli(run.settings, *args, timeout=180, **old), f"v1 choreo {' '.join(args)}")
        ends = EndWatcher(run.settings)
        workers: dict[str, ChildProcess] = {s: run.start(s, "0", **old) for s in UPGRADE_ORDER}
        run.codec = bootstrap.build_codec(run.settings)
        _wait_seeded(run)
        _ok(run_cli(run.settings, "load", "--orders", str(V1_ORDERS), "--rate", "12",
                    "--out-of-stock", "0", "--unknown-address", "0", "--no-drone", "0",
                    timeout=180, **old), "v1 choreo load")

        # -- the upgrade: v2's schemas beside v1's, then each service in turn ------------------
        _ok(run.choreo("schemas", "register", timeout=180), "v2 choreo schemas register")
        admin = clients.admin_client(run.settings)
        with OrderFeeder(run):
            for service in UPGRADE_ORDER:
                group = run.settings.group(service)
                upgraded = run.start(service, "1")
                _wait_both_hold(admin, group, service)
                _wait_more_ended(ends, ENDS_WHILE_MIXED,
                                 f"sagas ending while {service} runs v1 and v2 side by side")
                assert workers[service].stop() == 0, workers[service].tail()
                workers[service] = upgraded
            _wait_more_ended(ends, ENDS_WHILE_MIXED, "sagas ending on v2 alone")

        placed = [r.event for r in run.events("orders.commands") if isinstance(r.event, PlaceOrder)]
        assert len(placed) > V1_ORDERS and any(p.priority == EXPRESS for p in placed)
        assert len(ends.wait_for([p.order_id for p in placed], timeout=240)) == len(placed)
        ends.close()
        run.stop_workers()
        for w in workers.values():
            assert not w.alive()

        # -- what must hold ----------------------------------------------------------------------
        _ok(run.choreo("audit", timeout=300), "choreo audit")  # one end per saga, all back
        for service in UPGRADE_ORDER:
            _ok(run.rebuild_verify(service), f"choreo rebuild {service} --verify")
        writers = _avro_decodes(run, v1 / "consumers" / "schemas")
        assert writers["v1 writer"] and writers["v2 writer"], writers

        packed = [r.event for r in run.events("packaging") if isinstance(r.event, PackagePrepared)]
        by_v1 = {p.order_id: p for p in packed if p.weight_grams == 0}
        assert by_v1 and len(by_v1) < len(packed)  # both versions packed
        dry = run.choreo("replay", "packaging", "--dry-run", "--json", timeout=300)
        assert dry.returncode == 1, dry.stderr  # 1: differences found
        report = json.loads(dry.stdout)
        differing = {d["input"]["order_id"]: d["events"] for d in report["differences"]}
        assert set(differing) == set(by_v1)
        for order_id, events in differing.items():
            package = by_v1[order_id]
            expected = sku_weights()[package.sku] * package.quantity
            assert [(e["kind"], e["type"], e["fields"]) for e in events] == [
                ("changed", "PackagePrepared", {"weight_grams": {"actual": 0, "dry": expected}})]
        assert report["state"] == []
    finally:
        run.close()
