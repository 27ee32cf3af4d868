"""Strict validation of an outgoing record against its schema, compiled once per schema.

fastavro's `validate()` is correct but slow on the hot path: for a union such as
["null", "string"] holding a string it builds (and JSON-formats) an error for the null branch
first. The saga's records are flat, so each field gets a small compiled check; any type this
module does not compile (nested records, arrays, maps, fixed, ...) falls back to fastavro for
the whole record, so nothing is validated less strictly than fastavro would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastavro.validation import ValidationError, validate

Check = Callable[[Any], bool]
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _integer(low: int, high: int) -> Check:
    return lambda v: type(v) is int and low <= v <= high


def _timestamp(v: Any) -> bool:
    # fastavro writes aware datetimes and plain epoch-millis ints for timestamp-millis.
    return (isinstance(v, datetime) and v.tzinfo is not None) or _integer(*_INT64)(v)


def _compile(avro_type: Any) -> Check | None:
    """A check for one field type, or None when this module does not handle the type."""
    if isinstance(avro_type, list):
        branches = [_compile(t) for t in avro_type]
        if any(b is None for b in branches):
            return None
        checks = [b for b in branches if b is not None]
        if len(checks) == 2 and avro_type[0] == "null":  # the usual optional field, unrolled
            other = checks[1]
            return lambda v: v is None or other(v)
        return lambda v: any(c(v) for c in checks)
    if isinstance(avro_type, dict):
        kind, logical = avro_type.get("type"), avro_type.get("logicalType")
        if kind == "long" and logical == "timestamp-millis":
            return _timestamp
        if kind == "enum":
            symbols = frozenset(avro_type["symbols"])
            return lambda v: v in symbols
        if logical is None and isinstance(kind, str):
            return _compile(kind)
        return None
    return {
        "null": lambda v: v is None,
        "string": lambda v: type(v) is str,
        "boolean": lambda v: type(v) is bool,
        "int": _integer(*_INT32),
        "long": _integer(*_INT64),
        "float": lambda v: type(v) in (int, float),
        "double": lambda v: type(v) in (int, float),
        "bytes": lambda v: type(v) is bytes,
    }.get(avro_type)


def compile_validator(parsed_schema: Any) -> Callable[[dict[str, Any]], None]:
    """A function that raises ValidationError unless `record` matches the record schema exactly."""
    fields = [(f["name"], _compile(f["type"])) for f in parsed_schema["fields"]]
    names = frozenset(name for name, _ in fields)
    if any(check is None for _, check in fields):
        return lambda record: _fastavro_strict(record, parsed_schema)

    def check(record: dict[str, Any]) -> None:
        if record.keys() != names:
            raise ValidationError(f"fields {sorted(record)} differ from {sorted(names)}")
        for name, field_check in fields:
            if not field_check(record[name]):  # type: ignore[misc]
                raise ValidationError(f"{parsed_schema['name']}.{name}: {record[name]!r} is invalid")

    return check


def _fastavro_strict(record: dict[str, Any], parsed_schema: Any) -> None:
    validate(record, parsed_schema, raise_errors=True, strict=True)
