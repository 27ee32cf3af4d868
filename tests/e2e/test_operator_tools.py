"""The operator tools (replay, trace, state, dlq, reset) against a real saga run on the real stack."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from choreo.kafka import clients
from choreo.kafka.partitioner import partition_for
from choreo.ops.dlq_retry import retry
from choreo.ops.log_reader import to_millis
from choreo.settings import Settings
from consumers.orders.service import SERVICE as ORDERS
from harness.processes import run_cli, wait_until
from harness.stack import StackEndpoints
from harness.topics import unique_prefix
from producers import commands, seed
from tests.support.saga_run import SagaRun
from tests.support.topic_reader import read_topic

pytestmark = pytest.mark.e2e

PATHS = {
    "completed": ["PlaceOrder", "OrderPlaced", "PackagePrepared", "DroneAssigned", "DeliveryCompleted",
                  "OrderCompleted", "StockShipped", "DroneReleased"],
    "out_of_stock": ["PlaceOrder", "OrderPlaced", "PackagingFailed", "OrderFailed", "OrderCompensated"],
    "no_address": ["PlaceOrder", "OrderPlaced", "PackagePrepared", "DroneAssigned", "DeliveryFailed",
                   "OrderFailed", "DroneReleased", "StockReleased", "OrderCompensated"],
}


def _now() -> datetime:
    return datetime.now(UTC)


class Ran:
    """A finished saga run: the orders by path, plus a few more to make the log less trivial."""

    def __init__(self, saga: SagaRun, orders: dict[str, Any]) -> None:
        self.saga = saga
        self.orders = orders

    def lines(self, *args: str) -> list[dict[str, Any]]:
        out = self.saga.choreo(*args)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.fixture(scope="module")
def ran(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    saga = SagaRun(stack.bootstrap_servers, stack.schema_registry_url, unique_prefix(),
                   tmp_path_factory.mktemp("ops"))
    try:
        saga.seed(_now())
        saga.start_all()
        north, south = "hub-north", "hub-south"
        address = seed.deliverable_addresses(north)[0]
        sku = seed.stocked_skus(north)[0]
        orders = {
            "completed": commands.place_order(north, sku, 2, address, _now()),
            "out_of_stock": commands.place_order(north, seed.UNSTOCKED_SKU, 1, address, _now()),
            "no_address": commands.place_order(north, sku, 1, seed.UNKNOWN_ADDRESSES[0], _now()),
            "no_drone": commands.place_order("hub-west", seed.stocked_skus("hub-west")[0], 1,
                                             seed.deliverable_addresses("hub-west")[0], _now()),
            "other_hub": commands.place_order(south, seed.stocked_skus(south)[0], 1,
                                              seed.deliverable_addresses(south)[0], _now()),
        }
        saga.send(orders.values())
        saga.wait_for_ends([o.order_id for o in orders.values()])
        # The saga's end is orders' verdict; the drone and stock may come back just after it.
        for path, names in PATHS.items():

            def whole(p: str = path, n: list[str] = names) -> bool:
                return Counter(["PlaceOrder", *saga.saga(orders[p].order_id)]) == Counter(n)

            wait_until(whole, 60, f"every event of the {path} saga")
        saga.stop_workers()
        yield Ran(saga, orders)
    finally:
        saga.close()


def _one_sentence(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for word in words:
        assert word in lines[0], lines[0]


# -- replay -----------------------------------------------------------------------------------------


def test_replay_prints_exactly_the_records_of_the_topic_in_partition_offset_order(ran: Ran) -> None:
    expected = ran.saga.events("orders")
    lines = ran.lines("replay", "orders", "--json")
    assert [(x["partition"], x["offset"]) for x in lines] == [(r.partition, r.offset) for r in expected]
    assert [x["event"]["event_id"] for x in lines] == [r.event.event_id for r in expected]
    assert set(lines[0]) >= {"topic", "partition", "offset", "timestamp", "type", "key", "headers", "event"}
    first = expected[0]
    assert lines[0]["topic"] == "orders"
    assert lines[0]["type"] == type(first.event).SCHEMA == lines[0]["headers"]["event_type"]
    assert lines[0]["key"] == first.event.hub
    assert datetime.fromisoformat(lines[0]["timestamp"]).timestamp() * 1000 == first.timestamp_ms
    table = ran.saga.choreo("replay", "orders")
    assert table.returncode == 0 and table.stdout.count("OrderPlaced") == sum(
        type(r.event).__name__ == "OrderPlaced" for r in expected)
    assert f"{len(expected)} record(s)" in table.stderr


def test_replay_filters_by_order_hub_type_offset_and_time(ran: Ran) -> None:
    expected = ran.saga.events("orders")
    completed = ran.orders["completed"].order_id
    by_order = ran.lines("replay", "orders", "--order", completed, "--json")
    assert [x["event"]["event_id"] for x in by_order] == [
        r.event.event_id for r in expected if r.event.order_id == completed]
    assert [x["type"].rsplit(".", 1)[1] for x in by_order] == ["OrderPlaced", "OrderCompleted"]

    failed = ran.lines("replay", "orders", "--type", "OrderFailed", "--json")
    assert sorted(x["event"]["reason"] for x in failed) == ["ADDRESS_NOT_FOUND", "NO_DRONE", "OUT_OF_STOCK"]

    south = ran.lines("replay", "orders", "--hub", "hub-south", "--json")
    assert [x["offset"] for x in south] == [r.offset for r in expected if r.event.hub == "hub-south"]
    assert {x["partition"] for x in south} == {partition_for(b"hub-south", 4)}

    p, records = expected[-1].partition, [r for r in expected if r.partition == expected[-1].partition]
    middle = records[len(records) // 2]
    from_offset = ran.lines("replay", "orders", "--partition", str(p), "--from", str(middle.offset), "--json")
    assert [x["offset"] for x in from_offset] == [r.offset for r in records if r.offset >= middle.offset]

    uncommitted = ran.lines("replay", "orders", "--uncommitted", "--json")
    assert len(uncommitted) >= len(expected)  # plus any record of an aborted transaction

    at = datetime.fromtimestamp(middle.timestamp_ms / 1000, UTC)
    from_time = ran.lines("replay", "orders", "--from", at.isoformat(), "--json")
    # Kafka starts each partition at its first record at or after the time, aborted records
    # included (they are in the log and its time index; a worker aborts a batch under load), and
    # replay then shows the committed records from there on.
    want = []
    for q in sorted({r.partition for r in expected}):
        first = next((x["offset"] for x in uncommitted if x["partition"] == q
                      and to_millis(datetime.fromisoformat(x["timestamp"])) >= middle.timestamp_ms), None)
        want += [(q, r.offset) for r in expected
                 if r.partition == q and first is not None and r.offset >= first]
    assert [(x["partition"], x["offset"]) for x in from_time] == want
    assert (p, middle.offset) in want


def test_replay_fails_in_one_sentence(ran: Ran) -> None:
    _one_sentence(ran.saga.choreo("replay", "no.such.topic"), "'no.such.topic'", "does not exist")
    _one_sentence(ran.saga.choreo("replay", "orders", "--from", "yesterday"), "neither an offset")


def test_no_stack_is_one_sentence(tmp_path: Path) -> None:
    nowhere = Settings(bootstrap_servers="127.0.0.1:1", schema_registry_url="http://127.0.0.1:1/apis/ccompat/v7",
                       topic_prefix="x.", state_dir=tmp_path)
    out = run_cli(nowhere, "replay", "orders", timeout=120)
    _one_sentence(out, "cannot reach Kafka", "stack")


# -- trace ------------------------------------------------------------------------------------------


def _trace(ran: Ran, order_id: str, *extra: str) -> dict[str, Any]:
    return ran.lines("trace", order_id, "--json", *extra)[0]


def test_trace_shows_the_whole_path_of_a_completed_saga(ran: Ran) -> None:
    order = ran.orders["completed"]
    trace = _trace(ran, order.order_id)  # no --hub: the hub is looked up from the own topics
    assert trace["outcome"] == "completed" and trace["key"] == order.hub
    steps = trace["steps"]
    assert Counter(s["type"].rsplit(".", 1)[1] for s in steps) == Counter(PATHS["completed"])
    assert {s["partition"] for s in steps} == {partition_for(order.hub.encode(), 4)}
    assert [s["timestamp"] for s in steps] == sorted(s["timestamp"] for s in steps)
    names = {s["step"]: s["type"].rsplit(".", 1)[1] for s in steps}
    caused = {names[s["step"]]: names.get(s["caused_by"]) for s in steps}
    assert caused["OrderPlaced"] == "PlaceOrder" and caused["DroneAssigned"] == "PackagePrepared"
    assert caused["OrderCompleted"] == caused["StockShipped"] == "DeliveryCompleted"
    assert steps[0]["emitter"] == "edge" and {s["emitter"] for s in steps[1:]} == {
        "orders", "packaging", "drones", "delivery"}
    assert not any(s["role"] == "compensation" for s in steps)
    assert _trace(ran, order.order_id, "--hub", order.hub) == trace


def test_trace_shows_failure_compensations_and_outcome_of_a_compensated_saga(ran: Ran) -> None:
    order = ran.orders["no_address"]
    trace = _trace(ran, order.order_id, "--hub", order.hub)
    assert trace["outcome"] == "compensated"
    types = [s["type"].rsplit(".", 1)[1] for s in trace["steps"]]
    assert Counter(types) == Counter(PATHS["no_address"])
    roles = {s["type"].rsplit(".", 1)[1]: s["role"] for s in trace["steps"]}
    assert roles["DeliveryFailed"] == roles["OrderFailed"] == "failure"
    assert roles["DroneReleased"] == roles["StockReleased"] == "compensation"
    assert roles["OrderCompensated"] == "end"
    table = ran.saga.choreo("trace", order.order_id, "--hub", order.hub)
    assert table.returncode == 0, table.stderr
    assert ": compensated" in table.stdout and "StockReleased" in table.stdout


def test_trace_of_an_unknown_order_is_one_sentence(ran: Ran) -> None:
    _one_sentence(ran.saga.choreo("trace", "no-such-order"), "no such saga (order_id='no-such-order')")
    completed = ran.orders["completed"]
    _one_sentence(ran.saga.choreo("trace", completed.order_id, "--hub", "hub-west"), "no such saga")


# -- state ------------------------------------------------------------------------------------------


def test_state_and_its_hash_match_a_rebuild(ran: Ran) -> None:
    before = ran.lines("state", "packaging", "--json")
    hashes = ran.lines("state", "packaging", "--hash", "--json")
    assert len(hashes) == 4 and any(h["documents"] for h in hashes)
    rebuilt = ran.saga.choreo("rebuild", "packaging")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert ran.lines("state", "packaging", "--json") == before
    # The checkpoint may differ: a rebuild stops after the last transaction marker, the live
    # store at the offset after its last own event. Both are the same fold, which the hash shows.
    after = ran.lines("state", "packaging", "--hash", "--json")
    assert [(h["partition"], h["documents"], h["hash"]) for h in after] == [
        (h["partition"], h["documents"], h["hash"]) for h in hashes]
    for h in hashes:
        assert f"packaging[{h['partition']}] rebuilt events=" in rebuilt.stdout
        assert f"hash={h['hash'][:16]}" in rebuilt.stdout

    sku = ran.orders["completed"].sku
    shelf = ran.lines(
        "state", "packaging", "--hub", "hub-north", "--where", f"sku={sku}", "--table", "stock", "--json"
    )
    assert [d["key"] for d in shelf] == [f"hub-north/{sku}"]
    assert shelf[0]["value"]["shipped"] == 2  # the completed order took 2; the others gave theirs back
    _one_sentence(ran.saga.choreo("state", "nosuchservice"), "unknown service")


# -- dlq --------------------------------------------------------------------------------------------


def _dead_letter(ran: Ran, order: Any, source_offset: int) -> tuple[int, int]:
    """Put a valid PlaceOrder into orders.dlq as the worker would have; return (partition, offset)."""
    saga = ran.saga
    partition = partition_for(order.hub.encode(), 4)
    producer = clients.plain_producer(saga.settings)
    where: list[tuple[int, int]] = []

    def delivered(err: Any, msg: Any) -> None:
        where.append((msg.partition(), msg.offset()))

    producer.produce(
        saga.topic("orders.dlq"), key=order.hub.encode(),
        value=saga.codec.encode(saga.topic("orders.commands"), order), partition=partition,
        headers=[("event_type", type(order).SCHEMA.encode()),
                 ("dlq.error.class", b"RuntimeError"), ("dlq.error.message", b"a bug, since fixed"),
                 ("dlq.source.topic", saga.topic("orders.commands").encode()),
                 ("dlq.source.partition", str(partition).encode()),
                 ("dlq.source.offset", str(source_offset).encode())],
        on_delivery=delivered,
    )
    assert producer.flush(30) == 0
    return where[0]


def _order(hub: str) -> Any:
    return commands.place_order(hub, seed.stocked_skus(hub)[0], 1, seed.deliverable_addresses(hub)[0], _now())


def _copies(ran: Ran, order_id: str, committed_only: bool = True, topic: str = "orders.retry") -> list[Any]:
    """The records of `order_id` on `topic`: a retried letter goes to orders' retry topic."""
    records = read_topic(ran.saga.settings, ran.saga.topic(topic), ran.saga.codec,
                         committed_only=committed_only)
    return [r for r in records if getattr(r.event, "order_id", None) == order_id]


