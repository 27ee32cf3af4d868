"""The fields every saga record starts with, in schema order (each .avsc lists them first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class HubRecord:
    """A record about a hub (stock, fleet): its id, hub (the partition key), time and cause."""

    event_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SagaRecord:
    """A record of one saga: as HubRecord, plus the order id that names the saga."""

    event_id: str
    order_id: str
    hub: str
    occurred_at: datetime
    causation_id: str | None
