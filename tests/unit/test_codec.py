"""Codec round-trips and strict rejections, against an in-memory registry."""

from __future__ import annotations

import dataclasses
import io
import struct
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema

from choreo.exceptions import DecodeError, EncodeError, SchemaError, SchemaNotRegisteredError
from choreo.serde.codec import Codec, subject_for
from choreo.serde.schemas import load_event_schemas
from tests.support import toy
from tests.support.fake_registry import FakeRegistry
from tests.support.wire import claimed_type

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture()
def setup() -> tuple[Codec, FakeRegistry]:
    schemas = load_event_schemas(
        [toy.AddNumber, toy.NumberCounted, toy.SumDoubled], *toy.DOMAIN.schema_dirs
    )
    reg = FakeRegistry()
    for es in schemas.values():
        reg.register_schema(subject_for("t", es.name), Schema(es.text, "AVRO"))
    return Codec(reg, schemas.values()), reg  # type: ignore[arg-type]


def _event() -> toy.NumberCounted:
    return toy.NumberCounted("e1", "hub-1", T0, "c1", 3, 10)


def test_round_trip(setup: tuple[Codec, FakeRegistry]) -> None:
    codec, reg = setup
    data = codec.encode("t", _event())
    assert data[0] == 0
    assert codec.decode(data) == _event()
    assert claimed_type(reg, data) == "toy.counter.NumberCounted"


def test_workers_do_not_register(setup: tuple[Codec, FakeRegistry]) -> None:
    codec, _ = setup
    with pytest.raises(SchemaNotRegisteredError, match="choreo schemas register"):
        codec.encode("unregistered-topic", _event())


def test_strict_validation_before_producing(setup: tuple[Codec, FakeRegistry]) -> None:
    codec, _ = setup
    bad = dataclasses.replace(_event(), value="three")  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        codec.encode("t", bad)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: b"",  # empty
        lambda d: b"\x00\x00",  # shorter than the header
        lambda d: b"\x01" + d[1:],  # wrong magic byte
        lambda d: d[:5] + b"\xff" * 3,  # garbage body
        lambda d: d[:-3],  # truncated Avro
        lambda d: d + b"\x00junk",  # trailing bytes
        lambda d: d[:1] + struct.pack(">I", 9999) + d[5:],  # unknown schema id
    ],
    ids=["empty", "short", "magic", "garbage", "truncated", "trailing", "unknown-id"],
)
def test_strict_rejections(setup: tuple[Codec, FakeRegistry], mangle: object) -> None:
    codec, _ = setup
    data = codec.encode("t", _event())
    with pytest.raises(DecodeError):
        codec.decode(mangle(data))  # type: ignore[operator]


def test_schema_id_of_a_type_the_codec_does_not_know(setup: tuple[Codec, FakeRegistry]) -> None:
    codec, reg = setup
    other = {"type": "record", "name": "Other", "namespace": "x", "fields": [{"name": "a", "type": "int"}]}
    import json

    sid = reg.register_schema("t-x.Other", Schema(json.dumps(other), "AVRO"))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(other), {"a": 1})
    with pytest.raises(DecodeError, match="not an event type"):
        codec.decode(struct.pack(">bI", 0, sid) + body.getvalue())


def test_class_and_schema_drift_is_caught(tmp_path: Path) -> None:
    (tmp_path / "AddNumber.avsc").write_text(
        '{"type":"record","name":"AddNumber","namespace":"toy.counter","fields":['
        '{"name":"event_id","type":"string"},{"name":"hub","type":"string"},'
        '{"name":"value","type":"int"}]}'
    )
    with pytest.raises(SchemaError, match="differ"):
        load_event_schemas([toy.AddNumber], tmp_path)
