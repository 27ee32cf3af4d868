"""Tracing is configured by the standard OTEL_* variables alone, and costs nothing when they are unset."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from choreo.tracing.config import exporter_names, provider_from_env, tracing_requested, worker_tracing
from harness.paths import REPO
from tests.support.otlp_collector import OtlpCollector


@pytest.fixture(autouse=True)
def no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("env", "on"), [
    ({}, False),
    ({"OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ({"OTEL_SERVICE_NAME": "shop"}, False),  # names the service, asks for nothing
])
def test_only_the_otel_variables_turn_tracing_on(env: dict[str, str], on: bool) -> None:
    assert tracing_requested(env) is on


@pytest.mark.parametrize(("env", "names"), [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ["otlp_proto_http"]),
    ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp_proto_http", "console"]),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ["otlp_proto_grpc"]),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
      "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, ["otlp_proto_http"]),
])
def test_otlp_means_the_protocol_the_variables_name_http_by_default(
    env: dict[str, str], names: list[str]
) -> None:
    assert exporter_names(env) == names


def test_spans_reach_an_otlp_collector_named_by_the_endpoint_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collector = OtlpCollector()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
        provider = provider_from_env("packaging")
        assert provider is not None
        provider.get_tracer("t").start_span("packaging decide OrderPlaced").end()
        assert provider.force_flush(10_000)
        provider.shutdown()
    finally:
        collector.close()
    assert collector.paths == ["/v1/traces"]
    assert [(s.service, s.span.name) for s in collector.spans()] == [
        ("packaging", "packaging decide OrderPlaced")
    ]


def test_otel_service_name_wins_over_the_service_s_own_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    for name, expected in ((None, "packaging"), ("shop-packaging", "shop-packaging")):
        if name is not None:
            monkeypatch.setenv("OTEL_SERVICE_NAME", name)
        provider = provider_from_env("packaging")
        assert provider is not None
        assert provider.resource.attributes["service.name"] == expected
        provider.shutdown()


def test_a_missing_extra_is_one_log_line_and_no_tracing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    with caplog.at_level(logging.WARNING, "choreo.tracing"):
        assert worker_tracing("packaging", "order_id", "packaging") is None
    [line] = caplog.messages
    assert "pip install 'choreo[otel]'" in line and "running without traces" in line


def test_an_exporter_that_is_not_installed_is_named_with_its_package(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with caplog.at_level(logging.WARNING, "choreo.tracing"):
        assert provider_from_env("packaging") is None
    [line] = caplog.messages
    assert "opentelemetry-exporter-otlp-proto-grpc" in line


def test_with_tracing_off_a_worker_never_imports_opentelemetry() -> None:
    script = (
        "import sys\n"
        "from choreo.tracing.config import edge_tracing, worker_tracing\n"
        "import choreo.runtime.worker, choreo.edge\n"
        "assert worker_tracing('packaging', 'order_id', 'packaging') is None\n"
        "assert edge_tracing() is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], env={**env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

