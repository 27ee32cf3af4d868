"""No single record stops a partition: outputs Kafka refuses dead-letter their input, and a dead
letter too large for Kafka is written as a truncated copy."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from choreo.kafka import clients
from harness.processes import wait_until
from tests.support import toy as toy_services
from tests.support.topic_reader import read_topic
from tests.support.toy_pipeline import ToyPipeline

pytestmark = pytest.mark.integration

# The counter's own topic takes records up to this size; a hub of 200k characters makes an
# output the broker refuses (the delivery report names it), while the input itself is fine.
OWN_TOPIC_LIMIT = 150_000
# A hub this long makes an output over the client's record limit (refused before producing) and
# an input whose dead-letter copy, with its error headers, no longer fits in a record either.
HUGE_HUB = 500_000


def _limit_own_topic(pipeline: ToyPipeline) -> None:
    admin = clients.admin_client(pipeline.settings)
    resource = ConfigResource(
        ResourceType.TOPIC, pipeline.topic("counter"),
        incremental_configs=[ConfigEntry(
            "max.message.bytes", str(OWN_TOPIC_LIMIT),
            incremental_operation=AlterConfigOpType.SET,
        )],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def _produce_hostile(pipeline: ToyPipeline, hub: str) -> str:
    cmd = toy_services.AddNumber(str(uuid.uuid4()), hub, datetime.now(UTC), 1)
    topic = pipeline.topic("counter.commands")
    # The edge allows a record just under the broker's 1 MiB, more than the worker's own limit.
    producer = clients.plain_producer(pipeline.settings, **{"message.max.bytes": 1_040_000})
    producer.produce(topic, key=hub.encode(), value=pipeline.codec.encode(topic, cmd))
    assert producer.flush(30) == 0
    return cmd.event_id


def test_refused_and_oversized_outputs_dead_letter_their_input_and_the_rest_goes_on(
    toy: ToyPipeline,
) -> None:
    _limit_own_topic(toy)
    toy.produce_numbers(40)
    refused = _produce_hostile(toy, "hub-0" + "x" * 200_000)
    toy.produce_numbers(40)
    _produce_hostile(toy, "hub-0" + "y" * HUGE_HUB)
    toy.produce_numbers(40)
    try:
        toy.start("counter")
        toy.start("doubler")
        wait_until(lambda: len(toy.doubled()) >= 120, 120, "every normal record through both services")
        wait_until(lambda: len(toy.dead_letters()) >= 2, 60, "both hostile records dead-lettered")
        toy.stop_workers()
    finally:
        toy.close()

    counted = toy.counted()
    assert len(counted) == 120
    assert max(Counter(r.event.causation_id for r in counted).values()) == 1
    assert {r.event.hub: r.event.total for r in counted} == toy.expected_totals()

    letters = {r.headers.get("dlq.error.class"): r for r in toy.dead_letters()}
    assert set(letters) == {b"BlamedRecordError", b"OutputTooLargeError"}
    blamed = letters[b"BlamedRecordError"]
    assert b"MSG_SIZE_TOO_LARGE" in blamed.headers["dlq.error.message"]
    assert refused.encode() in (blamed.value or b"")  # the whole original record
    too_large = letters[b"OutputTooLargeError"]
    assert too_large.headers["dlq.truncated"] == b"true"
    assert int(too_large.headers["dlq.original.size"]) > 1_000_000
    assert len(too_large.value or b"") <= 64 * 1024
    assert too_large.headers["dlq.source.topic"] == toy.topic("counter.commands").encode()
    # The coordinates lead to the full record, still in its topic.
    source = {(r.partition, r.offset): r for r in read_topic(toy.settings, toy.topic("counter.commands"))}
    where = (int(too_large.headers["dlq.source.partition"]), int(too_large.headers["dlq.source.offset"]))
    assert len(source[where].value or b"") > HUGE_HUB
