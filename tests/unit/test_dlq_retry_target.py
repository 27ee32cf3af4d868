"""`dlq retry` sends a letter back to the service that dead-lettered it, never to its source
topic: where a letter goes, which letters cannot go back, and how the worker reads a record from
its retry topic."""

from __future__ import annotations

import pytest
from confluent_kafka import Message

from choreo.exceptions import DecodeError
from choreo.kafka.messages import Consumed
from choreo.kafka.partitioner import partition_for
from choreo.kafka.topics import logical_topics
from choreo.ops.dlq_retry import DeadLetter, NotRetryableError, retry_target
from choreo.ops.log_reader import LogRecord
from choreo.runtime.retried import RETRIED_AS, retried_input_topic
from choreo.settings import Settings
from consumers.domain import DOMAIN

SETTINGS = Settings(topic_prefix="p.")
PACKAGING = next(s for s in DOMAIN.services if s.name == "packaging")
PARTITIONS = 6
HUB = b"hub-north"
HOME = partition_for(HUB, PARTITIONS)  # hub-north's partition among 6


def _letter(source_topic: str, partition: int = HOME, extra: dict[str, bytes] | None = None,
            key: bytes | None = HUB) -> DeadLetter:
    headers = {"dlq.source.topic": source_topic.encode(), "dlq.source.partition": str(partition).encode(),
               "dlq.source.offset": b"41", "dlq.error.class": b"DecodeError", **(extra or {})}
    return DeadLetter(LogRecord("p.packaging.dlq", partition, 17, 0, key, b"junk", headers),
                      retried=False)


def test_a_letter_from_an_event_topic_goes_to_the_services_retry_topic_on_its_partition() -> None:
    assert "orders" in PACKAGING.inputs  # an event topic that other services read too
    target = retry_target(SETTINGS, PACKAGING, _letter("p.orders"), PARTITIONS)
    assert (target.topic, target.partition, target.input_topic) == ("p.packaging.retry", HOME, "orders")


def test_a_misrouted_letter_goes_to_its_keys_partition_so_the_worker_can_decide_it() -> None:
    # A PlaceOrder from librdkafka's default partitioner: on another partition than its
    # key's, dead-lettered there; sent back to that partition it would be dead-lettered for ever.
    elsewhere = (HOME + 1) % PARTITIONS
    target = retry_target(SETTINGS, PACKAGING, _letter("p.orders", partition=elsewhere), PARTITIONS)
    assert target.partition == HOME


def test_a_letter_without_a_key_cannot_be_retried() -> None:
    with pytest.raises(NotRetryableError) as refused:
        retry_target(SETTINGS, PACKAGING, _letter("p.orders", key=None), PARTITIONS)
    assert "has no key" in str(refused.value) and "cannot be retried" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_letter_that_failed_again_after_a_retry_keeps_the_input_it_is_decided_as() -> None:
    again = _letter("p.packaging.retry", extra={RETRIED_AS: b"packaging.commands"})
    target = retry_target(SETTINGS, PACKAGING, again, PARTITIONS)
    assert (target.topic, target.partition, target.input_topic) == ("p.packaging.retry", HOME,
                                                                     "packaging.commands")


@pytest.mark.parametrize(("source", "extra", "why"), [
    ("p.packaging", {}, "own topic"),  # a copy a restore made of a record on its own topic
    ("p.drones.commands", {}, "did not come from an input topic of packaging"),
    ("q.orders", {}, "did not come from an input topic"),  # another prefix's topic
    ("p.packaging.retry", {RETRIED_AS: b"drones.commands"}, "did not come from an input topic"),
    ("p.orders", {"dlq.truncated": b"true"}, "truncated copy"),
])
def test_letters_that_cannot_go_back_are_one_sentence(source: str, extra: dict[str, bytes], why: str) -> None:
    with pytest.raises(NotRetryableError) as refused:
        retry_target(SETTINGS, PACKAGING, _letter(source, extra=extra), PARTITIONS)
    assert why in str(refused.value) and "cannot be retried" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_every_service_has_a_retry_topic_that_topics_create_makes() -> None:
    names = logical_topics(DOMAIN.services)
    assert {f"{s.name}.retry" for s in DOMAIN.services} <= set(names)
    assert all(s.retry_topic not in s.inputs for s in DOMAIN.services)


def _retried(named: bytes | None) -> Consumed:
    headers: list[tuple[str, str | bytes | None]] = [] if named is None else [(RETRIED_AS, named)]
    return Consumed.of(Message(topic="p.packaging.retry", partition=3, offset=0, headers=headers, value=b"v"))


def test_the_worker_decides_a_retried_record_as_from_the_input_it_names() -> None:
    # (A record from an input is what it is, whatever its headers claim: test_record_processing.)
    assert retried_input_topic(PACKAGING, _retried(b"orders")) == "orders"


@pytest.mark.parametrize("named", [None, b"drones.commands", b"packaging", b"packaging.retry"])
def test_a_retried_record_that_names_no_input_is_dead_lettered(named: bytes | None) -> None:
    with pytest.raises(DecodeError, match=RETRIED_AS):
        retried_input_topic(PACKAGING, _retried(named))
