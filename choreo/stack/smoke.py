"""A smoke check of a running stack: Avro records through the registry, produced and read back."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from choreo.stack.errors import StackError

SMOKE_TOPIC = "choreo.smoke"
# librdkafka logs transient states (a coordinator still loading right after start) as warnings;
# a smoke check reports its own outcome, so only errors are worth showing.
_QUIET = {"log_level": 3}
_SCHEMA = {
    "type": "record",
    "name": "SmokeChecked",
    "namespace": "choreo.smoke",
    "fields": [{"name": "run_id", "type": "string"}, {"name": "n", "type": "int"}],
}


@dataclass(frozen=True)
class SmokeResult:
    topic: str
    subject: str
    schema_id: int
    records: int
    seconds: float


def _ensure_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, **_QUIET})
    if topic in admin.list_topics(timeout=10).topics:
        return
    future = admin.create_topics([NewTopic(topic, num_partitions=1)])[topic]
    try:
        future.result(30)
    except KafkaException as error:
        if "TOPIC_ALREADY_EXISTS" not in str(error):
            raise


def run_smoke(bootstrap: str, registry_url: str, count: int = 3, timeout: float = 60) -> SmokeResult:
    """Produce `count` Avro records (schema auto-registered) and read them back, decoded."""
    begin = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    _ensure_topic(bootstrap, SMOKE_TOPIC)
    serializer = AvroSerializer(
        SchemaRegistryClient({"url": registry_url, "timeout": 10}),
        json.dumps(_SCHEMA),
        conf={"subject.name.strategy": topic_record_subject_name_strategy},
    )
    context = SerializationContext(SMOKE_TOPIC, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, **_QUIET})
    payloads = [serializer({"run_id": run_id, "n": n}, context) for n in range(count)]
    for payload in payloads:
        producer.produce(SMOKE_TOPIC, value=payload)
    if producer.flush(30) != 0:
        raise StackError("The smoke records were not acknowledged by Kafka within 30 s.")

    # A fresh registry client, so the reader really fetches the writer schema by id.
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry_url, "timeout": 10}))
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"choreo-smoke-{run_id}",
         "enable.auto.commit": False, "isolation.level": "read_committed", **_QUIET}
    )
    seen: list[dict[str, object]] = []
    try:
        consumer.assign([TopicPartition(SMOKE_TOPIC, 0, 0)])
        deadline = time.monotonic() + timeout
        while len(seen) < count:
            if time.monotonic() > deadline:
                raise StackError(f"Read back {len(seen)} of {count} smoke records in {timeout} s.")
            for message in consumer.consume(num_messages=500, timeout=0.5):
                if message.error():
                    raise StackError(f"Reading the smoke topic failed: {message.error()}")
                record = deserializer(message.value(), context)
                if isinstance(record, dict) and record.get("run_id") == run_id:
                    seen.append(record)
    finally:
        consumer.close()
    first = payloads[0] or b"\0\0\0\0\0"
    return SmokeResult(
        topic=SMOKE_TOPIC,
        subject=f"{SMOKE_TOPIC}-choreo.smoke.SmokeChecked",
        schema_id=int.from_bytes(first[1:5], "big"),
        records=len(seen),
        seconds=time.monotonic() - begin,
    )
