"""`choreo replay SERVICE --dry-run` on a log the real workers wrote: no difference for the same
code, exactly the expected one for a changed decide, and nothing written to Kafka either way."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from choreo.kafka import clients
from harness.processes import wait_until
from harness.stack import StackEndpoints
from harness.topics import unique_prefix
from producers import commands, seed
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.e2e

CHANGED = "tests.support.packaging_out_of_stock"  # packaging whose every new order is out of stock

PATHS = {
    "completed": ["PlaceOrder", "OrderPlaced", "PackagePrepared", "DroneAssigned", "DeliveryCompleted",
                  "OrderCompleted", "StockShipped", "DroneReleased"],
    "out_of_stock": ["PlaceOrder", "OrderPlaced", "PackagingFailed", "OrderFailed", "OrderCompensated"],
    "no_address": ["PlaceOrder", "OrderPlaced", "PackagePrepared", "DroneAssigned", "DeliveryFailed",
                   "OrderFailed", "DroneReleased", "StockReleased", "OrderCompensated"],
    "no_drone": ["PlaceOrder", "OrderPlaced", "PackagePrepared", "DroneUnavailable", "OrderFailed",
                 "StockReleased", "OrderCompensated"],
}


def _now() -> datetime:
    return datetime.now(UTC)


class History:
    """Sagas of every path run by the real workers in two rounds, the workers stopped after."""

    def __init__(self, saga: SagaRun, second_round: datetime, second: list[Any]) -> None:
        self.saga = saga
        self.second_round = second_round  # every event of the first round is older
        self.second = second

    def dry_run(self, *args: str) -> tuple[int, dict[str, Any]]:
        out = self.saga.choreo("replay", "packaging", "--dry-run", "--json", *args)
        assert out.returncode in (0, 1), out.stderr
        return out.returncode, json.loads(out.stdout)

    def packaging_events(self, since: datetime | None = None) -> list[Any]:
        ms = 0 if since is None else since.timestamp() * 1000
        return [r.event for r in self.saga.events("packaging") if r.timestamp_ms >= ms]


def _round(saga: SagaRun, orders: dict[str, Any]) -> None:
    saga.send(orders.values())
    saga.wait_for_ends([o.order_id for o in orders.values()])
    # The saga's end is orders' verdict; the drone and stock may come back just after it.
    for name, order in orders.items():
        path = PATHS[name.split("-")[0]]

        def whole(o: Any = order, p: list[str] = path) -> bool:
            return Counter(["PlaceOrder", *saga.saga(o.order_id)]) == Counter(p)

        wait_until(whole, 60, f"every event of the {name} saga")


def _completed(hub: str) -> Any:
    return commands.place_order(hub, seed.stocked_skus(hub)[0], 2, seed.deliverable_addresses(hub)[0], _now())


@pytest.fixture(scope="module")
def history(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    saga = SagaRun(stack.bootstrap_servers, stack.schema_registry_url, unique_prefix(),
                   tmp_path_factory.mktemp("dryrun"))
    try:
        saga.seed(_now())
        saga.start_all()
        north = "hub-north"
        _round(saga, {
            "completed-north": _completed(north),
            "completed-south": _completed("hub-south"),
            "out_of_stock": commands.place_order(north, seed.UNSTOCKED_SKU, 1,
                                                 seed.deliverable_addresses(north)[0], _now()),
            "no_address": commands.place_order(north, seed.stocked_skus(north)[0], 1,
                                               seed.UNKNOWN_ADDRESSES[0], _now()),
            "no_drone": commands.place_order("hub-west", seed.stocked_skus("hub-west")[0], 1,
                                             seed.deliverable_addresses("hub-west")[0], _now()),
        })
        second_round = _now()
        second = {"completed-1": _completed(north), "completed-2": _completed("hub-east")}
        _round(saga, second)
        saga.stop_workers()
        yield History(saga, second_round, list(second.values()))
    finally:
        saga.close()


def _differences(doc: dict[str, Any]) -> Counter[tuple[str, str, str]]:
    """(input event id, change kind, event type) of every event answered differently."""
    return Counter((d["input"]["event_id"], e["kind"], e["type"])
                   for d in doc["differences"] for e in d["events"] if e["kind"] != "identical")


def _expected(events: list[Any]) -> Counter[tuple[str, str, str]]:
    """What the out-of-stock version changes: each packed order is refused instead, so nothing
    is later shipped or put back."""
    want: Counter[tuple[str, str, str]] = Counter()
    for e in events:
        name = type(e).__name__
        if name in ("PackagePrepared", "StockShipped", "StockReleased"):
            want[(e.causation_id, "removed", name)] += 1
        if name == "PackagePrepared":
            want[(e.causation_id, "added", "PackagingFailed")] += 1
    return want


def test_the_installed_code_replays_its_own_history_without_a_difference(history: History) -> None:
    code, doc = history.dry_run()
    assert code == 0 and doc["differs"] is False
    assert doc["differences"] == [] and doc["state"] == []
    own = history.packaging_events()
    # Every recorded own event was matched, identical, to the input that caused it.
    assert doc["events"] == {"identical": len(own), "changed": 0, "removed": 0, "added": 0}
    assert doc["inputs"] > len(own) and doc["code"] == "installed" and doc["from"] is None
    text = history.saga.choreo("replay", "packaging", "--dry-run")
    assert text.returncode == 0, text.stderr
    assert text.stdout.rstrip().endswith("no difference")
    assert f"events: {len(own)} identical, 0 changed" in text.stdout


def test_a_changed_decide_reports_exactly_the_expected_difference(history: History) -> None:
    code, doc = history.dry_run("--code", CHANGED)
    assert code == 1 and doc["differs"] is True and doc["code"] == CHANGED
    own = history.packaging_events()
    want = _expected(own)
    assert sum(1 for _id, kind, _t in want if kind == "added") == 6  # six orders were packed
    assert _differences(doc) == want
    refused = {d["input"]["order_id"] for d in doc["differences"] if d["input"]["type"] == "OrderPlaced"}
    assert all(e["dry"]["reason"] == "OUT_OF_STOCK" for d in doc["differences"]
               for e in d["events"] if e["kind"] == "added")
    # The state: no shelf gave anything, so those that shipped differ (those whose stock came
    # back are as recorded), and each of those orders is remembered as refused.
    shelves = {s["key"]: s for s in doc["state"] if s["table"] == "stock"}
    shipped = {f"{e.hub}/{e.sku}" for e in own if type(e).__name__ == "StockShipped"}
    assert set(shelves) == shipped and len(shipped) == 3
    for s in shelves.values():
        assert s["dry"] == {"on_hand": seed.STOCK_PER_SKU, "reserved": 0, "shipped": 0}
        assert s["actual"] != s["dry"]
    reservations = {s["key"].split("/", 1)[1]: s for s in doc["state"] if s["table"] == "reservations"}
    assert set(reservations) == refused
    assert all(s["dry"]["status"] == "refused" for s in reservations.values())
    text = history.saga.choreo("replay", "packaging", "--dry-run", "--code", f"{CHANGED}:SERVICE")
    assert text.returncode == 1, text.stderr
    assert text.stdout.count("- would no longer emit PackagePrepared") == 6
    assert text.stdout.count("+ would newly emit PackagingFailed") == 6
    assert text.stdout.rstrip().endswith("differences found")


def test_from_a_time_only_the_later_inputs_are_decided_on_the_state_before_them(history: History) -> None:
    at = history.second_round.isoformat()
    code, doc = history.dry_run("--from", at)
    assert code == 0 and doc["from"] == at and doc["state"] == []
    later = history.packaging_events(history.second_round)
    assert doc["events"]["identical"] == len(later)
    code, doc = history.dry_run("--from", at, "--code", CHANGED)
    assert code == 1
    assert _differences(doc) == _expected(later)
    assert {d["input"]["order_id"] for d in doc["differences"]} == {o.order_id for o in history.second}


def test_bad_arguments_exit_2_in_one_sentence(history: History) -> None:
    for args, words in [
        (["--code", "no_such_module_here"], "cannot import 'no_such_module_here'"),
        (["--code", "consumers.drones.service:SERVICE"], "is service 'drones', not 'packaging'"),
        (["--from", "12"], "not at an offset"),
        (["--from", "yesterday"], "neither an offset nor an ISO time"),
        (["--follow"], "--follow cannot be used with --dry-run"),
    ]:
        out = history.saga.choreo("replay", "packaging", "--dry-run", *args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], out.stderr
    unknown = history.saga.choreo("replay", "nosuch", "--dry-run")
    assert unknown.returncode == 2 and "unknown service 'nosuch'" in unknown.stderr


def test_a_dry_run_writes_nothing_to_kafka(history: History) -> None:
    def snapshot() -> tuple[dict[tuple[str, int], int], set[str]]:
        admin = clients.admin_client(history.saga.settings)
        prefix = history.saga.settings.topic_prefix
        topics = {name: t for name, t in admin.list_topics(timeout=10).topics.items()
                  if name.startswith(prefix)}
        reader = clients.reader_consumer(history.saga.settings, committed_only=False)
        try:
            ends = {(name, p): reader.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                    for name, t in topics.items() for p in t.partitions}
        finally:
            reader.close()
        groups = {g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid}
        return ends, groups

    before_ends, before_groups = snapshot()
    assert len(before_ends) >= 4 * 8  # every topic of the saga, four partitions each
    assert history.dry_run()[0] == 0
    assert history.dry_run("--code", CHANGED)[0] == 1
    after_ends, after_groups = snapshot()
    assert after_ends == before_ends
    assert after_groups == before_groups
