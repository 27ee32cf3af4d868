"""Events to and from the Confluent wire format (magic byte, schema id, Avro body).

Schema ids come from the registry through confluent-kafka's SchemaRegistryClient. The Avro body
is written and read with fastavro directly rather than through AvroSerializer/AvroDeserializer:
those take one schema per instance and do not notice trailing bytes after the record, which we
must reject. `tests/integration/test_codec_registry.py` proves the bytes interoperate with
confluent-kafka's own serializer and deserializer in both directions.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro.read import SchemaResolutionError
from fastavro.validation import ValidationError

from choreo.exceptions import (
    DecodeError,
    EncodeError,
    RegistryUnavailableError,
    SchemaNotRegisteredError,
    UnreadableSchemaError,
)
from choreo.serde.schemas import EventSchema, constructor, to_record
from choreo.serde.validation import compile_validator
from choreo.settings import redact_url

_MAGIC = 0
_HEADER = struct.Struct(">bI")


def subject_for(topic: str, full_name: str) -> str:
    """TopicRecordNameStrategy: several event types share a topic, each with its own subject."""
    return f"{topic}-{full_name}"


@dataclass(frozen=True)
class _Reader:
    writer: Any
    reader: Any  # None when the writer's schema is the reader's: nothing to resolve
    cls: type
    name: str
    make: Callable[[dict[str, Any]], Any]  # the event from a decoded record


class Codec:
    """Encodes events for a topic and decodes records into event objects, strictly."""

    def __init__(self, registry: SchemaRegistryClient, schemas: Iterable[EventSchema]) -> None:
        self._registry = registry
        self._by_name = {s.name: s for s in schemas}
        self._ids: dict[tuple[str, str], int] = {}
        self._prefixes: dict[tuple[str, str], bytes] = {}  # magic byte and schema id, packed
        self._readers: dict[int, _Reader | None] = {}
        self._validators = {s.name: compile_validator(s.parsed) for s in self._by_name.values()}

    def reconnect(self, registry: SchemaRegistryClient) -> None:
        """Use a registry client of this process's own: a forked child must not share the
        parent's HTTP connections (ids already looked up stay cached)."""
        self._registry = registry

    # -- encoding -----------------------------------------------------------------------------

    def schema_id(self, topic: str, name: str) -> int:
        """The registered id of `name` under `topic`, looked up once; workers never register."""
        key = (topic, name)
        if key not in self._ids:
            es = self._by_name[name]
            try:
                registered = self._registry.lookup_schema(
                    subject_for(topic, name), Schema(es.text, "AVRO")
                )
            except SchemaRegistryError as e:
                if e.http_status_code == 404:
                    raise SchemaNotRegisteredError(
                        f"{name} is not registered for topic {topic}: run `choreo schemas register`"
                    ) from e
                raise RegistryUnavailableError(f"schema registry lookup failed: {e}") from e
            except Exception as e:  # connection errors come as requests/httpx exceptions
                # Their text is the HTTP library's: redacted, in case it quotes the URL's password.
                raise RegistryUnavailableError(f"schema registry unreachable: {redact_url(str(e))}") from e
            assert registered.schema_id is not None
            self._ids[key] = registered.schema_id
        return self._ids[key]

    def encode(self, topic: str, event: Any) -> bytes:
        name = type(event).SCHEMA
        es = self._by_name.get(name)
        if es is None:
            raise EncodeError(f"{name} has no schema loaded in this codec")
        record = to_record(event)
        try:
            self._validators[name](record)
        except ValidationError as e:
            raise EncodeError(f"{name} does not match its schema: {e}") from e
        prefix = self._prefixes.get((topic, name))
        if prefix is None:
            prefix = self._prefixes[(topic, name)] = _HEADER.pack(_MAGIC, self.schema_id(topic, name))
        out = io.BytesIO()
        out.write(prefix)
        fastavro.schemaless_writer(out, es.parsed, record)
        return out.getvalue()

    # -- decoding -----------------------------------------------------------------------------

    def _reader_for(self, schema_id: int) -> _Reader | None:
        if schema_id in self._readers:
            return self._readers[schema_id]
        try:
            registered = self._registry.get_schema(schema_id)
        except SchemaRegistryError as e:
            if e.http_status_code == 404:
                raise UnreadableSchemaError(f"unknown schema id {schema_id}") from e
            raise RegistryUnavailableError(f"schema registry lookup failed: {e}") from e
        except Exception as e:
            raise RegistryUnavailableError(f"schema registry unreachable: {redact_url(str(e))}") from e
        writer = fastavro.parse_schema(json.loads(registered.schema_str or "null"))
        name = writer.get("name", "") if isinstance(writer, dict) else ""
        es = self._by_name.get(name)
        # fastavro compares writer and reader schemas on every read (deeply, as they are two
        # equal dicts): say once here that there is nothing to resolve.
        reader = None if es is None else _Reader(
            writer, None if writer == es.parsed else es.parsed, es.cls, name, constructor(es.cls)
        )
        self._readers[schema_id] = reader
        return reader

    def decode(self, data: bytes | None) -> Any:
        """The event in `data`; DecodeError for anything that is not exactly one known record
        (UnreadableSchemaError when the bytes may be fine but name a schema this codec cannot read)."""
        if data is None or len(data) < _HEADER.size:
            raise DecodeError("record too short for the Confluent wire format")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise DecodeError(f"unknown magic byte {magic}")
        reader = self._readers.get(schema_id) or self._reader_for(schema_id)
        if reader is None:
            raise UnreadableSchemaError(f"schema id {schema_id} is not an event type this codec knows")
        body = io.BytesIO(data)
        body.seek(_HEADER.size)
        try:
            record = fastavro.schemaless_reader(body, reader.writer, reader.reader)
        except SchemaResolutionError as e:  # another version's schema of the type, not junk
            raise UnreadableSchemaError(
                f"{reader.name} was written with a schema that does not resolve to this codec's: {e}"
            ) from e
        except Exception as e:  # truncated bodies raise EOFError, StopIteration, ValueError...
            raise DecodeError(f"malformed Avro body for {reader.name}: {e!r}") from e
        if body.tell() != len(data):
            raise DecodeError(
                f"{len(data) - body.tell()} trailing bytes after a {reader.name} record"
            )
        try:
            return reader.make(record)  # type: ignore[arg-type]
        except (TypeError, KeyError) as e:
            raise DecodeError(f"{reader.name} record does not fit {reader.cls.__name__}: {e}") from e
