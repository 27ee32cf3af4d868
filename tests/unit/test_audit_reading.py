"""What the audit does with what it reads (producers/audit_log.py), without a broker: a record it
cannot take in stops it unless a service dead-lettered it, dead letters and misrouted records are
counted as refused, a registry that does not answer is one sentence in seconds, progress is shown."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from choreo.exceptions import DecodeError, RegistryUnavailableError
from choreo.kafka.partitioner import partition_for
from choreo.ops import log_reader
from choreo.ops.log_reader import LogRecord
from choreo.settings import Settings
from consumers.orders.events import OrderPlaced, PlaceOrder
from consumers.orders.service import SERVICE as ORDERS
from consumers.packaging.service import SERVICE as PACKAGING
from producers.audit_log import AuditIncompleteError, Progress, account, check_registry
from tests.support.records import record

PARTITIONS = 4
HUB = b"hub-north"
HOME = partition_for(HUB, PARTITIONS)


def _own(event: Any = None, offset: int = 0, error: str | None = None, partition: int = HOME,
         key: bytes | None = HUB) -> tuple[Any, str, LogRecord, int]:
    rec = LogRecord("p.orders", partition, offset, 0, key, b"", {}, event, error)
    return ORDERS, "orders", rec, PARTITIONS


def _letter(source: tuple[str, int, int], error_class: str = "DecodeError") -> tuple[Any, LogRecord]:
    topic, partition, offset = source
    headers = {"dlq.error.class": error_class.encode(), "dlq.source.topic": topic.encode(),
               "dlq.source.partition": str(partition).encode(), "dlq.source.offset": str(offset).encode()}
    return PACKAGING, LogRecord("p.packaging.dlq", 0, 0, 0, HUB, b"\x00junk", headers)


def _placed() -> OrderPlaced:
    return record(OrderPlaced, sku="SKU-0001", quantity=1, address="a")


def test_an_undecodable_record_no_service_dead_lettered_stops_the_audit_with_a_count() -> None:
    log = account([_own(_placed()), _own(offset=1, error="malformed Avro body")], [], [])
    assert len(log.events) == 1 and len(log.unread) == 1
    with pytest.raises(AuditIncompleteError) as raised:
        log.require_complete()
    sentence = str(raised.value)
    assert "could not read 1 record(s)" in sentence
    assert f"p.orders[{HOME}]@1 (malformed Avro body)" in sentence and "\n" not in sentence


def test_an_undecodable_record_a_service_dead_lettered_is_refused_not_unread() -> None:
    log = account([_own(_placed()), _own(offset=1, error="malformed Avro body")], [],
                  [_letter(("p.orders", HOME, 1))])
    log.require_complete()  # accounted for: the services never acted on it either
    assert log.unread == [] and log.refusals.junk_on_own_topics == {"orders": 1}
    assert log.refusals.dead_letters == {("packaging", "DecodeError"): 1}


def test_a_dead_letter_of_another_record_does_not_account_for_it() -> None:
    log = account([_own(offset=1, error="bad")], [], [_letter(("p.orders", HOME, 2))])
    with pytest.raises(AuditIncompleteError):
        log.require_complete()


def test_a_type_the_service_does_not_emit_on_its_own_topic_is_not_folded_into_the_audit() -> None:
    command = record(PlaceOrder, sku="SKU-0001", quantity=1, address="a")
    log = account([_own(command)], [], [])
    assert log.events == []
    assert "a PlaceOrder, which orders does not emit" in log.unread[0].reason


def test_misrouted_and_keyless_records_are_counted_with_the_expected_partition() -> None:
    elsewhere = (HOME + 1) % PARTITIONS
    command = LogRecord("p.orders.commands", elsewhere, 3, 0, HUB, b"", {})
    keyless = LogRecord("p.orders.commands", 0, 4, 0, None, b"", {})
    home = LogRecord("p.orders.commands", HOME, 5, 0, HUB, b"", {})
    log = account([_own(_placed(), partition=elsewhere)],
                  [("orders.commands", r, PARTITIONS) for r in (command, keyless, home)], [])
    assert log.refusals.misrouted == {"orders": 1, "orders.commands": 2}
    assert f"key 'hub-north' belongs on partition {HOME}" in log.refusals.misrouted_examples[1]
    assert "has no key" in log.refusals.misrouted_examples[2]
    log.require_complete()  # refused records are reported, they do not stop the audit
    assert len(log.events) == 1


def test_progress_names_records_read_per_topic_every_few_seconds_only() -> None:
    now = [0.0]
    said: list[str] = []
    progress = Progress(said.append, every_s=3.0, clock=lambda: now[0])
    for _ in range(5):
        progress.tick("orders")
    assert said == []
    now[0] = 3.5
    progress.tick("packaging")
    assert said == ["audit: read 6 records so far (orders 5, packaging 1)"]
    now[0] = 4.0
    progress.tick("packaging")
    assert len(said) == 1


class _FakeMessage:
    def __init__(self) -> None:
        self._value = b"\x00\x00\x00\x00\x07body"

    def headers(self) -> list[tuple[str, bytes]]:
        return []

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return HUB

    def topic(self) -> str:
        return "p.orders"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 9

    def timestamp(self) -> tuple[int, int]:
        return 1, 0


class _Codec:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def decode(self, _data: bytes) -> Any:
        raise self.error


def test_a_registry_that_does_not_answer_stops_the_reading_instead_of_marking_records_undecodable() -> None:
    with pytest.raises(RegistryUnavailableError):
        log_reader._record(_FakeMessage(), _Codec(RegistryUnavailableError("schema registry unreachable")))  # type: ignore[arg-type]
    junk = log_reader._record(_FakeMessage(), _Codec(DecodeError("malformed Avro body")))  # type: ignore[arg-type]
    assert junk.event is None and junk.decode_error == "malformed Avro body"


@pytest.fixture()
def dead_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens (bound, never listening, so no one else takes it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_a_silent_registry_is_one_sentence_in_seconds_without_its_password(dead_port: int) -> None:
    url = f"http://audit:s3cret@127.0.0.1:{dead_port}/apis/ccompat/v7"
    settings = Settings(bootstrap_servers="127.0.0.1:9", schema_registry_url=url)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError) as raised:
        check_registry(settings)
    assert time.monotonic() - started < 15
    sentence = str(raised.value)
    assert f"127.0.0.1:{dead_port}" in sentence and "did not run" in sentence
    assert "s3cret" not in sentence and "\n" not in sentence