def test_dlq_retry_sends_a_dead_letter_back_once_and_it_is_processed_once(ran: Ran) -> None:
    saga = ran.saga
    order = _order("hub-north")
    p, o = _dead_letter(ran, order, source_offset=9999)
    listed = [x for x in ran.lines("dlq", "list", "orders", "--json") if x["offset"] == o]
    assert listed[0]["retried"] is False
    assert listed[0]["headers"]["dlq.error.message"] == "a bug, since fixed"
    assert listed[0]["event"]["order_id"] == order.order_id

    first = saga.choreo("dlq", "retry", "orders", "--partition", str(p), "--offset", str(o))
    assert first.returncode == 0, first.stderr
    assert "1 sent, 0 already retried" in first.stdout
    again = saga.choreo("dlq", "retry", "orders")
    assert again.returncode == 0 and "0 sent, 1 already retried" in again.stdout, again.stdout
    copies = _copies(ran, order.order_id)
    assert len(copies) == 1 and copies[0].partition == p
    assert copies[0].headers["dlq.retry.of"] == f"{saga.topic('orders.dlq')}:{p}:{o}".encode()
    assert copies[0].headers["dlq.retry.topic"] == b"orders.commands"  # decided as from there
    assert _copies(ran, order.order_id, topic="orders.commands") == []  # the source is not written
    assert "dlq.error.class" not in copies[0].headers
    assert [x["retried"] for x in ran.lines("dlq", "list", "orders", "--json") if x["offset"] == o] == [True]

    worker = saga.start("orders")
    try:
        wait_until(lambda: any(type(r.event).__name__ == "OrderPlaced" and r.event.order_id == order.order_id
                               for r in saga.events("orders")), 90, "the retried order to be placed")
        placed = [r for r in saga.events("orders") if r.event.order_id == order.order_id]
        assert [type(r.event).__name__ for r in placed] == ["OrderPlaced"]
        # A running instance is a member of the group: reset refuses.
        _one_sentence(saga.choreo("reset", "orders", "--to-earliest"), "still has 1 member")
    finally:
        assert worker.stop() == 0


