"""The spans of a saga: the edge's send, each worker's decisions, and each batch commit.

A saga's trace starts at the edge, where its first command is produced (a root span whose
context travels in the command's `traceparent` header). Each worker makes one span per decision
as a child of the input record's context and writes that span's context on every event the
decision emits, so the next service's decision is its child in turn: one trace per saga, one
tree across every service. A batch commit is a span of its own (the batch mixes sagas), linked
to the decisions it committed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, Tracer, get_current_span

from choreo.kafka.messages import EVENT_TYPE_HEADER, Consumed, Headers
from choreo.kafka.turns import TransactionalProducer
from choreo.runtime.batch import Batch, TransactionalStore
from choreo.runtime.observation import CommitBatch
from choreo.runtime.outputs import TransactionalOutput
from choreo.runtime.poison import Coordinates
from choreo.runtime.watchdog import Watchdog
from choreo.tracing.headers import context_headers, parent_context

if TYPE_CHECKING:
    from choreo.runtime.commit import BatchOutcome, ProcessRecord

# Span attributes: choreo's own, and OpenTelemetry's messaging conventions for the Kafka record.
SERVICE = "choreo.service"
EVENT_TYPE = "choreo.event_type"
SAGA_ID = "choreo.saga_id"
DEAD_LETTERED = "choreo.dead_lettered"
BATCH_SIZE = "choreo.batch.size"
BATCH_COMMITTED = "choreo.batch.committed"
BATCH_EMITTED = "choreo.batch.emitted"
BATCH_DEAD_LETTERED = "choreo.batch.dead_lettered"
TOPIC = "messaging.destination.name"
PARTITION = "messaging.destination.partition.id"
OFFSET = "messaging.kafka.offset"
GROUP = "messaging.consumer.group.name"



def _short(event_type: str) -> str:
    return event_type.rsplit(".", 1)[-1] or "record"


class EdgeTracing:
    """The root span of each command sent from the edge; its context goes in the headers."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    @contextmanager
    def sending(self, event_type: str, topic: str, saga: str | None) -> Iterator[Headers]:
        """A span around one produce; yields the headers that make the next decisions its children."""
        attributes: dict[str, str] = {"messaging.system": "kafka", EVENT_TYPE: event_type, TOPIC: topic}
        if saga is not None:
            attributes[SAGA_ID] = saga
        with self.tracer.start_as_current_span(
            f"send {_short(event_type)}", context=Context(), kind=SpanKind.PRODUCER,
            attributes=attributes,
        ) as span:
            yield context_headers(span)


class WorkerTracing:
    """One worker instance's decision and commit spans (one thread, one batch at a time)."""

    def __init__(self, tracer: Tracer, service: str, saga_field: str, group: str = "") -> None:
        self.tracer = tracer
        self.service = service
        self.saga_field = saga_field  # the header naming the saga (see Domain.saga_id)
        self.group = group
        self._decided: list[SpanContext] = []  # this batch's decisions, for the commit's links

    def output(
        self, producer: TransactionalProducer, watchdog: Watchdog, own_topic: str
    ) -> TransactionalOutput:
        """The transactional output, writing the current decision's context on every own event."""
        return _TracedOutput(producer, watchdog, own_topic)

    def decisions(self, process: ProcessRecord) -> ProcessRecord:
        """`process` inside a span per record, a child of the context the record carries."""

        def traced(msg: Consumed, store: TransactionalStore, batch: Batch) -> None:
            event_type = (msg.header(EVENT_TYPE_HEADER) or b"").decode(errors="replace")
            attributes: dict[str, str | int] = {
                SERVICE: self.service, EVENT_TYPE: event_type, "messaging.system": "kafka",
                TOPIC: msg.topic, PARTITION: str(msg.partition), OFFSET: msg.offset, GROUP: self.group,
            }
            saga = msg.header(self.saga_field)
            if saga:
                attributes[SAGA_ID] = saga.decode(errors="replace")
            with self.tracer.start_as_current_span(
                f"{self.service} decide {_short(event_type)}", context=parent_context(msg.headers),
                kind=SpanKind.CONSUMER, attributes=attributes,
            ) as span:
                self._decided.append(span.get_span_context())
                process(msg, store, batch)

        return traced

    def commits(self, commit: CommitBatch) -> CommitBatch:
        """`commit` followed by a span covering it, linked to the decisions of the batch."""

        def traced(msgs: list[Consumed]) -> BatchOutcome:
            self._decided.clear()
            started = time.time_ns()
            try:
                outcome = commit(msgs)
            except BaseException as e:
                self._commit_span(started, len(msgs), None, e)
                raise
            self._commit_span(started, len(msgs), outcome, None)
            return outcome

        return traced

    def _commit_span(
        self, started_ns: int, size: int, outcome: BatchOutcome | None, error: BaseException | None
    ) -> None:
        # Started after the fact: the links (the batch's decisions) are known only once it ran.
        span = self.tracer.start_span(
            f"{self.service} commit", context=Context(), start_time=started_ns,
            links=[Link(c) for c in self._decided], attributes={SERVICE: self.service, BATCH_SIZE: size},
        )
        self._decided.clear()
        if outcome is not None:
            span.set_attributes({
                BATCH_COMMITTED: outcome.committed, BATCH_EMITTED: outcome.batch.emitted,
                BATCH_DEAD_LETTERED: outcome.batch.dead,
            })
            if not outcome.committed:
                span.set_status(Status(StatusCode.ERROR, f"aborted after {outcome.why}"))
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()


class _TracedOutput(TransactionalOutput):
    """Adds the current decision's context to own events; marks the decision when it dead-letters.

    A dead letter keeps the input's own headers, trace context included, so a retried letter
    joins its saga's trace again."""

    def __init__(self, producer: TransactionalProducer, watchdog: Watchdog, own_topic: str) -> None:
        super().__init__(producer, watchdog)
        self.own_topic = own_topic

    def produce(
        self, topic: str, partition: int, key: bytes | None, value: bytes | None, headers: Headers,
        batch: Batch | None, cause: Coordinates | None = None,
    ) -> None:
        span = get_current_span()
        if topic == self.own_topic:
            headers = [*headers, *context_headers(span)]
            span.add_event("emit", {EVENT_TYPE: dict(headers).get(EVENT_TYPE_HEADER, b"").decode()})
        else:
            span.set_attribute(DEAD_LETTERED, True)
            span.set_status(Status(StatusCode.ERROR, "dead-lettered"))
        super().produce(topic, partition, key, value, headers, batch, cause)
