"""Logging set-up: every line names the service and, when there is one, the saga (by the domain's saga id)."""

from __future__ import annotations

import logging
import sys

from choreo.exceptions import ConfigurationError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _SagaFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "saga"):
            record.saga = "-"
        record.service = self.service
        return True


def parse_level(text: str) -> str:
    """The standard level name `text` means, in any case (`warn` too); one sentence if none."""
    name = text.strip().upper()
    if name in logging.getLevelNamesMapping() and name != "NOTSET":
        return logging.getLevelName(logging.getLevelNamesMapping()[name])  # WARN -> WARNING
    raise ConfigurationError(f"--log-level must be one of {', '.join(LEVELS)} (any case), got {text!r}")


def configure_logging(service: str, level: str = "INFO", saga_field: str = "saga") -> None:
    """Log lines to stderr as `time LEVEL service <saga_field>=<id> logger: message`.

    A line about one saga passes `extra={"saga": id}`; `saga_field` is the domain's name for it.
    """
    handler = logging.StreamHandler(sys.stderr)
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
