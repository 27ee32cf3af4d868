"""Wiring: the installed services' event classes and schemas, and the codec built from them.

The services themselves come from `choreo.domain.installation()`, the one front door to what is
installed; nothing here runs at import."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from choreo.contract import Service
from choreo.domain import installation
from choreo.kafka import clients
from choreo.serde.codec import Codec
from choreo.serde.schemas import load_event_schemas
from choreo.settings import Settings
from choreo.timers import SCHEMA_DIR, TimerFired


def event_classes(services: Iterable[Service]) -> list[type]:
    # TimerFired always: a service reads the own topics of others, timer records included.
    classes: list[type] = [TimerFired]
    for s in services:
        for types in s.inputs.values():
            classes.extend(types)
        classes.extend(s.emits)
    return list(dict.fromkeys(classes))


def schema_roots() -> list[Path]:
    return [SCHEMA_DIR, *installation().schema_dirs]


def build_codec(settings: Settings, services: Iterable[Service] | None = None) -> Codec:
    """A codec for every event type of `services` (all services when None)."""
    services = list(services) if services is not None else installation().services
    schemas = load_event_schemas(event_classes(services), *schema_roots())
    return Codec(clients.registry_client(settings), schemas.values())


def topic_classes(services: Iterable[Service]) -> dict[str, list[type]]:
    """Logical topic -> the event classes that travel on it (inputs and own events)."""
    out: dict[str, list[type]] = {}
    for s in services:
        for topic, types in s.inputs.items():
            out.setdefault(topic, [])
            out[topic].extend(t for t in types if t not in out[topic])
        out.setdefault(s.own_topic, [])
        out[s.own_topic].extend(t for t in s.emits if t not in out[s.own_topic])
    return out
