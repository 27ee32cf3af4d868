"""Logging set-up: every line names the service and, when there is one, the saga (by the domain's saga id).

Two formats (CHOREO_LOG_FORMAT): `text` for a person, and `json` for a log collector: one object
per line with `time`, `level`, `service`, `instance`, `logger`, `message` and, where known,
`saga_id`, `partition`, `trace_id` and `exception`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from choreo.exceptions import ConfigurationError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# What a line without a saga shows in the text format (and what some callers pass for "none").
_NO_SAGA = "-"


class _SagaFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "saga"):
            record.saga = _NO_SAGA
        record.service = self.service
        return True


def parse_level(text: str) -> str:
    """The standard level name `text` means, in any case (`warn` too); one sentence if none."""
    name = text.strip().upper()
    if name in logging.getLevelNamesMapping() and name != "NOTSET":
        return logging.getLevelName(logging.getLevelNamesMapping()[name])  # WARN -> WARNING
    raise ConfigurationError(f"--log-level must be one of {', '.join(LEVELS)} (any case), got {text!r}")


def utc_time(seconds: float) -> str:
    """`seconds` since the epoch as ISO 8601 UTC to the millisecond: `2024-05-01T12:00:00.123Z`."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_line(entry: dict[str, Any]) -> str:
    """One JSON object on one line (JSON escapes a newline); a value JSON has no type for is its str()."""
    return json.dumps(entry, default=str)


def current_trace_id() -> str | None:
    """The trace id (32 hex digits) of the span recording now, if tracing is on and one is.

    Looked up in sys.modules, never imported: when tracing is off nothing of OpenTelemetry is
    imported (choreo/tracing/config.py), and a log line must not be the first to import it.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    try:
        span = trace.get_current_span()
        context = span.get_span_context()
        if not span.is_recording() or not context.is_valid:
            return None
        return f"{context.trace_id:032x}"
    except Exception:  # noqa: BLE001 - a log line goes out whatever the tracing library does
        return None


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line (see the module's docstring for its keys)."""

    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self.service = service
        self.instance = instance

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": utc_time(record.created),
            "level": record.levelname,
            "service": self.service,
            "instance": self.instance,
            "logger": record.name,
            "message": record.getMessage(),
        }
        saga = getattr(record, "saga", None)
        if saga is not None and saga != _NO_SAGA:
            entry["saga_id"] = saga
        partition = getattr(record, "partition", None)
        if partition is not None:
            entry["partition"] = partition
        trace_id = current_trace_id()
        if trace_id is not None:
            entry["trace_id"] = trace_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json_line(entry)


def configure_logging(
    service: str, level: str = "INFO", saga_field: str = "saga", instance: str = "0",
    log_format: str = "text",
) -> None:
    """Log lines to stderr: with `text`, `time LEVEL service <saga_field>=<id> logger: message`;
    with `json`, one JSON object per line (JsonFormatter), naming `instance` too.

    A line about one saga passes `extra={"saga": id}`; `saga_field` is the domain's name for it.
    A line about one partition passes `extra={"partition": n}` (shown in JSON only).
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(service, instance))
    else:
        handler.addFilter(_SagaFilter(service))
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s %(levelname)s %(service)s {saga_field}=%(saga)s %(name)s: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(parse_level(level))
    # The registry client logs every HTTP request at INFO; that is noise in a worker's log.
    for noisy in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
