"""Every event dataclass matches its .avsc: names, order, types, nullability, docs."""

from __future__ import annotations

import dataclasses
import io
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import load_schema

from harness.paths import SCHEMAS
from tests.support.reference import SERVICE_NAMES, all_event_types

AVRO_TO_PY = {"string": str, "int": int, "long": int, "boolean": bool}
SAMPLE = {str: "x", int: 7, bool: True, datetime: datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)}
ORDERLESS = {
    "AddStock",
    "StockAdded",
    "StockAddRejected",
    "RegisterDrone",
    "DroneRegistered",
    "DroneRegistrationRejected",
}


def _schema_path(cls: type) -> Path:
    _, service, name = cls.SCHEMA.split(".")  # type: ignore[attr-defined]
    return SCHEMAS / service / f"{name}.avsc"


def _expected_py_type(avro_type: object) -> object:
    if isinstance(avro_type, list):
        assert avro_type[0] == "null" and len(avro_type) == 2, "only [null, T] unions are used"
        return _expected_py_type(avro_type[1]) | None  # type: ignore[operator]
    if isinstance(avro_type, dict) and avro_type.get("type") == "enum":
        return str  # a symbol
    if isinstance(avro_type, dict):
        assert avro_type == {"type": "long", "logicalType": "timestamp-millis"}
        return datetime
    return AVRO_TO_PY[str(avro_type)]


@pytest.mark.parametrize("cls", all_event_types(), ids=lambda c: c.__name__)
def test_dataclass_matches_its_schema(cls: type) -> None:
    raw: dict[str, Any] = typing.cast(dict[str, Any], load_schema(str(_schema_path(cls)), _write_hint=False))
    assert raw["name"] == cls.SCHEMA  # type: ignore[attr-defined]
    assert raw.get("doc"), "the record needs a doc"
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    assert fields == [f["name"] for f in raw["fields"]]
    for f in raw["fields"]:
        assert f.get("doc"), f"{cls.__name__}.{f['name']} needs a doc"
        assert hints[f["name"]] == _expected_py_type(f["type"]), f["name"]
    common = ["event_id", "hub", "occurred_at", "causation_id"]
    if cls.__name__ not in ORDERLESS:
        common.insert(1, "order_id")
    assert fields[: len(common)] == common


@pytest.mark.parametrize("cls", all_event_types(), ids=lambda c: c.__name__)
def test_a_sample_round_trips_through_avro(cls: type) -> None:
    raw = typing.cast(dict[str, Any], load_schema(str(_schema_path(cls)), _write_hint=False))
    schema = fastavro.parse_schema(raw)
    hints = typing.get_type_hints(cls)
    # An enum field takes one of its symbols, not any string.
    symbols = {f["name"]: f["type"]["symbols"][-1] for f in raw["fields"]
               if isinstance(f["type"], dict) and f["type"].get("type") == "enum"}
    values = {
        name: symbols[name] if name in symbols
        else SAMPLE[next(t for t in typing.get_args(h) if t is not type(None))]
        if isinstance(h, types.UnionType)
        else SAMPLE[h]
        for name, h in hints.items()
        if name != "SCHEMA"
    }
    event = cls(**values)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, dataclasses.asdict(event))
    buf.seek(0)
    decoded = typing.cast(dict[str, Any], fastavro.schemaless_reader(buf, schema, None))
    assert cls(**decoded) == event


def test_every_schema_file_has_a_dataclass() -> None:
    files = {p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.glob("*/*.avsc")}
    assert files == {_schema_path(c).relative_to(SCHEMAS).as_posix() for c in all_event_types()}
    assert {p.name for p in SCHEMAS.iterdir() if p.is_dir()} == set(SERVICE_NAMES)
