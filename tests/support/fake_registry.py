"""An in-memory stand-in for SchemaRegistryClient, for unit tests of the codec only."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError


@dataclass
class _Registered:
    schema_id: int


class FakeRegistry:
    def __init__(self) -> None:
        self.by_id: dict[int, Schema] = {}
        self.ids: dict[tuple[str, str | None], int] = {}

    def register_schema(self, subject: str, schema: Schema) -> int:
        key = (subject, schema.schema_str)
        if key not in self.ids:
            self.ids[key] = len(self.by_id) + 1
            self.by_id[self.ids[key]] = schema
        return self.ids[key]

    def lookup_schema(self, subject: str, schema: Schema) -> _Registered:
        key = (subject, schema.schema_str)
        if key not in self.ids:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return _Registered(self.ids[key])

    def get_schema(self, schema_id: int) -> Schema:
        if schema_id not in self.by_id:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return self.by_id[schema_id]
