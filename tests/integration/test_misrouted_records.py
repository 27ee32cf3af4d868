"""A command on another partition than murmur2 gives its key is dead-lettered, never decided.

The same PlaceOrder produced by the edge (murmur2) and by a plain
confluent_kafka.Producer (librdkafka's default partitioner, consistent_random = CRC32) landed on
two partitions, two stores each took it for new, and the order was accepted twice.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer

from choreo.kafka.partitioner import partition_for
from harness.offsets import committed_to_end
from harness.processes import wait_until
from harness.stack import StackEndpoints
from producers import commands, seed
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.integration

PARTITIONS = 6
HUB = "hub-north"  # murmur2 puts it on partition 3 of 6, CRC32 on 5: two sagas before the check


@pytest.fixture()
def saga(stack: StackEndpoints, topic_prefix: str, tmp_path: Path) -> Iterator[SagaRun]:
    run = SagaRun(stack.bootstrap_servers, stack.schema_registry_url, topic_prefix, tmp_path,
                  partitions=PARTITIONS)
    yield run
    run.close()


def test_a_command_from_a_default_librdkafka_producer_is_dead_lettered_not_decided_twice(
    saga: SagaRun,
) -> None:
    right, crc32 = partition_for(HUB.encode(), PARTITIONS), zlib.crc32(HUB.encode()) % PARTITIONS
    assert right != crc32, "the hub must be one the two partitioners disagree on"
    topic = saga.topic("orders.commands")
    order = commands.place_order(
        HUB, seed.stocked_skus(HUB)[0], 1, seed.deliverable_addresses(HUB)[0], datetime.now(UTC)
    )
    worker = saga.start("orders")

    saga.send([order])  # the edge's own producer: murmur2_random
    landed = _produce_with_librdkafka_defaults(
        saga.settings.bootstrap_servers, topic, HUB.encode(), saga.codec.encode(topic, order),
        [("event_type", type(order).SCHEMA.encode()), ("order_id", order.order_id.encode())],
    )
    assert landed == crc32, "a producer with default settings must use consistent_random"

    wait_until(lambda: committed_to_end(saga.settings, saga.settings.group("orders"), topic), 120,
               "the orders worker to have taken both records")
    answers = [r for r in saga.events("orders") if r.event.order_id == order.order_id]
    assert [(type(r.event).__name__, r.partition) for r in answers] == [("OrderPlaced", right)]

    letters = [r for r in saga.raw("orders.dlq") if r.headers["dlq.source.topic"] == topic.encode()]
    assert len(letters) == 1
    headers = letters[0].headers
    assert headers["dlq.source.partition"] == str(crc32).encode()
    assert headers["dlq.error.class"] == b"MisroutedRecordError"
    assert headers["dlq.error.message"].decode() == (
        f"key {HUB!r} belongs to partition {right} of {topic} (murmur2 over {PARTITIONS} "
        f"partitions), not {crc32}: produce with partitioner=murmur2_random"
    )
    assert worker.alive(), "a misrouted record must not stop the worker"
    assert "Traceback" not in worker.log()


def test_a_misrouted_command_retried_from_the_dlq_is_decided_on_its_hubs_partition(
    saga: SagaRun,
) -> None:
    # Sent back to the partition it came from, it would fail the routing check again, for ever.
    right, crc32 = partition_for(HUB.encode(), PARTITIONS), zlib.crc32(HUB.encode()) % PARTITIONS
    topic = saga.topic("orders.commands")
    order = commands.place_order(
        HUB, seed.stocked_skus(HUB)[0], 1, seed.deliverable_addresses(HUB)[0], datetime.now(UTC)
    )

    def letters() -> list[Any]:
        return [r for r in saga.raw("orders.dlq")
                if r.headers.get("order_id") == order.order_id.encode()]

    def answers() -> list[Any]:
        return [r for r in saga.events("orders") if r.event.order_id == order.order_id]

    worker = saga.start("orders")
    try:
        _produce_with_librdkafka_defaults(
            saga.settings.bootstrap_servers, topic, HUB.encode(), saga.codec.encode(topic, order),
            [("event_type", type(order).SCHEMA.encode()), ("order_id", order.order_id.encode())],
        )
        wait_until(letters, 120, "orders to dead-letter the misrouted command")
        [letter] = letters()
        assert letter.headers["dlq.source.partition"] == str(crc32).encode()
        sent = saga.choreo("dlq", "retry", "orders", "--partition", str(letter.partition),
                           "--offset", str(letter.offset))
        assert sent.returncode == 0 and "1 sent" in sent.stdout, sent.stdout + sent.stderr
        assert f"through {saga.topic('orders.retry')}[{right}]" in sent.stdout, sent.stdout
        wait_until(answers, 120, "orders to decide the retried command")
    finally:
        assert worker.stop() == 0
    assert [(type(r.event).__name__, r.partition) for r in answers()] == [("OrderPlaced", right)]
    assert len(letters()) == 1  # decided, not dead-lettered again


def _produce_with_librdkafka_defaults(
    bootstrap: str, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]],
) -> int:
    """Produce as a team's own Python edge would, with no partitioner set; the partition it took."""
    landed: list[int] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        partition = msg.partition()
        assert partition is not None
        landed.append(partition)

    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=key, value=value, headers=headers,  # type: ignore[arg-type]
                     on_delivery=delivered)
    assert producer.flush(30) == 0
    return landed[0]
