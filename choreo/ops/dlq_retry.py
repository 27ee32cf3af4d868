"""Listing a service's dead letters and sending them back to that service, each at most once.

A letter goes back to the service's own retry topic (`<service>.retry`, read by that service
alone), to the partition murmur2 gives its key there (for a record that was on the right
partition, the number it came from), naming the input topic it came from; never to the source
topic itself, which other services may read and its owner alone may write. Each retry is one
Kafka transaction that writes the record there and a marker to `<service>.dlq.retried`;
markers are read with read_committed, and the retrying producer's stable transactional.id aborts
whatever a crashed retry left open. See ADR 0004.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Producer

from choreo.contract import Service
from choreo.exceptions import ChoreoError, ConfigurationError
from choreo.kafka import clients
from choreo.kafka.partitioner import partition_for
from choreo.kafka.topics import create_like
from choreo.ops.log_reader import LogRecord, read_log
from choreo.runtime.dead_letters import (
    ERROR_CLASS,
    ERROR_MESSAGE,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
    TRUNCATED,
)
from choreo.runtime.retried import RETRIED_AS
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


class NotRetryableError(ChoreoError):
    """A dead letter that cannot go back to its service (a copy of its own record, say)."""


@dataclass(frozen=True)
class RetryTarget:
    """Where a letter goes back: the retry topic's partition, decided as from `input_topic`."""

    topic: str  # physical retry topic
    partition: int
    input_topic: str  # logical


def retry_target(
    settings: Settings, service: Service, letter: DeadLetter, retry_partitions: int,
) -> RetryTarget:
    """Where `letter` goes back to `service`, whose retry topic has `retry_partitions`
    partitions, or NotRetryableError saying why it cannot."""
    topic, partition, offset = letter.source
    retry_topic = settings.topic(service.retry_topic)
    where = (f"dead letter {letter.record.partition}@{letter.record.offset} "
             f"(from {topic}[{partition}]@{offset})")
    if topic == retry_topic:  # a retried letter that failed again names its input already
        logical = letter.header(RETRIED_AS)
    else:
        prefix = settings.topic_prefix
        logical = topic[len(prefix):] if topic.startswith(prefix) else ""
    if letter.header(TRUNCATED) == "true":
        raise NotRetryableError(
            f"{where} holds a truncated copy of a record too large to dead-letter whole: "
            "it cannot be retried"
        )
    if logical == service.own_topic:
        raise NotRetryableError(
            f"{where} is a copy of a record on {service.name}'s own topic, which {service.name} "
            "only restores from and never decides: it cannot be retried"
        )
    if logical not in service.inputs:
        raise NotRetryableError(
            f"{where} did not come from an input topic of {service.name} "
            f"({', '.join(sorted(service.inputs))}): it cannot be retried"
        )
    if letter.record.key is None:
        raise NotRetryableError(
            f"{where} has no key, so no partition of {retry_topic} is its own (the worker "
            "refuses a record without a key): it cannot be retried"
        )
    # The key's partition, not the one the letter came from: a record dead-lettered for sitting
    # on another partition than its key's would fail the worker's routing check there again.
    return RetryTarget(retry_topic, partition_for(letter.record.key, retry_partitions), logical)


@dataclass(frozen=True)
class RetryReport:
    sent: list[DeadLetter]
    already_retried: list[DeadLetter]
    refused: list[tuple[DeadLetter, str]]  # letters that cannot be retried, and why
    sent_to: list[RetryTarget]  # where each of `sent` went, in the same order


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
    service: Service,
    codec: Codec,
    *,
    partition: int | None = None,
    offset: int | None = None,
    dry_run: bool = False,
    before_commit: Callable[[], None] = lambda: None,
) -> RetryReport:
    """Send the selected dead letters that were never retried back to `service`, through its
    retry topic; letters that cannot go back are reported as refused, never sent."""
    retry_partitions = _retry_topic_partitions(settings, service)
    producer = clients.transactional_producer(settings, f"{settings.group(service.name)}-dlq-retry")
    # Fences any other retry of this service and aborts what a crashed one left open; only then
    # are the markers read, so no committed retry can be missed by the read below.
    producer.init_transactions(60)
    retry_log = settings.topic(retry_log_topic(service.dlq_topic))
    letters = dead_letters(settings, service.dlq_topic, codec, partition, offset)
    pending: list[tuple[DeadLetter, RetryTarget]] = []
    refused: list[tuple[DeadLetter, str]] = []
    for letter in (d for d in letters if not d.retried):
        try:
            target = retry_target(settings, service, letter, retry_partitions)
        except ChoreoError as e:  # NotRetryableError, or a letter without source headers
            refused.append((letter, str(e)))
            continue
        pending.append((letter, target))
    report = RetryReport([d for d, _ in pending], [d for d in letters if d.retried], refused,
                         [t for _, t in pending])
    if dry_run or not pending:
        return report
    create_like(clients.admin_client(settings), retry_log, settings.topic(service.dlq_topic))
    for start in range(0, len(pending), _CHUNK):
        producer.begin_transaction()
        for letter, target in pending[start:start + _CHUNK]:
            _resend(producer, letter, target, settings.topic(service.dlq_topic), retry_log)
        producer.flush(60)  # delivery errors surface here, before anything is committed
        before_commit()
        producer.commit_transaction(60)
    return report


def _retry_topic_partitions(settings: Settings, service: Service) -> int:
    """The partition count of `service`'s retry topic; one sentence if it is missing."""
    name = settings.topic(service.retry_topic)
    topic = clients.admin_client(settings).list_topics(timeout=10).topics.get(name)
    if topic is None or topic.error is not None:
        raise ConfigurationError(
            f"topic {name} does not exist, so no {service.name} worker would read a retried "
            f"letter: start {service.name}'s workers of this version (they create it) or run "
            "`choreo topics create`"
        )
    return len(topic.partitions)


def _resend(
    producer: Producer, letter: DeadLetter, target: RetryTarget, dlq: str, retry_log: str
) -> None:
    topic, source_partition, source_offset = letter.source
    record = letter.record
    headers: list[tuple[str, str | bytes | None]] = [
        (k, v) for k, v in record.headers.items() if not k.startswith("dlq.")
    ]
    headers.append((RETRY_OF, f"{dlq}:{record.partition}:{record.offset}".encode()))
    headers.append((RETRIED_AS, target.input_topic.encode()))
    marker = {
        "dlq_partition": record.partition, "dlq_offset": record.offset,
        "source_topic": topic, "source_partition": source_partition, "source_offset": source_offset,
        "sent_to": target.topic, "decided_as_from": target.input_topic,
        "retried_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    # The same key, on its murmur2 partition: the retry topic has the inputs' partition count, so
    # that is the number of the store holding the key's state, and the routing check holds.
    producer.produce(target.topic, value=record.value, key=record.key, partition=target.partition,
                     headers=headers)
    producer.produce(retry_log, value=json.dumps(marker).encode(),
                     key=marker_key(record.partition, record.offset), partition=record.partition)
