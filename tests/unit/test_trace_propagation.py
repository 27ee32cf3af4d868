"""The W3C trace context from the edge through each decision to its events, with no broker.

A fake producer stands in for Kafka: what the edge and the traced output would send is what the
next decision reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from choreo.kafka.messages import Consumed
from choreo.runtime.batch import Batch, TransactionalStore
from choreo.runtime.commit import BatchOutcome
from choreo.runtime.watchdog import NoWatchdog
from choreo.tracing.headers import context_headers, parent_context
from choreo.tracing.spans import EdgeTracing, WorkerTracing

OWN, DLQ = "p.packaging", "p.packaging.dlq"
SAGA = "order-7"


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[tuple[str, bytes]]]] = []

    def produce(self, topic: str, **kw: Any) -> None:
        self.sent.append((topic, kw["headers"]))


@pytest.fixture()
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


@pytest.fixture()
def tracer(spans: InMemorySpanExporter) -> Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider.get_tracer("test")


def _record(headers: list[tuple[str, bytes]], offset: int = 41) -> Consumed:
    return Consumed("p.orders", 2, offset, None, b"v", list(headers))


def _by_name(spans: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans.get_finished_spans()}


def test_a_header_written_from_a_span_reads_back_as_that_span(tracer: Tracer) -> None:
    with tracer.start_as_current_span("parent") as span:
        headers = context_headers(span)
    assert [name for name, _ in headers] == ["traceparent"]
    remote = parent_context(headers)
    with tracer.start_as_current_span("child", context=remote) as child:
        pass
    assert child.get_span_context().trace_id == span.get_span_context().trace_id
    assert child.parent is not None and child.parent.span_id == span.get_span_context().span_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("headers", [
    [],
    [("traceparent", b"garbage")],
    [("traceparent", b"00-00000000000000000000000000000000-00f067aa0ba902b7-01")],  # all-zero trace id
    [("traceparent", b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],  # forbidden version
])
def test_a_record_without_a_valid_traceparent_starts_a_new_trace(
    tracer: Tracer, headers: list[tuple[str, bytes]]
) -> None:
    with tracer.start_as_current_span("ambient"):  # what runs around a decision is no parent
        with tracer.start_as_current_span("decision", context=parent_context(headers)) as span:
            pass
    assert span.parent is None  # type: ignore[attr-defined]


def test_the_edge_span_is_the_parent_of_the_decision_and_the_decision_of_its_events(
    tracer: Tracer, spans: InMemorySpanExporter
) -> None:
    with EdgeTracing(tracer).sending("delivery.orders.OrderPlaced", "p.orders", SAGA) as trace_headers:
        command = [("event_type", b"delivery.orders.OrderPlaced"), ("order_id", SAGA.encode()),
                   *trace_headers]
    producer = FakeProducer()
    tracing = WorkerTracing(tracer, "packaging", "order_id", group="p.packaging")
    output = tracing.output(producer, NoWatchdog(), OWN)  # type: ignore[arg-type]  # the fake

    def decide(msg: Consumed, store: TransactionalStore, batch: Batch) -> None:
        own = [("event_type", b"delivery.packaging.PackagePrepared"), ("order_id", SAGA.encode())]
        output.produce(OWN, 2, b"hub", b"event", own, None)

    tracing.decisions(decide)(_record(command), None, Batch())  # type: ignore[arg-type]

    edge, decision = _by_name(spans)["send OrderPlaced"], _by_name(spans)["packaging decide OrderPlaced"]
    assert edge.parent is None and edge.kind == SpanKind.PRODUCER
    assert decision.parent is not None and decision.parent.span_id == edge.context.span_id
    assert decision.context.trace_id == edge.context.trace_id
    assert decision.kind == SpanKind.CONSUMER
    assert decision.attributes == {
        "choreo.service": "packaging", "choreo.event_type": "delivery.orders.OrderPlaced",
        "choreo.saga_id": SAGA, "messaging.system": "kafka", "messaging.destination.name": "p.orders",
        "messaging.destination.partition.id": "2", "messaging.kafka.offset": 41,
        "messaging.consumer.group.name": "p.packaging",
    }
    [(topic, headers)] = producer.sent
    assert topic == OWN
    # The event keeps its type and saga id headers, and names the decision as its parent.
    assert headers[:2] == [("event_type", b"delivery.packaging.PackagePrepared"), ("order_id", SAGA.encode())]
    traceparent = dict(headers)["traceparent"].decode()
    version, trace_id, parent_id, flags = traceparent.split("-")
    assert (version, trace_id, parent_id) == (
        "00", f"{decision.context.trace_id:032x}", f"{decision.context.span_id:016x}")
    assert int(flags, 16) & 1  # sampled: the next service records its decision too
    assert [e.name for e in decision.events] == ["emit"]


def test_a_dead_letter_keeps_the_inputs_context_and_marks_the_decision(
    tracer: Tracer, spans: InMemorySpanExporter
) -> None:
    producer = FakeProducer()
    tracing = WorkerTracing(tracer, "packaging", "order_id")
    output = tracing.output(producer, NoWatchdog(), OWN)  # type: ignore[arg-type]  # the fake
    original = [("event_type", b"delivery.orders.OrderPlaced"),
                ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]

    def dead_letter(msg: Consumed, store: TransactionalStore, batch: Batch) -> None:
        output.produce(DLQ, 2, None, b"v", [*original, ("dlq.error.class", b"DecodeError")], None)

    tracing.decisions(dead_letter)(_record(original), None, Batch())  # type: ignore[arg-type]
    [(topic, headers)] = producer.sent
    assert topic == DLQ and [v for k, v in headers if k == "traceparent"] == [original[1][1]]
    [decision] = spans.get_finished_spans()
    assert decision.status.status_code == StatusCode.ERROR
    assert (decision.attributes or {})["choreo.dead_lettered"] is True
    assert decision.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736


def test_a_commit_span_links_the_decisions_of_its_batch_and_says_how_it_ended(
    tracer: Tracer, spans: InMemorySpanExporter
) -> None:
    tracing = WorkerTracing(tracer, "packaging", "order_id")
    decide = tracing.decisions(lambda msg, store, batch: None)
    outcomes = iter([True, False])

    def commit(msgs: list[Consumed]) -> BatchOutcome:
        for m in msgs:
            decide(m, None, Batch())  # type: ignore[arg-type]
        batch = Batch(size=len(msgs), emitted=3)
        committed = next(outcomes)
        return BatchOutcome(batch, committed=committed, why="" if committed else "a store failed")

    traced = tracing.commits(commit)
    traced([_record([], 1), _record([], 2)])
    traced([_record([], 3)])
    commits = [s for s in spans.get_finished_spans() if s.name == "packaging commit"]
    decisions = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert [len(c.links) for c in commits] == [2, 1]
    assert {link.context.span_id for c in commits for link in c.links} == {
        d.context.span_id for d in decisions
    }
    first, second = (c.attributes or {} for c in commits)
    assert first["choreo.batch.committed"] is True and first["choreo.batch.size"] == 2
    assert first["choreo.batch.emitted"] == 3
    assert second["choreo.batch.committed"] is False
    assert commits[1].status.status_code == StatusCode.ERROR
    assert all(c.parent is None for c in commits)


def test_a_commit_that_raises_still_ends_its_span_as_an_error(
    tracer: Tracer, spans: InMemorySpanExporter
) -> None:
    def fenced(msgs: list[Consumed]) -> BatchOutcome:
        raise RuntimeError("fenced")

    with pytest.raises(RuntimeError):
        WorkerTracing(tracer, "packaging", "order_id").commits(fenced)([])
    [commit] = spans.get_finished_spans()
    assert commit.status.status_code == StatusCode.ERROR
    assert [e.name for e in commit.events] == ["exception"]
