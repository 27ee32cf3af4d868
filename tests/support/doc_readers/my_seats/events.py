"""The events a reader writes for the held-saga sample of docs/writing-a-service.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from consumers.envelope import SagaRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatHeld(SagaRecord):
    SCHEMA: ClassVar[str] = "theatre.seats.SeatHeld"

    seat: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatReleased(SagaRecord):
    SCHEMA: ClassVar[str] = "theatre.seats.SeatReleased"


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatSold(SagaRecord):
    SCHEMA: ClassVar[str] = "theatre.seats.SeatSold"
