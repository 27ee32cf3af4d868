"""Errors of the Kafka client library: no setting's value echoed, and a fenced worker closes quietly.

librdkafka quotes a refused value (`Invalid value "..." for configuration property "..."`), and
that value may be a password set in CHOREO_KAFKA_*. A fenced producer's fatal error surfaces in
confluent-kafka as a SystemError from the next delivery report; closing must survive it.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException

from choreo.exceptions import ConfigurationError
from choreo.kafka import clients
from choreo.runtime.worker import Worker
from choreo.serde.codec import Codec
from choreo.settings import Settings, load_settings
from tests.support import toy
from tests.unit.test_cli_errors import CHOREO, SECRET, _run, env, one_sentence  # noqa: F401 - env

pytestmark = pytest.mark.usefixtures("env")

BUILDERS: dict[str, Callable[[Settings], Any]] = {
    "admin": clients.admin_client,
    "transactional producer": lambda s: clients.transactional_producer(s, "tid"),
    "edge producer": clients.plain_producer,
    "group consumer": lambda s: clients.group_consumer(s, "group", "0"),
    "reader": clients.reader_consumer,
}


@pytest.fixture
def secret_protocol(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    request.getfixturevalue("env")  # first: it clears every CHOREO_KAFKA_* of the caller
    # The leak of the finding: a secret put, by mistake, in a property that is not a password.
    monkeypatch.setenv("CHOREO_KAFKA_SECURITY_PROTOCOL", SECRET)


@pytest.mark.usefixtures("secret_protocol")
@pytest.mark.parametrize("builder", BUILDERS)
def test_a_refused_client_setting_is_one_sentence_without_its_value(builder: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        BUILDERS[builder](load_settings())
    text = str(raised.value)
    assert 'Invalid value "***" for configuration property "security.protocol"' in text
    assert "CHOREO_KAFKA_" in text and SECRET not in text
    # Not chained: the library's own exception still holds the value.
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_secret_looking_values_are_masked_even_outside_the_passthrough() -> None:
    """A password given to a builder directly (not through CHOREO_KAFKA_*) is masked too."""

    def echoing(config: dict[str, Any]) -> Any:
        raise KafkaException(KafkaError(KafkaError._INVALID_ARG,
                                        f'Invalid value "{config["sasl.password"]}" for "x"'))

    with pytest.raises(ConfigurationError) as raised:
        clients._built(echoing, {"sasl.password": SECRET}, Settings())
    assert SECRET not in str(raised.value) and '"***"' in str(raised.value)


def test_redaction_masks_the_longest_secret_first() -> None:
    assert clients.redacted("pass=abcdef and abc", ["abc", "abcdef"]) == "pass=*** and ***"


@pytest.mark.usefixtures("secret_protocol")
def test_the_cli_says_it_in_one_sentence_without_the_value() -> None:
    one_sentence(_run("replay", "orders"), "security.protocol", '"***"')


@pytest.mark.usefixtures("secret_protocol")
def test_a_worker_logs_one_error_line_without_the_value(env: Path) -> None:  # noqa: F811
    ran = subprocess.run([str(CHOREO), "worker", "orders"], env=dict(os.environ),
                         capture_output=True, text=True, timeout=120, cwd=env)
    assert ran.returncode == 1
    output = ran.stdout + ran.stderr
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "security.protocol" in errors[0], output
    assert SECRET not in output and "Traceback" not in output


# -- a fenced worker's close --------------------------------------------------------------------


FENCED = KafkaError(KafkaError._FENCED, "Failed to end transaction: Local: This instance has been "
                    "fenced by a newer instance", fatal=True)


def _system_error_from_fencing() -> SystemError:
    """What confluent-kafka raises from flush() once the fatal error was set before a report."""
    try:
        try:
            raise KafkaException(FENCED)
        except KafkaException as fatal:
            raise SystemError("<method 'code' of 'confluent_kafka.cimpl.KafkaError' objects> "
                              "returned a result with an exception set") from fatal
    except SystemError as e:
        return e


class _Client:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error, self.closed = error, False

    def close(self) -> None:
        self.closed = True
        if self.error is not None:
            raise self.error

    def flush_all(self, _timeout_s: float) -> None:
        self.close()


def test_a_fenced_worker_closes_every_client_and_logs_the_fencing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Worker(toy.COUNTER, Settings(), cast(Codec, None), toy.DOMAIN.envelope)
    consumer = _Client(KafkaException(KafkaError(KafkaError._FATAL, "Static consumer fenced")))
    readers = [_Client(), _Client()]
    producer = _Client(_system_error_from_fencing())
    worker._consumer, worker._readers, worker._producer = consumer, readers, producer  # type: ignore[assignment]
    with caplog.at_level(logging.INFO, "choreo.runtime.worker"):
        worker._close()  # must not raise: the error that ended the loop is the one to report
    assert consumer.closed and all(r.closed for r in readers) and producer.closed
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "closing the consumer failed: Static consumer fenced",
        "closing the producers failed: Failed to end transaction: Local: This instance has been "
        "fenced by a newer instance",
    ]
    assert any("stopped" in r.getMessage() for r in caplog.records)


def test_client_error_text_of_a_plain_error_is_its_message() -> None:
    assert clients.client_error_text(ValueError("bad")) == "bad"
