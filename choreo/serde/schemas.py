"""Loading `.avsc` files and pairing each event class with its schema."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from choreo.exceptions import SchemaError


@dataclass(frozen=True)
class EventSchema:
    """One event class, its Avro schema text and the parsed schema fastavro uses."""

    cls: type
    name: str
    text: str
    parsed: Any
    path: Path


def index_schema_files(*roots: Path) -> dict[str, Path]:
    """Full Avro name -> file, for every `.avsc` under the given folders."""
    found: dict[str, Path] = {}
    for root in roots:
        for path in sorted(root.rglob("*.avsc")):
            try:
                raw = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise SchemaError(f"{path}: not a readable JSON Avro schema ({e})") from e
            name = raw.get("name", "")
            full = name if "." in name else f"{raw.get('namespace', '')}.{name}"
            found[full] = path
    return found


def load_event_schemas(classes: list[type], *roots: Path) -> dict[str, EventSchema]:
    """Pair every class with the schema named by its `SCHEMA`; fail if one is missing or drifts."""
    files = index_schema_files(*roots)
    out: dict[str, EventSchema] = {}
    for cls in classes:
        name = cls.SCHEMA  # type: ignore[attr-defined]
        if name in out:
            continue
        if name not in files:
            raise SchemaError(f"no .avsc declares {name} (needed by {cls.__qualname__})")
        text = files[name].read_text()
        try:
            parsed = fastavro.parse_schema(json.loads(text))
        except Exception as e:  # fastavro raises several types for bad schemas
            raise SchemaError(f"{files[name]}: invalid Avro schema: {e}") from e
        check_class_matches_schema(cls, parsed)
        out[name] = EventSchema(cls, name, text, parsed, files[name])
    return out


def _nullable(avro_type: Any) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


def check_class_matches_schema(cls: type, parsed: Any) -> None:
    """Field names, order and nullability of a dataclass must equal its record schema's."""
    if not dataclasses.is_dataclass(cls):
        raise SchemaError(f"{cls.__qualname__} is not a dataclass")
    fields = dataclasses.fields(cls)
    class_names = [f.name for f in fields]
    schema_fields = parsed["fields"]
    schema_names = [f["name"] for f in schema_fields]
    if class_names != schema_names:
        raise SchemaError(
            f"{cls.__qualname__} fields {class_names} differ from schema "
            f"{parsed['name']} fields {schema_names}"
        )
    hints = typing.get_type_hints(cls)
    for f, sf in zip(fields, schema_fields, strict=True):
        hint = hints[f.name]
        optional = type(None) in typing.get_args(hint)
        if optional != _nullable(sf["type"]):
            raise SchemaError(
                f"{cls.__qualname__}.{f.name}: nullability differs from schema {parsed['name']}"
            )


def to_record(event: Any) -> dict[str, Any]:
    """A dataclass event as the dict fastavro writes (shallow: events are flat records)."""
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}


def from_record(cls: type, record: dict[str, Any]) -> Any:
    """Build the event class from a decoded record (keys already resolved to the reader schema)."""
    return cls(**record)