def test_dlq_retry_that_crashes_before_commit_is_invisible_and_retried_once_later(ran: Ran) -> None:
    saga = ran.saga
    order = _order("hub-south")
    p, o = _dead_letter(ran, order, source_offset=8888)

    def crash() -> None:
        raise KeyboardInterrupt("retry killed between sending and committing")

    with pytest.raises(KeyboardInterrupt):
        retry(saga.settings, ORDERS, saga.codec, partition=p, offset=o, before_commit=crash)
    # The half-done retry wrote the record (uncommitted) but is neither visible nor marked as done.
    assert [x["retried"] for x in ran.lines("dlq", "list", "orders", "--partition", str(p),
                                            "--offset", str(o), "--json")] == [False]
    done = saga.choreo("dlq", "retry", "orders", "--partition", str(p), "--offset", str(o))
    assert done.returncode == 0 and "1 sent" in done.stdout, done.stdout + done.stderr
    assert len(_copies(ran, order.order_id)) == 1
    assert len(_copies(ran, order.order_id, committed_only=False)) == 2  # the aborted one, invisible
    _one_sentence(saga.choreo("dlq", "retry", "orders", "--partition", str(p), "--offset", "424242"),
                  "no dead letter at offset 424242")


def _ends(ran: Ran, logical: str) -> list[int]:
    reader = clients.reader_consumer(ran.saga.settings)
    try:
        return [reader.get_watermark_offsets(TopicPartition(ran.saga.topic(logical), p), timeout=10)[1]
                for p in range(4)]
    finally:
        reader.close()


