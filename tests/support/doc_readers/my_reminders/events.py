"""The events a reader writes for the reminders sample of docs/writing-a-service.md: each carries
the saga's envelope (event_id, order_id, hub, occurred_at, causation_id) and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from consumers.envelope import SagaRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminderArmed(SagaRecord):
    SCHEMA: ClassVar[str] = "delivery.reminders.ReminderArmed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminderDisarmed(SagaRecord):
    SCHEMA: ClassVar[str] = "delivery.reminders.ReminderDisarmed"


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerReminded(SagaRecord):
    SCHEMA: ClassVar[str] = "delivery.reminders.CustomerReminded"


EVENTS = (ReminderArmed, ReminderDisarmed, CustomerReminded)
