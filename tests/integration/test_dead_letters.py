"""Poison records go to the DLQ with their headers; the records around them are processed."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from harness.processes import wait_until
from tests.support import toy as toy_services
from tests.support.toy_pipeline import ToyPipeline

pytestmark = pytest.mark.integration


def test_poison_records_are_dead_lettered_and_the_worker_carries_on(toy: ToyPipeline) -> None:
    topic = toy.topic("counter.commands")
    good = toy.codec.encode(topic, toy_cmd())
    # A record of a type the codec knows but `counter` does not subscribe to on this topic.
    doubled = toy.codec.encode(
        toy.topic("doubler"),
        toy_services.SumDoubled("x", "hub-0", datetime.now(UTC), None, 2),
    )
    sid = toy.codec.schema_id(toy.topic("counter.commands"), "toy.counter.AddNumber")
    poison = {
        "random bytes": b"\x13\x37 not avro at all",
        "truncated avro": good[:-4],
        "unknown schema id": good[:1] + struct.pack(">I", 987654) + good[5:],
        "trailing garbage": good + b"\xde\xad",
        "unsubscribed type": doubled,
    }
    assert sid > 0
    toy.produce_numbers(20)
    for value in poison.values():
        toy.produce_raw(value)
    toy.produce_numbers(20)
    worker = toy.start("counter", "a")
    wait_until(lambda: len(toy.counted()) >= 40, 120, "the good records processed")
    wait_until(lambda: len(toy.dead_letters()) >= len(poison), 60, "the poison dead-lettered")
    assert worker.alive(), "the worker must not crash on poison"
    assert worker.stop() == 0
    assert len(toy.counted()) == 40
    letters = toy.dead_letters()
    assert len(letters) == len(poison)
    assert sorted(r.value for r in letters) == sorted(poison.values())  # type: ignore[type-var]
    for r in letters:
        assert r.headers["dlq.source.topic"] == topic.encode()
        assert int(r.headers["dlq.source.offset"]) >= 0
        assert r.headers["dlq.source.partition"] == str(r.partition).encode()
        assert r.headers["dlq.error.class"] and r.headers["dlq.error.message"]
    classes = {r.headers["dlq.error.class"] for r in letters}
    # The unknown schema id is the kind of DecodeError that names a schema it cannot read now.
    assert classes == {b"DecodeError", b"UnreadableSchemaError"}
    assert worker.log().count(" started: inputs=") == 1, "one start, never a crash-restart"


def toy_cmd() -> toy_services.AddNumber:
    return toy_services.AddNumber("e", "hub-0", datetime.now(UTC), 1)
