"""Triage of librdkafka errors for the transactional loop: retry, abort, or stop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

log = logging.getLogger("choreo.kafka")

# Errors after which this instance must not write again: roll back, close, exit non-zero.
FATAL_CODES = frozenset({
    KafkaError._FATAL,  # e.g. a static consumer fenced by a newer one with our group.instance.id
    KafkaError._FENCED,
    KafkaError.INVALID_PRODUCER_EPOCH,
    KafkaError.PRODUCER_FENCED,
    KafkaError.FENCED_INSTANCE_ID,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
})
RETRIES = 10


def is_fatal(err: KafkaError) -> bool:
    return bool(err.fatal()) or err.code() in FATAL_CODES


def call_retrying(
    fn: Callable[..., Any], *args: Any, attempts: int = RETRIES, what: str | None = None
) -> Any:
    """Call a transactional API, calling it again while librdkafka says the error is retriable.

    A retried commit is the same commit: librdkafka resumes it rather than starting a new one.
    """
    for attempt in range(attempts):
        try:
            return fn(*args)
        except KafkaException as e:
            err = e.args[0]
            if not err.retriable() or attempt == attempts - 1:
                raise
            log.warning("retrying %s after %s", what or getattr(fn, "__name__", fn), err.str())
    return None
