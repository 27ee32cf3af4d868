"""Loading `.avsc` files and pairing each event class with its schema."""

from __future__ import annotations

import dataclasses
import json
import operator
import types
import typing
from collections.abc import Callable
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
    names, values = _fields_of(type(event))
    return dict(zip(names, values(event), strict=True))


def _fields_of(cls: type) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """The field names of a dataclass and one call that reads all their values, per class."""
    found = _FIELDS.get(cls)
    if found is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        getter = operator.attrgetter(*names)
        values: Callable[[Any], tuple[Any, ...]] = (
            getter if len(names) > 1 else lambda event: (getter(event),)
        )
        found = _FIELDS[cls] = (names, values)
    return found


_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}


def constructor(cls: type) -> Callable[[dict[str, Any]], Any]:
    """How to build `cls` from a decoded record (keys already resolved to the reader schema),
    made once per class: a slotted dataclass is filled slot by slot, without
    the keyword-argument call of its __init__ (frozen dataclasses set each field through
    object.__setattr__). Any other class gets `cls(**record)`.

    Only for records whose fields are exactly the class's (what load_event_schemas checks): a
    missing field raises KeyError, where __init__ would raise TypeError.
    """
    fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
    slots = [getattr(cls, f.name, None) for f in fields]
    plain = (
        fields
        and all(isinstance(s, types.MemberDescriptorType) for s in slots)
        and all(f.init for f in fields)
        and not hasattr(cls, "__post_init__")
    )
    if not plain:
        return lambda record: cls(**record)
    setters = {f"_set{i}": slot.__set__ for i, slot in enumerate(slots)}  # type: ignore[union-attr]
    body = "".join(f"    _set{i}(o, r[{f.name!r}])\n" for i, f in enumerate(fields))
    source = f"def make(r):\n    o = _new(_cls)\n{body}    return o\n"
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **setters}
    exec(source, scope)  # noqa: S102 - generated from the dataclass's own field names
    return scope["make"]  # type: ignore[no-any-return]
