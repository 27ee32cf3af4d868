"""Whether to trace, and where to send the spans, from the standard `OTEL_*` variables.

Tracing is off unless `OTEL_TRACES_EXPORTER` names an exporter (other than `none`) or an OTLP
endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and
`OTEL_SDK_DISABLED` is not true. Everything else (endpoint, headers, sampler, batching,
resource attributes, `OTEL_SERVICE_NAME`) the SDK reads itself. When tracing is off, nothing of
OpenTelemetry is imported and the worker runs exactly as without it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from choreo.tracing.spans import EdgeTracing, WorkerTracing

log = logging.getLogger("choreo.tracing")

EDGE_SERVICE = "choreo-edge"
_EXPORTER_GROUP = "opentelemetry_traces_exporter"
# `otlp` means the protocol OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL names; the specification's
# default is http/protobuf, the exporter the `otel` extra installs.
_OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
_PACKAGE_OF = {
    "otlp_proto_http": "opentelemetry-exporter-otlp-proto-http",
    "otlp_proto_grpc": "opentelemetry-exporter-otlp-proto-grpc",
}


def tracing_requested(env: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables ask for traces."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def exporter_names(env: Mapping[str, str]) -> list[str]:
    """The entry-point names of the exporters asked for (`otlp` resolved to its protocol)."""
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip()
    return [_OTLP_BY_PROTOCOL.get(protocol, f"otlp ({protocol})") if n == "otlp" else n
            for n in names if n != "none"]


def provider_from_env(service_name: str) -> TracerProvider | None:
    """A tracer provider exporting as the OTEL_* variables say, or None when they do not ask for
    traces (or only for exporters that are not installed: said in one log line, the process runs
    on). `service_name` is the resource's `service.name` unless OTEL_SERVICE_NAME names one."""
    env = os.environ
    if not tracing_requested(env):
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    except ImportError:
        log.warning("the OTEL_* variables ask for traces, but OpenTelemetry is not installed "
                    "(pip install 'choreo[otel]'); running without traces")
        return None
    exporters: list[SpanExporter] = []
    for name in exporter_names(env):
        found = entry_points(group=_EXPORTER_GROUP, name=name)
        if not found:
            log.warning("OTEL_TRACES_EXPORTER asks for the %r exporter, which is not installed%s; "
                        "running without it", name,
                        f" (pip install {_PACKAGE_OF[name]})" if name in _PACKAGE_OF else "")
            continue
        exporters.append(next(iter(found)).load()())
    if not exporters:
        return None
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        # OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) wins over our default.
        resource = resource.merge(Resource({"service.name": service_name}))
    provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
    for exporter in exporters:
        # Batched off the hot path; flushed when the process exits (the provider's atexit hook).
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _tracer(service_name: str) -> Tracer | None:
    provider = provider_from_env(service_name)
    return None if provider is None else provider.get_tracer("choreo")


def worker_tracing(service: str, saga_field: str, group: str) -> WorkerTracing | None:
    """A worker's spans, when the OTEL_* variables ask for traces."""
    tracer = _tracer(service)
    if tracer is None:
        return None
    from choreo.tracing.spans import WorkerTracing

    return WorkerTracing(tracer, service, saga_field, group)


def edge_tracing() -> EdgeTracing | None:
    """The edge's spans (commands sent by the CLI, load, demo), when the OTEL_* variables ask."""
    tracer = _tracer(EDGE_SERVICE)
    if tracer is None:
        return None
    from choreo.tracing.spans import EdgeTracing

    return EdgeTracing(tracer)
