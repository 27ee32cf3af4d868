"""What every record of a domain carries, under the domain's own names for it.

The framework reads five things from each event without knowing the domain: the partition key
(every record is keyed by its value, so a saga's records share a partition on every topic), the
saga it belongs to, its own id, its time, and the id of the event that caused it. A domain
names the fields that hold them (`Domain(envelope=Envelope(key_field="account", ...))`): the
worker keys its outputs and routes its inputs by `key_field` and copies `saga_field` into a
header, and the operator tools filter, trace and link records by the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from choreo.timers import TimerFired


@dataclass(frozen=True)
class Envelope:
    """The names of the envelope fields in a domain's events.

    key_field:   the partition key ("site", "account", "customer_id"): a string field of every
                 event, whose UTF-8 bytes are the record's key.
    saga_field:  names the saga an event belongs to ("order_id"); an event without it (stock
                 added, a drone registered) belongs to no saga. It may be the key itself, for
                 a domain with one saga per key.
    id_field:    the event's own id, unique and derived (never random) so a retry repeats it.
    time_field:  when the event happened, as the domain says (the edge's time, carried along).
    cause_field: the id of the event that caused it (absent or None for a command).
    """

    key_field: str
    saga_field: str
    id_field: str = "event_id"
    time_field: str = "occurred_at"
    cause_field: str = "causation_id"

    def __post_init__(self) -> None:
        names = self.fields
        if not all(isinstance(n, str) and n.isidentifier() for n in names):
            raise ValueError(f"envelope field names must be identifiers: {names!r}")

    @property
    def fields(self) -> tuple[str, ...]:
        """The five names, in the order schemas list them (id, saga, key, time, cause)."""
        return (self.id_field, self.saga_field, self.key_field, self.time_field, self.cause_field)

    # A TimerFired is the framework's own record: its id is `event_id` whatever the domain calls
    # ids, and the timer's data carries the key and the saga (a service puts them there).

    def key_of(self, event: Any) -> str | None:
        value = event.data.get(self.key_field) if isinstance(event, TimerFired) else getattr(
            event, self.key_field, None)
        return value if isinstance(value, str) else None

    def saga_of(self, event: Any) -> str | None:
        value = event.data.get(self.saga_field) if isinstance(event, TimerFired) else getattr(
            event, self.saga_field, None)
        return None if value is None or value == "" else str(value)

    def id_of(self, event: Any) -> str | None:
        value = event.event_id if isinstance(event, TimerFired) else getattr(event, self.id_field, None)
        return value if isinstance(value, str) else None

    def cause_of(self, event: Any) -> str | None:
        value = getattr(event, self.cause_field, None)
        return value if isinstance(value, str) else None
