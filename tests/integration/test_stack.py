"""The stack is real: transactions, read_committed, Avro through the registry, restarts, tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from harness.stack import StackEndpoints
from tests.support.topic_reader import read_records, values

pytestmark = pytest.mark.integration

PING_SCHEMA = {
    "type": "record",
    "name": "Ping",
    "namespace": "choreo.stacktest",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "n", "type": "long"},
    ],
}


def _producer(stack: StackEndpoints, transactional_id: str) -> Producer:
    producer = Producer(
        {"bootstrap.servers": stack.bootstrap_servers, "transactional.id": transactional_id}
    )
    producer.init_transactions(30)
    return producer


def _consume_one(consumer: Consumer, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            return message
    raise TimeoutError("no record arrived")


def test_transactional_produce_with_offsets_is_read_committed(
    stack: StackEndpoints, create_topics: Callable[..., list[str]], topic_prefix: str
) -> None:
    source, sink = create_topics("in", "out")
    plain = Producer({"bootstrap.servers": stack.bootstrap_servers})
    plain.produce(source, key=b"k", value=b"input-1")
    assert plain.flush(10) == 0

    group = f"{topic_prefix}group"
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    try:
        consumer.subscribe([source])
        message = _consume_one(consumer)
        producer = _producer(stack, f"{topic_prefix}txn")
        producer.begin_transaction()
        producer.produce(sink, key=b"k", value=b"output-1")
        producer.send_offsets_to_transaction(
            [TopicPartition(source, message.partition(), message.offset() + 1)],  # type: ignore[attr-defined]
            consumer.consumer_group_metadata(),
            30,
        )
        producer.commit_transaction(30)

        got = read_records(stack.bootstrap_servers, sink, lambda r: len(r) >= 1)
        assert values(got) == [b"output-1"]
        committed = consumer.committed([TopicPartition(source, 0)], timeout=10)
        assert committed[0].offset == 1, "the input offset was committed with the transaction"
    finally:
        consumer.close()


def test_aborted_transaction_is_invisible_to_read_committed(
    stack: StackEndpoints, create_topics: Callable[..., list[str]], topic_prefix: str
) -> None:
    (topic,) = create_topics("txn")
    producer = _producer(stack, f"{topic_prefix}txn")
    producer.begin_transaction()
    producer.produce(topic, value=b"aborted")
    producer.flush(10)  # the record really reaches the log before the abort
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"committed")
    producer.commit_transaction(30)

    def saw_committed(records: list) -> bool:  # type: ignore[type-arg]
        return b"committed" in values(records)

    committed = read_records(stack.bootstrap_servers, topic, saw_committed)
    assert values(committed) == [b"committed"]
    uncommitted = read_records(
        stack.bootstrap_servers, topic, saw_committed, isolation="read_uncommitted"
    )
    assert values(uncommitted) == [b"aborted", b"committed"]


def _serializer(stack: StackEndpoints, schema: dict) -> AvroSerializer:  # type: ignore[type-arg]
    return AvroSerializer(
        SchemaRegistryClient({"url": stack.schema_registry_url, "timeout": 10}),
        json.dumps(schema),
        conf={
            "auto.register.schemas": True,
            "subject.name.strategy": topic_record_subject_name_strategy,
        },
    )


def _fresh_deserializer(stack: StackEndpoints) -> AvroDeserializer:
    # A new client has an empty cache, so the writer schema is fetched from the registry by id.
    return AvroDeserializer(SchemaRegistryClient({"url": stack.schema_registry_url, "timeout": 10}))


def _produce_avro(stack: StackEndpoints, topic: str, record: dict) -> bytes:  # type: ignore[type-arg]
    payload = _serializer(stack, PING_SCHEMA)(record, SerializationContext(topic, MessageField.VALUE))
    assert payload is not None
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers})
    producer.produce(topic, value=payload)
    assert producer.flush(10) == 0
    return payload


def _schema_id(payload: bytes) -> int:
    assert payload[0] == 0, "Confluent framing starts with magic byte 0"
    return int.from_bytes(payload[1:5], "big")


def test_avro_round_trip_through_the_registry(
    stack: StackEndpoints, create_topics: Callable[..., list[str]]
) -> None:
    (topic,) = create_topics("avro")
    record = {"id": "ping-1", "n": 42}
    payload = _produce_avro(stack, topic, record)

    (message,) = read_records(stack.bootstrap_servers, topic, lambda r: len(r) >= 1)
    assert message.value() == payload
    decoded = _fresh_deserializer(stack)(
        message.value(), SerializationContext(topic, MessageField.VALUE)
    )
    assert decoded == record
    subject = f"{topic}-choreo.stacktest.Ping"  # TopicRecordNameStrategy
    # Asked by name: the registry lists subjects a page at a time, and a shared stack holds
    # every other test's too.
    latest = httpx.get(f"{stack.schema_registry_url}/subjects/{subject}/versions/latest", timeout=10)
    assert latest.status_code == 200, latest.text
    assert latest.json()["id"] == _schema_id(payload)


def _assert_id_resolves(stack: StackEndpoints, topic: str, payload: bytes) -> None:
    schema = SchemaRegistryClient({"url": stack.schema_registry_url, "timeout": 10}).get_schema(
        _schema_id(payload)
    )
    assert schema.schema_str is not None
    assert json.loads(schema.schema_str)["name"] == "Ping"
    decoded = _fresh_deserializer(stack)(payload, SerializationContext(topic, MessageField.VALUE))
    assert decoded == {"id": "ping-2", "n": 7}


def test_schema_id_survives_registry_restart(
    stack: StackEndpoints, create_topics: Callable[..., list[str]]
) -> None:
    if stack.restart_registry is None:
        pytest.skip(f"cannot restart the registry of a {stack.source} stack from here")
    (topic,) = create_topics("restart")
    payload = _produce_avro(stack, topic, {"id": "ping-2", "n": 7})
    stack.restart_registry()
    _assert_id_resolves(stack, topic, payload)
    # The same schema registers to the same id after the restart (no new id handed out).
    again = _serializer(stack, PING_SCHEMA)(
        {"id": "ping-2", "n": 7}, SerializationContext(topic, MessageField.VALUE)
    )
    assert again is not None and _schema_id(again) == _schema_id(payload)


def test_schema_ids_and_records_survive_stack_restart(
    stack: StackEndpoints, create_topics: Callable[..., list[str]]
) -> None:
    if stack.restart_stack is None:
        pytest.skip(f"cannot restart a {stack.source} stack from here")
    (topic,) = create_topics("stackrestart")
    payload = _produce_avro(stack, topic, {"id": "ping-2", "n": 7})
    stack.restart_stack()
    (message,) = read_records(stack.bootstrap_servers, topic, lambda r: len(r) >= 1)
    assert message.value() == payload
    _assert_id_resolves(stack, topic, payload)


def _choreo_command() -> list[str]:
    script = Path(sys.executable).parent / "choreo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "choreo.cli.main"]


def test_console_tools_list_the_test_topic(
    stack: StackEndpoints, create_topics: Callable[..., list[str]]
) -> None:
    (topic,) = create_topics("visible")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers}
    result = subprocess.run(
        [*_choreo_command(), "kafka", "topics", "--list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert topic in result.stdout.split()
