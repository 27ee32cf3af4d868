"""The events a reader writes for the reminders sample of docs/writing-a-service.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminderArmed:
    SCHEMA: ClassVar[str] = "delivery.reminders.ReminderArmed"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminderDisarmed:
    SCHEMA: ClassVar[str] = "delivery.reminders.ReminderDisarmed"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerReminded:
    SCHEMA: ClassVar[str] = "delivery.reminders.CustomerReminded"

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None


EVENTS = (ReminderArmed, ReminderDisarmed, CustomerReminded)
