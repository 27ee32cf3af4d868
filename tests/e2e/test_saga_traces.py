"""OpenTelemetry: each saga is one trace, from the edge's command through every service's decisions.

The first test runs the workers in threads of the test process (the same `Worker` as `choreo
worker`), so that an in-memory exporter sees every span they make; the second runs `choreo
worker` processes and the CLI as a user would, exporting to a collector named by the OTEL_*
variables. The broker and registry are the real ones in both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from choreo.domain import installation
from choreo.edge import CommandSender
from choreo.ops.log_reader import LogRecord
from choreo.tracing.spans import EdgeTracing, WorkerTracing
from harness.processes import run_cli, wait_until
from producers import commands, seed
from tests.support.otlp_collector import OtlpCollector
from tests.support.saga_run import SagaRun
from tests.support.worker_threads import WorkerThreads

pytestmark = pytest.mark.e2e


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture()
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    yield spans
    spans.shutdown()


def _attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def _traceparent(record: LogRecord) -> tuple[int, int]:
    """(trace id, parent span id) of a record's W3C traceparent header."""
    version, trace_id, span_id, _flags = record.headers["traceparent"].decode().split("-")
    assert version == "00"
    return int(trace_id, 16), int(span_id, 16)


def test_each_saga_is_one_trace_through_every_service(saga: SagaRun, exporter: InMemorySpanExporter) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    saga_field = installation().envelope.saga_field
    services = list(installation().services)

    saga.seed(_now())  # sent untraced: stock and drones are no saga
    workers = WorkerThreads()
    try:
        for svc in services:
            workers.start(saga.settings, svc.name,
                          lambda name: WorkerTracing(tracer, name, saga_field, saga.settings.group(name)))
        saga.wait_seeded()
        north, west = "hub-north", "hub-west"
        address, sku = seed.deliverable_addresses(north)[0], seed.stocked_skus(north)[0]
        orders = [
            commands.place_order(north, sku, 1, address, _now()),
            commands.place_order(north, sku, 2, seed.deliverable_addresses(north)[1], _now()),
            commands.place_order(north, seed.UNSTOCKED_SKU, 1, address, _now()),
            commands.place_order(west, seed.stocked_skus(west)[0], 1, seed.deliverable_addresses(west)[0],
                                 _now()),
            commands.place_order(north, sku, 1, seed.UNKNOWN_ADDRESSES[0], _now()),
        ]
        sender = CommandSender(saga.settings, saga.codec, EdgeTracing(tracer))
        sender.send_all(orders)
        ends = saga.wait_for_ends(o.order_id for o in orders)
        assert sorted(ends.values()) == ["compensated"] * 3 + ["completed"] * 2
    finally:
        workers.stop()
    spans = exporter.get_finished_spans()

    traces: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        traces[span.context.trace_id].append(span)
    saga_traces = {tid: ss for tid, ss in traces.items() if any("choreo.saga_id" in _attrs(s) for s in ss)}
    # Exactly one trace per saga, and every span in it about that saga.
    assert len(saga_traces) == len(orders)
    trace_of: dict[str, int] = {}
    for tid, ss in saga_traces.items():
        sagas = {_attrs(s).get("choreo.saga_id") for s in ss}
        assert len(sagas) == 1, f"trace {tid:x} mixes sagas: {sagas}"
        trace_of[str(sagas.pop())] = tid
    assert set(trace_of) == {o.order_id for o in orders}

    # One tree per trace, rooted at the edge's send of PlaceOrder.
    for ss in saga_traces.values():
        roots = [s for s in ss if s.parent is None]
        assert [(r.name, r.kind) for r in roots] == [("send PlaceOrder", SpanKind.PRODUCER)]
        ids = {s.context.span_id for s in ss}
        for s in ss:
            assert s.parent is None or s.parent.span_id in ids, f"{s.name} has a parent outside its trace"
        decisions = [s for s in ss if s.kind == SpanKind.CONSUMER]
        assert decisions and all(s.parent is not None and s.parent.is_remote for s in decisions)

    # Every event of a saga on the log carries its trace, its parent being a decision of the
    # service that wrote it: so every service the saga passed through has a span in the trace.
    span_by_id = {s.context.span_id: s for s in spans}
    log: dict[tuple[str, int, int], LogRecord] = {}
    for svc in services:
        for logical in (svc.own_topic, *svc.inputs):
            for r in saga.raw(logical):
                log[(r.topic, r.partition, r.offset)] = r
    passed: dict[str, set[str]] = defaultdict(set)
    for svc in services:
        for r in saga.raw(svc.own_topic):
            order_id = r.headers.get(saga_field, b"").decode()
            if order_id not in trace_of:
                continue  # stock and drones
            trace_id, parent_id = _traceparent(r)
            assert trace_id == trace_of[order_id], f"{r.event_type} of {order_id} left its saga's trace"
            parent = span_by_id[parent_id]
            assert _attrs(parent)["choreo.service"] == svc.name
            passed[order_id].add(svc.name)
    for o in orders:
        decided = {_attrs(s)["choreo.service"] for s in saga_traces[trace_of[o.order_id]]
                   if s.kind == SpanKind.CONSUMER}
        assert passed[o.order_id] <= decided
        assert "orders" in passed[o.order_id] and "packaging" in passed[o.order_id]
    completed = [o for o in orders if ends[o.order_id] == "completed"]
    for o in completed:
        assert passed[o.order_id] == {"orders", "packaging", "drones", "delivery"}

    # The commands carry the edge span's context and the saga id header.
    for r in saga.raw("orders.commands"):
        order_id = r.headers[saga_field].decode()
        trace_id, parent_id = _traceparent(r)
        assert trace_id == trace_of[order_id]
        assert span_by_id[parent_id].name == "send PlaceOrder"

    # A decision span names the record it decided on; decisions on records of no saga (the
    # seed) are traces of their own, never part of a saga's.
    for span in spans:
        if span.kind != SpanKind.CONSUMER:
            continue
        a = _attrs(span)
        for key in ("choreo.service", "choreo.event_type", "messaging.destination.partition.id",
                    "messaging.kafka.offset"):
            assert key in a, f"{span.name} has no {key}"
        record = log[(str(a["messaging.destination.name"]), int(str(a["messaging.destination.partition.id"])),
                      int(str(a["messaging.kafka.offset"])))]
        assert record.event_type == a["choreo.event_type"]
        saga_id = record.headers.get(saga_field)  # empty on the events of no saga
        if not saga_id:
            assert span.context.trace_id not in saga_traces
        else:
            assert a["choreo.saga_id"] == saga_id.decode()
            assert span.context.trace_id == trace_of[saga_id.decode()]

    # Each batch commit is a span of its own, linked to the decisions it committed.
    commits = [s for s in spans if s.name.endswith(" commit")]
    assert {_attrs(s)["choreo.service"] for s in commits} == {svc.name for svc in services}
    linked = {link.context.span_id for c in commits for link in c.links}
    for span in spans:
        if span.kind == SpanKind.CONSUMER:
            assert span.context.span_id in linked, f"{span.name} is in no commit's links"
    assert all(c.parent is None and c.context.trace_id not in saga_traces for c in commits)


