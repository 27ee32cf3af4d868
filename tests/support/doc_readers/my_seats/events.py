"""The events a reader writes for the held-saga sample of docs/writing-a-service.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatHeld:
    SCHEMA: ClassVar[str] = "theatre.seats.SeatHeld"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
    seat: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatReleased:
    SCHEMA: ClassVar[str] = "theatre.seats.SeatReleased"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatSold:
    SCHEMA: ClassVar[str] = "theatre.seats.SeatSold"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