def test_dlq_retry_of_a_letter_from_an_event_topic_reaches_orders_alone(ran: Ran) -> None:
    """A retried letter from delivery's topic goes to the retrying service only, never back into
    delivery's own log."""
    saga = ran.saga
    junk, p = b"\x00\x00\x00\x00\x07 junk that orders dead-lettered", partition_for(b"hub-north", 4)
    producer = clients.plain_producer(saga.settings)
    where: list[int | None] = []
    producer.produce(
        saga.topic("orders.dlq"), key=b"hub-north", value=junk, partition=p,
        headers=[("dlq.error.class", b"DecodeError"), ("dlq.error.message", b"malformed Avro body"),
                 ("dlq.source.topic", saga.topic("delivery").encode()),
                 ("dlq.source.partition", str(p).encode()), ("dlq.source.offset", b"0")],
        on_delivery=lambda err, msg: where.append(msg.offset()),
    )
    assert producer.flush(30) == 0
    delivery_ends = _ends(ran, "delivery")
    sent = saga.choreo("dlq", "retry", "orders", "--partition", str(p), "--offset", str(where[0]))
    assert sent.returncode == 0 and "1 sent" in sent.stdout, sent.stdout + sent.stderr
    assert f"through {saga.topic('orders.retry')}[{p}]" in sent.stdout

    def dead_again() -> list[Any]:
        return [r for r in saga.raw("orders.dlq") if r.value == junk
                and r.headers.get("dlq.source.topic") == saga.topic("orders.retry").encode()]

    worker = saga.start("orders")
    try:
        wait_until(dead_again, 90, "orders to decide the retried junk (and dead-letter it again)")
    finally:
        assert worker.stop() == 0
    assert _ends(ran, "delivery") == delivery_ends  # delivery's log, which others read, is untouched
    again = dead_again()
    assert len(again) == 1 and again[0].headers["dlq.retry.topic"] == b"delivery"
    assert "not an event" not in again[0].headers["dlq.error.message"].decode()  # a decode error


