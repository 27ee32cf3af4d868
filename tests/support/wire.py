"""Reading the Confluent wire format's framing in tests, without the codec: which type a record claims."""

from __future__ import annotations

import json
import struct
from typing import Any

import fastavro

_HEADER = struct.Struct(">bI")  # magic byte 0, schema id


def claimed_type(registry: Any, data: bytes) -> str:
    """The full name of the schema whose id frames `data` (the body is not read)."""
    magic, schema_id = _HEADER.unpack_from(data)
    assert magic == 0, f"unknown magic byte {magic}"
    parsed: Any = fastavro.parse_schema(json.loads(registry.get_schema(schema_id).schema_str))
    return str(parsed["name"])
