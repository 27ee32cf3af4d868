"""Listing a service's dead letters and sending them back to their source topic, each at most once.

Each retry is one Kafka transaction that writes the record back to its source topic partition and
a marker to `<service>.dlq.retried`; markers are read with read_committed, and the retrying
producer's stable transactional.id aborts whatever a crashed retry left open. See ADR 0004.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import NewTopic

from choreo.exceptions import ChoreoError, ConfigurationError
from choreo.kafka import clients
from choreo.ops.log_reader import LogRecord, read_log
from choreo.runtime.dead_letters import (
    ERROR_CLASS,
    ERROR_MESSAGE,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
)
from choreo.serde.codec import Codec
from choreo.settings import Settings

RETRY_OF = "dlq.retry.of"  # header on a re-sent record: which dead letter it came from
_CHUNK = 200  # dead letters per transaction: far below any transaction timeout


def retry_log_topic(dlq_logical: str) -> str:
    return f"{dlq_logical}.retried"


def marker_key(partition: int, offset: int) -> bytes:
    return f"{partition}:{offset}".encode()


@dataclass(frozen=True)
class DeadLetter:
    record: LogRecord
    retried: bool

    def header(self, name: str) -> str:
        return self.record.headers.get(name, b"").decode(errors="replace")

    @property
    def error_class(self) -> str:
        return self.header(ERROR_CLASS)

    @property
    def error_message(self) -> str:
        return self.header(ERROR_MESSAGE)

    @property
    def source(self) -> tuple[str, int, int]:
        try:
            return (self.header(SOURCE_TOPIC), int(self.header(SOURCE_PARTITION)),
                    int(self.header(SOURCE_OFFSET)))
        except ValueError as e:
            raise ChoreoError(
                f"dead letter at partition {self.record.partition} offset {self.record.offset} "
                "has no source headers; it cannot be sent back"
            ) from e


@dataclass(frozen=True)
class RetryReport:
    sent: list[DeadLetter]
    already_retried: list[DeadLetter]


def _retried(settings: Settings, retry_log: str) -> set[bytes]:
    meta = clients.admin_client(settings).list_topics(timeout=10).topics
    if retry_log not in meta:
        return set()
    return {r.key for r in read_log(settings, [retry_log]) if r.key is not None}


def dead_letters(
    settings: Settings,
    dlq_logical: str,
    codec: Codec,
    partition: int | None = None,
    offset: int | None = None,
) -> list[DeadLetter]:
    """The dead letters (read_committed) of one DLQ topic, each marked if it was already retried."""
    dlq = settings.topic(dlq_logical)
    done = _retried(settings, settings.topic(retry_log_topic(dlq_logical)))
    letters = [
        DeadLetter(r, marker_key(r.partition, r.offset) in done)
        for r in read_log(settings, [dlq], codec, partitions=None if partition is None else [partition])
        if offset is None or r.offset == offset
    ]
    letters.sort(key=lambda d: (d.record.partition, d.record.offset))
    if offset is not None and partition is None and len(letters) > 1:
        where = ", ".join(str(d.record.partition) for d in letters)
        raise ConfigurationError(
            f"offset {offset} exists on partitions {where} of {dlq}; say which with --partition"
        )
    return letters


def retry(
    settings: Settings,
    service: str,
    dlq_logical: str,
    codec: Codec,
    *,
    partition: int | None = None,
    offset: int | None = None,
    dry_run: bool = False,
    before_commit: Callable[[], None] = lambda: None,
) -> RetryReport:
    """Send the selected dead letters that were never retried back to their source partition."""
    producer = clients.transactional_producer(settings, f"{settings.group(service)}-dlq-retry")
    # Fences any other retry of this service and aborts what a crashed one left open; only then
    # are the markers read, so no committed retry can be missed by the read below.
    producer.init_transactions(60)
    retry_log = settings.topic(retry_log_topic(dlq_logical))
    letters = dead_letters(settings, dlq_logical, codec, partition, offset)
    pending = [d for d in letters if not d.retried]
    report = RetryReport(pending, [d for d in letters if d.retried])
    if dry_run or not pending:
        return report
    _ensure_retry_log(settings, dlq_logical)
    for start in range(0, len(pending), _CHUNK):
        producer.begin_transaction()
        for letter in pending[start:start + _CHUNK]:
            _resend(producer, letter, settings.topic(dlq_logical), retry_log)
        producer.flush(60)  # delivery errors surface here, before anything is committed
        before_commit()
        producer.commit_transaction(60)
    return report


def _resend(producer: Producer, letter: DeadLetter, dlq: str, retry_log: str) -> None:
    topic, source_partition, source_offset = letter.source
    record = letter.record
    headers: list[tuple[str, str | bytes | None]] = [
        (k, v) for k, v in record.headers.items() if not k.startswith("dlq.")
    ]
    headers.append((RETRY_OF, f"{dlq}:{record.partition}:{record.offset}".encode()))
    marker = {
        "dlq_partition": record.partition, "dlq_offset": record.offset,
        "source_topic": topic, "source_partition": source_partition, "source_offset": source_offset,
        "retried_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    # Same partition as the source: a hub's records must stay on the hub's partition.
    producer.produce(topic, value=record.value, key=record.key, partition=source_partition, headers=headers)
    producer.produce(retry_log, value=json.dumps(marker).encode(),
                     key=marker_key(record.partition, record.offset), partition=record.partition)


def _ensure_retry_log(settings: Settings, dlq_logical: str) -> None:
    admin = clients.admin_client(settings)
    dlq = settings.topic(dlq_logical)
    name = settings.topic(retry_log_topic(dlq_logical))
    meta = admin.list_topics(timeout=10).topics
    if name in meta:
        return
    partitions = meta[dlq].partitions
    new = NewTopic(name, num_partitions=len(partitions),
                   replication_factor=len(partitions[0].replicas),
                   config={"retention.ms": "-1", "retention.bytes": "-1"})
    try:
        admin.create_topics([new], operation_timeout=30)[name].result()
    except KafkaException as e:
        if e.args[0].name() != "TOPIC_ALREADY_EXISTS":  # another retry created it first: fine
            raise ConfigurationError(f"could not create {name}: {e.args[0].str()}") from e
