"""CHOREO_LOG_FORMAT=json: a worker's log is one JSON object per line, with the fields a collector
indexes (service, instance, saga id, partition, trace id); `text` stays as it was."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from choreo.exceptions import ConfigurationError
from choreo.logs import configure_logging, current_trace_id
from choreo.settings import Settings, load_settings

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
BASE_KEYS = {"time", "level", "service", "instance", "logger", "message"}
log = logging.getLogger("choreo.runtime.test")

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def root_logger() -> Iterator[None]:
    """The root logger as it was before the test configured it (pytest's capture handlers)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _configured(log_format: str) -> io.StringIO:
    """Logging set up as `choreo worker orders --instance 2`; what its handler writes to stderr."""
    configure_logging("orders", "DEBUG", saga_field="order_id", instance="2", log_format=log_format)
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
    stream = io.StringIO()
    handler.setStream(stream)  # pytest swaps sys.stderr between phases: read a stream of our own
    return stream


@pytest.fixture
def json_lines(root_logger: None) -> Lines:
    """A reader of the lines logged with CHOREO_LOG_FORMAT=json."""
    stream = _configured("json")

    def read() -> list[dict[str, Any]]:
        text = stream.getvalue()
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]  # every line is one object

    return read


def test_every_line_is_one_json_object_with_the_base_fields(json_lines: Lines) -> None:
    log.info("assigned %s", "[0, 1]")
    log.warning("slow")
    log.debug("detail")
    lines = json_lines()
    assert [(line["level"], line["message"]) for line in lines] == [
        ("INFO", "assigned [0, 1]"), ("WARNING", "slow"), ("DEBUG", "detail"),
    ]
    for line in lines:
        assert set(line) == BASE_KEYS  # nothing else when nothing else is known
        assert TIME.fullmatch(line["time"]), line["time"]
        assert (line["service"], line["instance"], line["logger"]) == ("orders", "2", log.name)


def test_a_saga_and_a_partition_are_fields_when_given(json_lines: Lines) -> None:
    log.error("decide raised", extra={"saga": "o-17"})
    log.info("restored", extra={"partition": 3})
    log.info("both", extra={"saga": "o-18", "partition": 0})
    log.info("no saga known", extra={"saga": "-"})  # what a timer without the field passes
    first, second, third, fourth = json_lines()
    assert first["saga_id"] == "o-17" and "partition" not in first
    assert second["partition"] == 3 and "saga_id" not in second
    assert (third["saga_id"], third["partition"]) == ("o-18", 0)  # partition 0 is a partition
    assert set(fourth) == BASE_KEYS


def test_an_exception_is_its_formatted_traceback_on_the_same_line(json_lines: Lines) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("evolve raised")
    (line,) = json_lines()
    assert line["message"] == "evolve raised" and line["level"] == "ERROR"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("ValueError: boom")


def test_a_message_with_newlines_stays_one_line(json_lines: Lines) -> None:
    log.warning("first\nsecond\r\nthird \"quoted\"")
    (line,) = json_lines()
    assert line["message"] == "first\nsecond\r\nthird \"quoted\""


def test_values_json_has_no_type_for_do_not_break_the_line(json_lines: Lines) -> None:
    saga = uuid.UUID(int=7)
    log.info("odd extras %s", object(), extra={"saga": saga, "partition": Path("p3")})
    log.info("bytes", extra={"saga": b"o-1"})
    first, second = json_lines()
    assert (first["saga_id"], first["partition"]) == (str(saga), "p3")
    assert second["saga_id"] == "b'o-1'"


