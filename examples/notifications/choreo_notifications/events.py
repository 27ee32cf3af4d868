"""The events of the notifications service, one frozen dataclass per schemas/*.avsc.

The field names, their order and their nullability must equal the schema's: choreo checks that
when it loads the schemas and refuses to start on a difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerNotified:
    """The customer was told how their order ended."""

    SCHEMA: ClassVar[str] = "delivery.notifications.CustomerNotified"

    event_id: str
    order_id: str
    hub: str  # the partition key: the same hub, the same partition as the order's other events
    occurred_at: datetime
    causation_id: str | None
    outcome: str  # "completed" or "compensated"
    message: str


# What travels on the `notifications` topic.
EVENTS = (CustomerNotified,)
