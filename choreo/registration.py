"""Registering the event schemas in the registry, one subject per (topic, event type)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from choreo.bootstrap import topic_classes
from choreo.codec import subject_for
from choreo.contract import Service
from choreo.exceptions import ConfigurationError, SchemaError
from choreo.schemas import EventSchema
from choreo.settings import Settings

COMPATIBILITY = "BACKWARD_TRANSITIVE"


@dataclass(frozen=True)
class Registered:
    subject: str
    schema_id: int


def register_all(
    registry: SchemaRegistryClient,
    settings: Settings,
    services: Iterable[Service],
    schemas: dict[str, EventSchema],
) -> list[Registered]:
    """Register every schema under its topic's subject and set BACKWARD_TRANSITIVE on it."""
    done = []
    for topic, classes in sorted(topic_classes(services).items()):
        for cls in classes:
            es = schemas[cls.SCHEMA]  # type: ignore[attr-defined]
            subject = subject_for(settings.topic(topic), es.name)
            try:
                registry.set_compatibility(subject_name=subject, level=COMPATIBILITY)
                schema_id = registry.register_schema(subject, Schema(es.text, "AVRO"))
            except SchemaRegistryError as e:
                if e.http_status_code == 409:
                    raise SchemaError(
                        f"{es.path} is not {COMPATIBILITY}-compatible with what {subject} "
                        f"holds: {e.error_message}"
                    ) from e
                raise ConfigurationError(f"registering {subject} failed: {e}") from e
            done.append(Registered(subject, schema_id))
    return done
