"""The microservices of the drone-delivery saga (domain only: no Kafka, no SQL, no clock)."""

from __future__ import annotations

import importlib

from choreo.contract import Service

SERVICE_NAMES = ("orders", "packaging", "drones", "delivery")


def load_service(name: str) -> Service:
    """The Service declared by consumers/<name>."""
    if name not in SERVICE_NAMES:
        raise ValueError(f"unknown service {name!r}; choose one of {', '.join(SERVICE_NAMES)}")
    service: Service = importlib.import_module(f"consumers.{name}").SERVICE
    return service


def all_event_types() -> list[type]:
    """Every event and command class of every service (what the codec must know)."""
    types: list[type] = []
    for name in SERVICE_NAMES:
        events = importlib.import_module(f"consumers.{name}.events")
        types.extend(getattr(events, "COMMANDS", ()))
        types.extend(events.EVENTS)
    return types
