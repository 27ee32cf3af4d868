"""Registering the event schemas in the registry, one subject per (topic, event type)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from choreo.bootstrap import topic_classes
from choreo.contract import Service
from choreo.exceptions import ConfigurationError, RegistryUnavailableError, SchemaError
from choreo.optional_imports import installed_classes
from choreo.serde.codec import subject_for
from choreo.serde.schemas import EventSchema
from choreo.settings import Settings, redact_url

# Every subject, events and commands alike: an old reader meets new records during a rollout
# (forward) and new code reads every old record in a rebuild or a replay (backward), for as long
# as the topics keep them (transitive). docs/adr/0009-schema-compatibility.md.
COMPATIBILITY = "FULL_TRANSITIVE"


# The registry client speaks httpx2 when it is installed, else httpx: either may raise.
_HTTP_ERRORS = installed_classes(("httpx2", "httpx"), "HTTPError", "InvalidURL")


@dataclass(frozen=True)
class Registered:
    subject: str
    schema_id: int


def subjects(
    settings: Settings, services: Iterable[Service], schemas: dict[str, EventSchema],
) -> Iterator[tuple[str, EventSchema]]:
    """(subject, schema) of every event type on every topic of `services`, in topic order."""
    for topic, classes in sorted(topic_classes(services).items()):
        for cls in classes:
            es = schemas[cls.SCHEMA]  # type: ignore[attr-defined]
            yield subject_for(settings.topic(topic), es.name), es


@contextmanager
def answering_registry(settings: Settings) -> Iterator[None]:
    """Turns the HTTP library's errors into RegistryUnavailableError, in one sentence."""
    try:
        yield
    except _HTTP_ERRORS as e:
        # redact_url on the cause too: its text is the HTTP library's, not ours to trust.
        raise RegistryUnavailableError(
            f"the schema registry at {redact_url(settings.schema_registry_url)} did not answer "
            f"({type(e).__name__}: {redact_url(str(e)) or 'no detail'}): is it running? "
            "`choreo stack status` shows the local one; SCHEMA_REGISTRY_URL names another"
        ) from e


def register_all(
    registry: SchemaRegistryClient,
    settings: Settings,
    services: Iterable[Service],
    schemas: dict[str, EventSchema],
) -> list[Registered]:
    """Register every schema under its topic's subject and set COMPATIBILITY on it."""
    done = []
    for subject, es in subjects(settings, services, schemas):
        try:
            with answering_registry(settings):
                registry.set_compatibility(subject_name=subject, level=COMPATIBILITY)
                schema_id = registry.register_schema(subject, Schema(es.text, "AVRO"))
        except SchemaRegistryError as e:
            if e.http_status_code == 409:
                raise SchemaError(
                    f"{es.path} is not {COMPATIBILITY}-compatible with what {subject} holds "
                    f"({e.error_message}); `choreo schemas check --registry` names the field "
                    "and the rule it breaks"
                ) from e
            raise ConfigurationError(f"registering {subject} failed: {e}") from e
        done.append(Registered(subject, schema_id))
    return done