def test_worker_processes_and_the_cli_send_a_saga_s_trace_to_the_collector_the_variables_name(
    saga: SagaRun,
) -> None:
    collector = OtlpCollector()
    # Any: run_cli's keywords mix its own (timeout) with the environment's.
    otel: dict[str, Any] = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    north = "hub-north"
    try:
        saga.seed(_now())
        for svc in list(installation().services):
            saga.start(svc.name, **otel)
        saga.wait_seeded()
        placed = run_cli(saga.settings, "order", "place", "--hub", north,
                         "--sku", seed.stocked_skus(north)[0],
                         "--address", seed.deliverable_addresses(north)[0], **otel)
        assert placed.returncode == 0, placed.stderr
        order_id = placed.stdout.strip().splitlines()[-1]
        assert saga.wait_for_ends([order_id]) == {order_id: "completed"}

        def services() -> set[str]:
            return {s.service for s in collector.spans() if s.attribute("choreo.saga_id") == order_id}

        everyone = {"choreo-edge", "orders", "packaging", "drones", "delivery"}
        wait_until(lambda: services() >= everyone, 60, "the saga's spans of every service at the collector")
    finally:
        collector.close()
    spans = [s for s in collector.spans() if s.attribute("choreo.saga_id") == order_id]
    assert len({s.span.trace_id for s in spans}) == 1
    roots = [s for s in spans if not s.span.parent_span_id]
    assert [(r.service, r.span.name) for r in roots] == [("choreo-edge", "send PlaceOrder")]
    ids = {s.span.span_id for s in spans}
    assert all(s.span.parent_span_id in ids for s in spans if s.span.parent_span_id)
