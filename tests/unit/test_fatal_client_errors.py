"""A fatal client error that confluent-kafka surfaces as a SystemError inside a flush or poll (a
fenced producer) ends the worker with one line and exit 1, like any other Kafka error."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError, KafkaException

from choreo.runtime.worker import run_worker_safely


class _Flushing:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def run(self) -> None:
        raise self.error


def _fenced_flush() -> SystemError:
    fatal = KafkaException(KafkaError(KafkaError._FENCED, "producer fenced by a newer instance", fatal=True))
    try:
        try:
            raise fatal
        except KafkaException as cause:
            raise SystemError("<method 'code' of KafkaError> returned a result with an exception "
                              "set") from cause
    except SystemError as e:
        return e


def test_a_systemerror_caused_by_a_fatal_kafka_error_is_one_line_and_exit_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        code = run_worker_safely(_Flushing(_fenced_flush()))  # type: ignore[arg-type]
    assert code == 1
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "producer fenced by a newer instance" in line and "SystemError" not in line


def test_any_other_systemerror_is_not_hidden() -> None:
    with pytest.raises(SystemError):
        run_worker_safely(_Flushing(SystemError("a bug of our own")))  # type: ignore[arg-type]

