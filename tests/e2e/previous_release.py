"""The orders service as it was before OrderCompleted v2: it writes OrderCompleted with schema v1.

`CHOREO_DOMAINS=tests.e2e.previous_release:DOMAIN` runs it as a real `choreo worker orders`, for
the mixed-writers test (test_mixed_schema_versions.py): the orders worker of the previous release
fills the log with v1 records, then the current release takes over on the same topic and store.

Its schema folder is the current one with `schemas_v1/` laid over it, which holds the first
version of `orders/OrderCompleted.avsc` (a copy of it from git history, without `delivered_to`).
Decisions and state are the current release's: the only difference is the record it writes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from choreo.contract import State, StateView
from choreo.domain import Domain
from consumers import domain as current
from consumers.envelope import SagaRecord
from consumers.orders import events
from consumers.orders import service as orders

SCHEMAS_V1 = Path(__file__).resolve().parent / "schemas_v1"
ORDER_COMPLETED_V1 = SCHEMAS_V1 / "orders" / "OrderCompleted.avsc"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCompletedV1(SagaRecord):
    """The saga's happy end, as schema v1 has it: no delivered_to."""

    SCHEMA: ClassVar[str] = "delivery.orders.OrderCompleted"

    package_id: str
    drone_id: str


def _as(cls: type, event: Any) -> Any:
    """`event` as a `cls`, from the fields `cls` has (a field `event` lacks takes its default)."""
    names = {f.name for f in dataclasses.fields(cls)} & {f.name for f in dataclasses.fields(event)}
    return cls(**{name: getattr(event, name) for name in names})


def _v1(event: Any) -> Any:
    return _as(OrderCompletedV1, event) if isinstance(event, events.OrderCompleted) else event


def _current(event: Any) -> Any:
    return _as(events.OrderCompleted, event) if isinstance(event, OrderCompletedV1) else event


def _decide(state: StateView, event: Any) -> list[Any]:
    return [_v1(out) for out in orders.decide(state, event)]


def _evolve(state: State, event: Any) -> None:
    orders.evolve(state, _current(event))


ORDERS_V1 = dataclasses.replace(
    orders.SERVICE,
    emits=tuple(OrderCompletedV1 if cls is events.OrderCompleted else cls for cls in orders.EVENTS),
    decide=_decide,
    evolve=_evolve,
)

DOMAIN = Domain(
    name="drone-delivery-previous",
    services=(ORDERS_V1,),
    schema_dirs=(*current.DOMAIN.schema_dirs, SCHEMAS_V1),  # a later folder's file wins
    envelope=current.DOMAIN.envelope,
    ends={**current.SAGA_ENDS, OrderCompletedV1: "completed"},
    roles=current.role_of,
)
