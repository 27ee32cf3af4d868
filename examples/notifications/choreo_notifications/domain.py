"""The notifications service as a choreo domain, declared by the entry point `notifications`."""

from __future__ import annotations

from pathlib import Path

from choreo.domain import Domain
from choreo_notifications.events import CustomerNotified
from choreo_notifications.service import SERVICE
from consumers.domain import DOMAIN as DRONE_DELIVERY

DOMAIN = Domain(
    name="notifications",
    services=(SERVICE,),
    # Its own schemas, packaged beside this file, and those of the orders events it reads (so the
    # domain also runs alone, e.g. with CHOREO_DOMAINS=choreo_notifications.domain:DOMAIN).
    schema_dirs=(Path(__file__).resolve().parent / "schemas", *DRONE_DELIVERY.schema_dirs),
    # Every installed domain must name its envelope fields alike: it reads the saga's events.
    envelope=DRONE_DELIVERY.envelope,
    # The customer reads it, no service does: the end of its journey (`choreo graph --check`).
    terminal=(CustomerNotified,),
)
