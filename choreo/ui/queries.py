"""What the pages ask of the log and the stores, through the operators' existing readers only.

Each function reads; none writes, except `retry_dead_letters`, which is the dead-letter retry of
`choreo dlq retry` (one Kafka transaction per chunk, each dead letter at most once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from confluent_kafka import KafkaException

from choreo.cli.errors import error_sentence
from choreo.contract import Service
from choreo.domain import installation
from choreo.exceptions import ChoreoError
from choreo.kafka.topic_names import topic_partitions
from choreo.kafka.topics import logical_topics
from choreo.ops import dlq_retry, offsets_reset, state_view
from choreo.ops.stuck import Owing, find_owing
from choreo.ops.trace import Trace, find_key, trace_saga
from choreo.serde.codec import Codec
from choreo.settings import Settings
from choreo.ui.index import SagaIndex

T = TypeVar("T")

STATE_ROWS = 500  # documents shown per table; the rest is counted


@dataclass
class Lag:
    """The service's consumer group: records on its input partitions it has not processed yet."""

    total: int
    by_topic: dict[str, int]
    never_committed: list[str]  # partitions the group has not committed on (it starts at the earliest)


@dataclass
class StateTable:
    name: str
    rows: list[state_view.Document] = field(default_factory=list)
    more: int = 0


@dataclass
class ServiceStatus:
    service: Service
    rate_per_s: float
    written: int
    lag: Lag | None
    lag_error: str | None
    dead_letters: list[dlq_retry.DeadLetter]
    dead_letters_error: str | None
    state: list[StateTable]
    state_error: str | None


class Queries:
    def __init__(self, settings: Settings, codec: Codec, index: SagaIndex) -> None:
        self.settings = settings
        self.codec = codec
        self.index = index
        self.services = list(installation().services)
        # Partition counts of every topic a trace reads: asked of the broker once, on the first
        # saga page, not on every one (a topic's partition count does not change under a run).
        self._trace_partitions: dict[str, int] | None = None

    def service(self, name: str) -> Service:
        return installation().service(name)

    def trace_partitions(self) -> dict[str, int]:
        if self._trace_partitions is None:
            logical = logical_topics(self.services)
            counts = topic_partitions(self.settings, logical)
            self._trace_partitions = {t: counts[self.settings.topic(t)] for t in logical}
        return self._trace_partitions

    def trace(self, saga_id: str) -> Trace:
        """The saga's trace, from the key the index knows (else looked up from the own topics)."""
        known = self.index.saga(saga_id)
        key = known.key if known is not None else find_key(self.settings, self.services, saga_id)
        return trace_saga(self.settings, self.services, self.codec, saga_id, key,
                          self.trace_partitions())

    def owing(self, trace: Trace) -> list[Owing]:
        """Who an unended saga waits for: the services that have not read one of its events
        (choreo/ops/stuck.py), with their lag and whether any instance runs."""
        return find_owing(self.settings, self.services, {trace.saga_id: [s.record for s in trace.steps]})[
            trace.saga_id]

    def status(self, name: str) -> ServiceStatus:
        service = self.service(name)
        rate, written = self.index.rate(name)
        lag, lag_error = _try(lambda: self.lag(service))
        letters, letters_error = _try(lambda: self.dead_letters(service))
        state, state_error = _try(lambda: self.state(service))
        return ServiceStatus(service, rate, written, lag, lag_error, letters or [], letters_error,
                             state or [], state_error)

    def lag(self, service: Service) -> Lag:
        # `plan` only reads (committed offsets and watermarks); nothing moves until `execute`.
        moves = offsets_reset.plan(self.settings, service, to_earliest=True)
        by_topic: dict[str, int] = defaultdict(int)
        never = []
        for m in moves:
            done = m.low if m.committed is None else m.committed
            by_topic[m.topic.removeprefix(self.settings.topic_prefix)] += max(0, m.high - done)
            if m.committed is None and m.high > m.low:
                never.append(f"{m.topic}[{m.partition}]")
        return Lag(sum(by_topic.values()), dict(by_topic), never)

    def dead_letters(self, service: Service) -> list[dlq_retry.DeadLetter]:
        return dlq_retry.dead_letters(self.settings, service.dlq_topic, self.codec)

    def dead_letters_at(
        self, service: Service, partition: int | None, offset: int | None
    ) -> list[dlq_retry.DeadLetter]:
        """The dead letters a retry would select: one (partition and offset) or all."""
        return dlq_retry.dead_letters(self.settings, service.dlq_topic, self.codec, partition, offset)

    def state(self, service: Service) -> list[StateTable]:
        tables: dict[str, StateTable] = {}
        for doc in state_view.documents(self.settings, service.name, state_view.DocumentFilter()):
            table = tables.setdefault(doc.table, StateTable(doc.table))
            if len(table.rows) < STATE_ROWS:
                table.rows.append(doc)
            else:
                table.more += 1
        return list(tables.values())

    def retry_dead_letters(
        self, service: Service, partition: int | None, offset: int | None
    ) -> dlq_retry.RetryReport:
        return dlq_retry.retry(self.settings, service, self.codec, partition=partition, offset=offset)


def _try(read: Callable[[], T]) -> tuple[T | None, str | None]:
    """One part of a page: its value, or the sentence saying why it cannot be shown."""
    try:
        return read(), None
    except (ChoreoError, KafkaException) as e:
        return None, " ".join(error_sentence(e).split())
