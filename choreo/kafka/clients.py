"""Every Kafka and registry client is built here, so there is one place that sets their config."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from choreo.settings import Settings

REGISTRY_TIMEOUT_S = 10
# The largest record our producers send (librdkafka's message.max.bytes, also its default;
# brokers accept 1 MiB). The worker checks its outputs and dead letters against it, less a
# margin for Kafka's own record framing, before producing them.
MAX_RECORD_BYTES = 1_000_000
RECORD_FRAMING_BYTES = 1024


def base_config(settings: Settings) -> dict[str, Any]:
    # Security settings (SASL, TLS) pass through from settings.kafka_extra unchanged.
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        # Find a partition's new leader within seconds after a broker dies (default: 5 min).
        "topic.metadata.refresh.interval.ms": 10000,
        **settings.kafka_extra,
    }


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(base_config(settings))


def transactional_producer(settings: Settings, transactional_id: str, **extra: Any) -> Producer:
    return Producer(
        {
            **base_config(settings),
            "transactional.id": transactional_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "transaction.timeout.ms": settings.transaction_timeout_ms,
            "message.max.bytes": MAX_RECORD_BYTES,
            **extra,
        }
    )


def plain_producer(settings: Settings, **extra: Any) -> Producer:
    """Edge producers: idempotent, keyed with the Java-compatible partitioner."""
    return Producer(
        {
            **base_config(settings),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "partitioner": "murmur2_random",
            **extra,
        }
    )


def group_consumer(settings: Settings, group_id: str, instance_id: str, **extra: Any) -> Consumer:
    return Consumer(
        {
            **base_config(settings),
            "group.id": group_id,
            "group.instance.id": instance_id,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # range gives one member partition N of every input topic: the state of partition N
            # is one store, which only one instance may hold. cooperative-sticky does not keep
            # the topics together, so two instances could both need one store (ADR 0005).
            "partition.assignment.strategy": "range",
            "session.timeout.ms": settings.session_timeout_ms,
            **extra,
        }
    )


def reader_consumer(settings: Settings, *, committed_only: bool = True, **extra: Any) -> Consumer:
    """A group-less consumer for manual assignment: restore, rebuild, replay, audit."""
    return Consumer(
        {
            **base_config(settings),
            "group.id": "choreo-reader",  # required by librdkafka; never used to commit
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if committed_only else "read_uncommitted",
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            **extra,
        }
    )


def registry_client(settings: Settings) -> SchemaRegistryClient:
    # A bounded timeout: a registry request that hangs must fail (and be retried by the client
    # or by the batch) rather than stall a worker forever.
    return SchemaRegistryClient({"url": settings.schema_registry_url, "timeout": REGISTRY_TIMEOUT_S})
