"""Wiring: find the services, load their schemas, build the codec. Nothing here runs at import."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from choreo import clients
from choreo.codec import Codec
from choreo.contract import Service
from choreo.exceptions import ConfigurationError
from choreo.schemas import default_schema_dir, load_event_schemas
from choreo.settings import Settings

# The module that declares the services: it exposes SERVICE_NAMES and load_service(name).
# The runtime never imports the domain by name; tests point this at a toy module.
DEFAULT_SERVICES_MODULE = "consumers"


def services_module() -> Any:
    name = os.environ.get("CHOREO_SERVICES_MODULE", DEFAULT_SERVICES_MODULE)
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ConfigurationError(f"cannot import the services module {name!r}: {e}") from e


def service_names() -> tuple[str, ...]:
    return tuple(services_module().SERVICE_NAMES)


def load_service(name: str) -> Service:
    module = services_module()
    if name not in module.SERVICE_NAMES:
        known = ", ".join(module.SERVICE_NAMES)
        raise ConfigurationError(f"unknown service {name!r}; known services: {known}")
    service: Service = module.load_service(name)
    return service


def load_all_services() -> list[Service]:
    return [load_service(n) for n in service_names()]


def event_classes(services: Iterable[Service]) -> list[type]:
    classes: list[type] = []
    for s in services:
        for types in s.inputs.values():
            classes.extend(types)
        classes.extend(s.emits)
    return list(dict.fromkeys(classes))


def schema_roots() -> list[Path]:
    module = services_module()
    extra = getattr(module, "SCHEMA_DIRS", None)
    return [Path(p) for p in extra] if extra else [default_schema_dir()]


def build_codec(settings: Settings, services: Iterable[Service] | None = None) -> Codec:
    """A codec for every event type of `services` (all services when None)."""
    services = list(services) if services is not None else load_all_services()
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
