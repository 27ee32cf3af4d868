"""The drone-delivery saga as a `choreo` domain: its four services and the facts the tools need.

Declared to `choreo` by the entry point `drone-delivery` in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from choreo.domain import Domain
from choreo.envelope import Envelope
from consumers.delivery import events as delivery
from consumers.delivery.service import SERVICE as DELIVERY
from consumers.drones import events as drones
from consumers.drones.service import SERVICE as DRONES
from consumers.orders import events as orders
from consumers.orders.service import SERVICE as ORDERS
from consumers.packaging import events as packaging
from consumers.packaging.service import SERVICE as PACKAGING

ENVELOPE = Envelope(key_field="hub", saga_field="order_id")

# Orders follows every saga to exactly one of these ends; the audit, `trace`, the demo and the
# benchmarks all read them from here.
SAGA_ENDS: dict[type, str] = {
    orders.OrderCompleted: "completed",
    orders.OrderCompensated: "compensated",
    orders.OrderRejected: "rejected",
}

FAILURES = (
    packaging.PackagingFailed, drones.DroneUnavailable, delivery.DeliveryFailed,
    delivery.DeliveryCancelled, delivery.DeliveryExpired, orders.OrderDeadlinePassed,
    orders.OrderFailed,
)
COMPENSATIONS = (packaging.StockReleased, drones.DroneReleased)

# The commands come from outside the services: the edge producers (`choreo order`, `stock`,
# `fleet`, `seed` and `load`, in producers/) send them to the `*.commands` topics.
COMMANDS = (*orders.COMMANDS, *packaging.COMMANDS, *drones.COMMANDS)


def role_of(event: Any) -> str | None:
    """What `choreo trace` calls the event: a failure, a compensation, or an ordinary step (None)."""
    if isinstance(event, FAILURES):
        return "failure"
    # A drone also comes back after a good delivery; only one bringing the package back undoes a step.
    if isinstance(event, drones.DroneReleased) and not event.failure_reason:
        return None
    if isinstance(event, COMPENSATIONS):
        return "compensation"
    return None


def _schema_root() -> Path:
    # Installed from a wheel, the schemas sit inside this package (pyproject.toml maps the
    # top-level schemas/ folder there); in a checkout they are that top-level folder.
    packaged = Path(__file__).resolve().parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "schemas"


DOMAIN = Domain(
    name="drone-delivery",
    services=(ORDERS, PACKAGING, DRONES, DELIVERY),
    schema_dirs=(_schema_root(),),
    # Every record is keyed by its hub (the unit of ordering) and names its saga by order id.
    envelope=ENVELOPE,
    ends=SAGA_ENDS,
    roles=role_of,
    cli="producers.cli:register",
    failures=FAILURES,
    compensations=COMPENSATIONS,
    commands=COMMANDS,
)
