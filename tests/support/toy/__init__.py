"""A toy two-service pipeline for runtime tests: `counter` sums numbers per hub, `doubler` doubles sums.

Point CHOREO_DOMAINS at `tests.support.toy:DOMAIN` to run it with the real worker.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from choreo.contract import Service, State, StateView, derive_id
from choreo.domain import Domain
from choreo.envelope import Envelope


@dataclass(frozen=True)
class AddNumber:
    SCHEMA: ClassVar[str] = "toy.counter.AddNumber"
    event_id: str
    hub: str
    occurred_at: datetime
    value: int


@dataclass(frozen=True)
class NumberCounted:
    SCHEMA: ClassVar[str] = "toy.counter.NumberCounted"
    event_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    value: int
    total: int


@dataclass(frozen=True)
class SumDoubled:
    SCHEMA: ClassVar[str] = "toy.doubler.SumDoubled"
    event_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    doubled: int


def counter_decide(state: StateView, event: AddNumber) -> list[NumberCounted]:
    if state.get("seen", event.event_id) is not None:
        return []  # a duplicate command: no second output
    total = (state.get("totals", event.hub) or {"total": 0})["total"] + event.value
    return [
        NumberCounted(
            event_id=derive_id(event.event_id, "counted"),
            hub=event.hub,
            occurred_at=event.occurred_at,
            causation_id=event.event_id,
            value=event.value,
            total=total,
        )
    ]


def counter_evolve(state: State, event: NumberCounted) -> None:
    state.put("totals", event.hub, {"total": event.total})
    state.put("seen", event.causation_id or "", {"value": event.value})


def doubler_decide(state: StateView, event: NumberCounted) -> list[SumDoubled]:
    return [
        SumDoubled(
            event_id=derive_id(event.event_id, "doubled"),
            hub=event.hub,
            occurred_at=event.occurred_at,
            causation_id=event.event_id,
            doubled=event.total * 2,
        )
    ]


def doubler_evolve(state: State, event: SumDoubled) -> None:
    count = (state.get("count", event.hub) or {"n": 0})["n"] + 1
    state.put("count", event.hub, {"n": count, "last": event.doubled})


COUNTER = Service(
    name="counter",
    inputs={"counter.commands": (AddNumber,)},
    emits=(NumberCounted,),
    decide=counter_decide,
    evolve=counter_evolve,
)
DOUBLER = Service(
    name="doubler",
    inputs={"counter": (NumberCounted,)},
    emits=(SumDoubled,),
    decide=doubler_decide,
    evolve=doubler_evolve,
)


DOMAIN = Domain(
    name="toy",
    services=(COUNTER, DOUBLER),
    schema_dirs=(Path(__file__).parent / "schemas",),
    envelope=Envelope(key_field="hub", saga_field="hub"),  # no sagas: records followed by hub
)

# The same pipeline, but a doubler deployed late that reads only what is written after it first
# starts (tests/integration/test_first_read.py).
LATE_DOUBLER = replace(DOUBLER, first_read="latest")
LATE_DOMAIN = replace(DOMAIN, name="toy-late", services=(COUNTER, LATE_DOUBLER))
