"""The reference domain as tests look at it: its services by name, every event type they know."""

from __future__ import annotations

from choreo.bootstrap import event_classes
from choreo.contract import Service
from choreo.domain import Installation
from choreo.timers import TimerFired
from consumers.domain import DOMAIN

SERVICE_NAMES = tuple(s.name for s in DOMAIN.services)


def load_service(name: str) -> Service:
    return Installation((DOMAIN,)).service(name)


def all_event_types() -> list[type]:
    """Every command and event class of the reference domain any of its services reads or
    writes (not choreo's own TimerFired, which orders writes too: tests/unit/test_timers.py)."""
    return [c for c in event_classes(DOMAIN.services) if c is not TimerFired]
