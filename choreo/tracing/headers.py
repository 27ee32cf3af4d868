"""The W3C trace context in Kafka record headers: read from an input, written on an output.

Kafka headers are (name, bytes) pairs, not the str mapping OpenTelemetry's propagators expect;
a getter and a setter adapt them, so the SDK's own W3C propagator does the parsing and the
formatting (a malformed `traceparent` is ignored as the specification says).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import Span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from choreo.kafka.messages import Headers

_PROPAGATOR = TraceContextTextMapPropagator()


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k == key]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _v in carrier]


class _HeaderSetter(Setter[Headers]):
    def set(self, carrier: Headers, key: str, value: str) -> None:
        carrier.append((key, value.encode("latin-1")))


_GETTER, _SETTER = _HeaderGetter(), _HeaderSetter()


def parent_context(headers: Sequence[tuple[str, bytes]]) -> Context:
    """The trace context a record's headers carry; an empty context (a new trace) without one."""
    # An explicit empty context: whatever span is current in this thread must not become a parent.
    return _PROPAGATOR.extract(headers, context=Context(), getter=_GETTER)


def context_headers(span: Span) -> Headers:
    """`traceparent` (and `tracestate`, when there is one) naming `span` as the parent."""
    out: Headers = []
    _PROPAGATOR.inject(out, context=set_span_in_context(span), setter=_SETTER)
    return out
