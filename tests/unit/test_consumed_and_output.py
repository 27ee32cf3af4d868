"""A consumed record is read once at intake into a `Consumed` value; an output waits a bounded
time for room in a full producer queue, then fails its batch."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Message

from choreo.kafka.messages import Consumed
from choreo.runtime.outputs import TransactionalOutput
from choreo.runtime.watchdog import NoWatchdog


def test_a_consumed_record_carries_its_fields_with_null_headers_as_empty_bytes() -> None:
    msg = Message(topic="p.orders", partition=3, offset=41, key=b"hub-1", value=b"v",
                  headers=[("order_id", b"o-1"), ("empty", None), ("order_id", b"o-2")])
    record = Consumed.of(msg)
    assert record.coordinates == ("p.orders", 3, 41)
    assert record.key == b"hub-1" and record.value == b"v"
    assert record.header("empty") == b""
    # Repeated: the last one, as every tool that reads the headers into a dict sees it.
    assert record.header("order_id") == b"o-2"
    assert record.header("absent") is None


def test_an_error_report_of_the_consumer_becomes_a_record_with_its_error() -> None:
    error = KafkaError(KafkaError._PARTITION_EOF)
    record = Consumed.of(Message(topic="p.orders", partition=1, offset=9, error=error))
    assert record.error is not None and record.error.code() == KafkaError._PARTITION_EOF
    assert record.headers == []


class _FullQueue:
    """A producer whose local queue is full `full_for` times, then takes the record."""

    def __init__(self, full_for: int) -> None:
        self.full_for = full_for
        self.polls = 0
        self.sent: list[dict[str, Any]] = []

    def produce(self, topic: str, **record: Any) -> None:
        if self.full_for > 0:
            self.full_for -= 1
            raise BufferError("Local: Queue full")
        self.sent.append({"topic": topic, **record})

    def poll(self, timeout_s: float) -> int:
        self.polls += 1
        return 0


def test_an_output_waits_for_room_while_deliveries_drain() -> None:
    producer = _FullQueue(full_for=3)
    output = TransactionalOutput(producer, NoWatchdog(), wait_s=5.0)  # type: ignore[arg-type]
    output.produce("p.own", 2, b"k", b"v", [], None)
    assert [r["topic"] for r in producer.sent] == ["p.own"] and producer.polls > 0


def test_a_queue_that_never_drains_fails_the_batch_instead_of_waiting_for_ever() -> None:
    producer = _FullQueue(full_for=10**9)
    output = TransactionalOutput(producer, NoWatchdog(), wait_s=0.2)  # type: ignore[arg-type]
    with pytest.raises(KafkaException) as raised:
        output.produce("p.own", 2, b"k", b"v", [], None)
    err = raised.value.args[0]
    assert err.code() == KafkaError._QUEUE_FULL and "stayed full" in err.str()
    assert producer.sent == []