# -- reset ------------------------------------------------------------------------------------------


def _group_offsets(ran: Ran, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
    admin = clients.admin_client(ran.saga.settings)
    tps = [TopicPartition(ran.saga.topic(t), p) for t in topics for p in range(4)]
    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)])[group].result()
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}


def _group_empty(ran: Ran, group: str) -> bool:
    admin = clients.admin_client(ran.saga.settings)
    return not admin.describe_consumer_groups([group])[group].result().members


def test_reset_dry_run_changes_nothing_and_execute_moves_to_the_computed_offsets(ran: Ran) -> None:
    saga = ran.saga
    group = saga.settings.group("packaging")
    inputs = ["delivery", "drones", "orders", "packaging.commands"]
    # A stopped worker with a static instance id stays a member until its session times out.
    wait_until(lambda: _group_empty(ran, group), 60, "the packaging group to be empty")
    before = _group_offsets(ran, group, inputs)
    assert sum(o for o in before.values() if o > 0) > 0

    dry = saga.choreo("reset", "packaging", "--to-earliest")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing changed" in dry.stdout
    assert f"will process {sum(max(o, 0) for o in before.values())} offset(s) again" in dry.stdout
    assert _group_offsets(ran, group, inputs) == before

    orders = saga.events("orders")
    middle = orders[len(orders) // 2]
    at = datetime.fromtimestamp(middle.timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")
    moved = saga.choreo("reset", "packaging", "--to-datetime", at, "--execute")
    assert moved.returncode == 0, moved.stderr
    after = _group_offsets(ran, group, inputs)
    ms = middle.timestamp_ms
    reader = clients.reader_consumer(saga.settings)
    try:
        asked = [TopicPartition(saga.topic(t), p, ms) for t in inputs for p in range(4)]
        found = reader.offsets_for_times(asked, 10)
        ends = {(f.topic, f.partition): reader.get_watermark_offsets(f, timeout=10)[1] for f in found}
    finally:
        reader.close()
    assert after == {(f.topic, f.partition): f.offset if f.offset >= 0 else ends[(f.topic, f.partition)]
                     for f in found}
    for t in inputs:
        records = read_topic(saga.settings, saga.topic(t))
        for p in range(4):
            on_p = [r for r in records if r.partition == p]
            target = after[(saga.topic(t), p)]
            # Exactly the records from the time on are read again. The broker may point at a
            # commit marker stamped after the time that follows the last earlier record; it is
            # skipped on reading, so the records read again are the same either way.
            assert {r.offset for r in on_p if r.offset >= target} == {
                r.offset for r in on_p if r.timestamp_ms >= ms}, (t, p, target)
            # Past the last record only commit markers follow: up to two, since a worker's two
            # transactional producers take turns and the first one's marker may land after the
            # second one's records. So the target is at most the partition's end.
            assert target <= ends[(saga.topic(t), p)]
    assert after[(middle.topic, middle.partition)] <= middle.offset
    assert after != before

    earliest = saga.choreo("reset", "packaging", "--to-earliest", "--execute")
    assert earliest.returncode == 0, earliest.stderr
    assert set(_group_offsets(ran, group, inputs).values()) == {0}
    _one_sentence(saga.choreo("reset", "packaging"), "--to-datetime", "--to-earliest")
