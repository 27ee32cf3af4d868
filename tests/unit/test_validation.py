"""The compiled validator rejects exactly what fastavro's strict validate rejects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from fastavro.validation import ValidationError, validate
from hypothesis import given
from hypothesis import strategies as st

from choreo.serde.validation import compile_validator

SCHEMA = fastavro.parse_schema({
    "type": "record", "name": "R", "namespace": "t",
    "fields": [
        {"name": "s", "type": "string"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "b", "type": "boolean"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "opt", "type": ["null", "string"], "default": None},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
    ],
})
GOOD: dict[str, Any] = {
    "s": "x", "i": 1, "l": 2**40, "b": True, "at": datetime(2026, 1, 1, tzinfo=UTC),
    "opt": None, "e": "A",
}
check = compile_validator(SCHEMA)


def _fastavro_ok(record: dict[str, Any]) -> bool:
    try:
        return bool(validate(record, SCHEMA, raise_errors=True, strict=True))
    except (ValidationError, ValueError, TypeError, AttributeError):
        return False


def _ours_ok(record: dict[str, Any]) -> bool:
    try:
        check(record)
        return True
    except ValidationError:
        return False


@pytest.mark.parametrize(
    "change",
    [{}, {"opt": "y"}, {"i": 2**31}, {"i": "1"}, {"l": 1.5}, {"b": 1}, {"e": "C"}, {"s": None},
     {"at": 1_700_000_000_000}],
)
def test_agrees_with_fastavro_on_known_cases(change: dict[str, Any]) -> None:
    record = {**GOOD, **change}
    assert _ours_ok(record) == _fastavro_ok(record)


def test_missing_and_extra_fields_are_rejected() -> None:
    record = dict(GOOD)
    del record["s"]
    assert not _ours_ok(record)
    assert not _ours_ok({**GOOD, "extra": 1})  # stricter than fastavro, which ignores extras


values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3), st.floats(),
                   st.sampled_from(["A", "B", "C"]))


@given(st.fixed_dictionaries({k: values for k in GOOD if k != "at"}))
def test_never_accepts_what_fastavro_rejects(fields: dict[str, Any]) -> None:
    record = {**fields, "at": GOOD["at"]}
    if _ours_ok(record):
        assert _fastavro_ok(record), record