def test_no_trace_id_without_opentelemetry(json_lines: Lines, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tracing off: nothing of OpenTelemetry was imported, and logging does not import it.
    monkeypatch.delitem(sys.modules, "opentelemetry.trace", raising=False)
    log.info("untraced")
    (line,) = json_lines()
    assert "trace_id" not in line
    assert "opentelemetry.trace" not in sys.modules


def test_a_tracing_library_that_fails_costs_the_trace_id_only(
    json_lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = types.ModuleType("opentelemetry.trace")

    def get_current_span() -> None:
        raise RuntimeError("broken")

    broken.get_current_span = get_current_span  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", broken)
    log.info("still logged")
    (line,) = json_lines()
    assert line["message"] == "still logged" and "trace_id" not in line


def test_the_trace_id_of_the_recording_span(json_lines: Lines) -> None:
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    tracer = sdk.TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("decide") as span:
        log.info("inside", extra={"saga": "o-1"})
        trace_id = span.get_span_context().trace_id
    log.info("outside")
    with sdk.TracerProvider(sampler=ALWAYS_OFF).get_tracer("test").start_as_current_span("unsampled"):
        log.info("not recorded")  # its trace is exported nowhere: no id to look for
    inside, outside, unsampled = json_lines()
    assert inside["trace_id"] == f"{trace_id:032x}" and re.fullmatch(r"[0-9a-f]{32}", inside["trace_id"])
    assert inside["saga_id"] == "o-1"
    assert "trace_id" not in outside and "trace_id" not in unsampled
    assert current_trace_id() is None


def test_text_stays_the_format_it_was(root_logger: None) -> None:
    stream = _configured("text")
    log.info("decided", extra={"saga": "o-1", "partition": 4})
    log.info("no saga")
    first, second = stream.getvalue().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO orders order_id=o-1 choreo\.runtime\.test: decided",
        first,
    )
    assert second.endswith("INFO orders order_id=- choreo.runtime.test: no saga")


# -- the setting ------------------------------------------------------------------------------


def test_the_log_format_is_text_unless_set() -> None:
    assert load_settings({}).log_format == "text" == Settings().log_format


@pytest.mark.parametrize(("value", "loaded"), [("json", "json"), ("JSON", "json"), (" text ", "text")])
def test_the_log_format_is_text_or_json_in_any_case(value: str, loaded: str) -> None:
    assert load_settings({"CHOREO_LOG_FORMAT": value}).log_format == loaded


@pytest.mark.parametrize("value", ["xml", "logfmt", "js on"])
def test_another_log_format_is_one_sentence_naming_the_two(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"CHOREO_LOG_FORMAT": value})
    assert str(caught.value) == f"CHOREO_LOG_FORMAT must be one of text, json (any case), got {value!r}"


def test_an_empty_log_format_is_an_error_not_the_default() -> None:
    with pytest.raises(ConfigurationError, match="CHOREO_LOG_FORMAT is set but empty"):
        load_settings({"CHOREO_LOG_FORMAT": ""})


def test_the_log_format_in_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "choreo.toml"
    config.write_text('log_format = "json"\n')
    assert load_settings({}, config).log_format == "json"
    config.write_text('log_format = "yaml"\n')
    with pytest.raises(ConfigurationError, match=f"log_format in {config} must be one of text, json"):
        load_settings({}, config)


# -- `choreo worker` ----------------------------------------------------------------------------


def test_the_worker_logs_json_naming_its_instance(
    root_logger: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import choreo.runtime.compose
    from choreo.cli.main import app

    def build_worker(service: str, settings: Settings, instance: str, *_: Any, **__: Any) -> None:
        logging.getLogger("choreo.runtime.worker").info("building", extra={"partition": 1})
        raise ConfigurationError("stopped by the test before any client")

    monkeypatch.setattr(choreo.runtime.compose, "build_worker", build_worker)
    monkeypatch.delenv("CHOREO_CONFIG", raising=False)
    monkeypatch.setenv("CHOREO_STACK_DIR", str(tmp_path / "stack"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://127.0.0.1:1/apis/ccompat/v7")
    monkeypatch.setenv("CHOREO_LOG_FORMAT", "json")
    result = CliRunner().invoke(app, ["worker", "orders", "--instance", "3"])
    assert result.exit_code == 1, result.output
    logged, error = result.stderr.splitlines()
    line = json.loads(logged)
    assert {k: line[k] for k in ("level", "service", "instance", "logger", "message", "partition")} == {
        "level": "INFO", "service": "orders", "instance": "3", "logger": "choreo.runtime.worker",
        "message": "building", "partition": 1,
    }
    assert error == "error: stopped by the test before any client"  # the CLI's own sentence
