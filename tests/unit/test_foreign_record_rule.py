"""Which records on a service's own topic replay skips as not the service's, what it does with
them, and which partitions `choreo rebuild --partition` accepts; no broker needed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message
from prometheus_client import CollectorRegistry, Counter

from choreo.exceptions import ConfigurationError, DecodeError, RegistryUnavailableError
from choreo.ops import rebuild
from choreo.runtime.foreign_records import (
    NOT_EMITTED,
    UNDECODABLE,
    DeadLetterCopyError,
    ForeignRecordError,
    SkippedRecords,
    own_event,
)
from choreo.runtime.metrics import WorkerMetrics
from choreo.settings import Settings
from tests.support import toy

COUNTED = toy.NumberCounted("e-1", "hub-0", datetime(2026, 1, 1, tzinfo=UTC), "c-1", 2, 2)
DOUBLED = toy.SumDoubled("e-2", "hub-0", datetime(2026, 1, 1, tzinfo=UTC), None, 4)


def _decoding_to(result: Any) -> Callable[[bytes | None], Any]:
    def decode(_value: bytes | None) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    return decode


def test_an_own_event_is_applied() -> None:
    assert own_event(_decoding_to(COUNTED), toy.COUNTER.emits, b"...") is COUNTED


@pytest.mark.parametrize(("decoded", "reason", "says"), [
    (DecodeError("malformed Avro body for NumberCounted"), UNDECODABLE, "cannot be decoded: malformed"),
    (DecodeError("unknown magic byte 106"), UNDECODABLE, "unknown magic byte"),
    (DOUBLED, NOT_EMITTED, "toy.doubler.SumDoubled is not an event type the service emits"),
])
def test_a_record_the_service_cannot_have_written_is_foreign(
    decoded: Any, reason: str, says: str,
) -> None:
    with pytest.raises(ForeignRecordError) as caught:
        own_event(_decoding_to(decoded), toy.COUNTER.emits, b"...")
    assert caught.value.reason == reason
    assert says in str(caught.value)


def test_a_registry_that_does_not_answer_is_no_reason_to_skip() -> None:
    with pytest.raises(RegistryUnavailableError):
        own_event(_decoding_to(RegistryUnavailableError("unreachable")), toy.COUNTER.emits, b"...")


class _Producer:
    """Records what is produced; delivers each with `error` (None: delivered)."""

    def __init__(self, error: KafkaError | None = None) -> None:
        self.error = error
        self.produced: list[dict[str, Any]] = []
        self._reports: list[Callable[[], None]] = []

    def produce(self, topic: str, **kw: Any) -> None:
        self.produced.append({"topic": topic, **kw})
        report = kw["on_delivery"]
        self._reports.append(lambda: report(self.error, None))

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        for report in self._reports:
            report()
        self._reports.clear()
        return 0


def _junk(partition: int = 2, offset: int = 41) -> Message:
    return Message(topic="p.counter", partition=partition, offset=offset, key=b"hub-0",
                   value=b"junk", headers=[("event_type", b"Nope")])


def _foreign() -> ForeignRecordError:
    return ForeignRecordError("cannot be decoded: unknown magic byte 106", UNDECODABLE)


def test_a_skipped_record_is_logged_copied_to_the_dlq_on_its_partition_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = _Producer()
    metrics = WorkerMetrics("counter")
    skipped = SkippedRecords("counter", "p.counter.dlq", lambda: producer, metrics.restore_skipped)  # type: ignore[arg-type,return-value]
    with caplog.at_level("ERROR", "choreo.runtime.restore"):
        skipped.skip(_junk(), _foreign())
    skipped.flush()

    [line] = caplog.records
    assert line.levelname == "ERROR"
    assert "skipping p.counter[2]@41 while restoring counter" in line.getMessage()
    assert "unknown magic byte 106" in line.getMessage()
    [copy] = producer.produced
    assert (copy["topic"], copy["partition"], copy["key"], copy["value"]) == (
        "p.counter.dlq", 2, b"hub-0", b"junk",
    )
    headers = dict(copy["headers"])
    assert headers["dlq.error.class"] == b"ForeignRecordError"
    assert (headers["dlq.source.topic"], headers["dlq.source.offset"]) == (b"p.counter", b"41")
    assert headers["event_type"] == b"Nope"  # the original headers travel with the copy
    assert metrics.registry.get_sample_value(
        "choreo_restore_skipped_records_total",
        {"service": "counter", "partition": "2", "reason": UNDECODABLE},
    ) == 1
    assert skipped.counts == {2: 1}


def test_a_copy_that_does_not_reach_the_dlq_fails_the_flush() -> None:
    producer = _Producer(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not allowed"))
    skipped = SkippedRecords("counter", "p.counter.dlq", lambda: producer)  # type: ignore[arg-type,return-value]
    skipped.skip(_junk(), _foreign())
    with pytest.raises(DeadLetterCopyError, match="could not copy a skipped record of counter"):
        skipped.flush()


def test_without_a_dlq_nothing_is_written_but_the_record_is_still_counted() -> None:
    made: list[object] = []
    counter = Counter("skips", "", ["service", "partition", "reason"], registry=CollectorRegistry())
    skipped = SkippedRecords("counter", None, lambda: made.append(1), counter)  # type: ignore[arg-type,func-returns-value,return-value]
    skipped.skip(_junk(partition=0), _foreign())
    skipped.flush()
    assert made == []  # rebuild --verify: not even a producer
    assert skipped.counts == {0: 1}


@pytest.mark.parametrize("wanted", [[99], [-1], [0, 4]])
def test_rebuild_refuses_a_partition_the_topic_does_not_have(
    monkeypatch: pytest.MonkeyPatch, wanted: list[int],
) -> None:
    monkeypatch.setattr(rebuild, "partitions_of", lambda _settings, _service: [0, 1, 2, 3])
    settings = Settings(topic_prefix="p.")
    with pytest.raises(ConfigurationError) as caught:
        rebuild.checked_partitions(settings, toy.COUNTER, wanted)
    bad = [p for p in wanted if p not in range(4)]
    assert str(caught.value) == (
        f"p.counter has no partition {', '.join(map(str, bad))}: its partitions are 0 to 3"
    )


def test_rebuild_takes_every_partition_or_the_ones_named_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rebuild, "partitions_of", lambda _settings, _service: [0, 1, 2, 3])
    settings = Settings(topic_prefix="p.")
    assert rebuild.checked_partitions(settings, toy.COUNTER, None) == [0, 1, 2, 3]
    assert rebuild.checked_partitions(settings, toy.COUNTER, [3, 1, 3]) == [1, 3]
