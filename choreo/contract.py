"""The service contract: a service is data plus two pure functions, `decide` and `evolve`.

Domain code (consumers/) sees only what is in this module: typed frozen event dataclasses,
a read-only state view for `decide`, a writable state for `evolve`, `Service` to declare
itself, and durable timers (set and cancelled from `evolve`, fired into `decide` as a
`TimerFired` that carries the time: choreo/timers.py). It never sees Kafka, SQL or the clock.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Namespace for ids derived from other ids: the same input always yields the same output id,
# so a replayed or retried decision produces byte-identical events.
_DERIVED_ID_NAMESPACE = uuid.UUID("6f1c3b1e-6a55-4c57-9a3e-0c9a7f0c2d11")

JsonValue = Any  # str | int | float | bool | None | list | dict of those


_NAMESPACE_BYTES = _DERIVED_ID_NAMESPACE.bytes


def derive_id(cause_id: str, purpose: str) -> str:
    """A deterministic id for the record caused by `cause_id` (uuid5, never random).

    str(uuid.uuid5(namespace, f"{cause_id}/{purpose}")), without building UUID objects: a few
    of these are made for every record a worker processes.

    The join is injective because a purpose never holds '/' (it is a fixed name: the output's
    class, "package"): the last '/' always splits off the purpose, whatever the cause id holds.
    The text is not escaped like state keys (choreo/keys.py), since that would change every
    derived id and so the ids a replay of an existing log produces.
    """
    if "/" in purpose:
        raise ValueError(f"purpose {purpose!r} holds '/', which would make derived ids ambiguous")
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{cause_id}/{purpose}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class StateView(Protocol):
    """Read-only local state of one service on one partition: tables of JSON documents."""

    def get(self, table: str, key: str) -> dict[str, JsonValue] | None: ...

    def scan(self, table: str, prefix: str = "") -> Iterator[tuple[str, dict[str, JsonValue]]]:
        """(key, value) pairs of `table` whose key starts with `prefix`, in key order."""
        ...


class State(StateView, Protocol):
    """Writable state, handed only to `evolve`."""

    def put(self, table: str, key: str, value: dict[str, JsonValue]) -> None: ...

    def delete(self, table: str, key: str) -> None: ...


FIRST_READS = ("earliest", "latest")  # Service.first_read: Kafka's auto.offset.reset values

Decide = Callable[[StateView, Any], Sequence[Any]]
Evolve = Callable[[State, Any], None]


@dataclass(frozen=True)
class Service:
    """A microservice declared as data.

    name:     the service name; its consumer group id and its own topic (`<name>`).
    inputs:   logical topic -> the event classes it accepts from that topic. A record of any
              other type on a subscribed topic is dead-lettered (unsubscribed type).
    emits:    the event classes it writes to its own topic (what `evolve` must handle).
    decide:   (state view, input event) -> own events. Pure: no I/O, no clock, no randomness.
    evolve:   (state, own event) -> None. The only code that writes state.
    on_timer: the events `decide` may answer a `TimerFired` with; a service that sets timers
              declares them (the contract graph shows them as timer-driven). Declaring any
              makes `TimerFired` one of its own events, applied by the runtime (it removes the
              fired timer) before `evolve` would see it.
    check_settings: called once when a worker of the service starts; raises a
              choreo.exceptions.ConfigurationError (one sentence) for a setting of the
              service's own that is wrong, so it is refused at start, not at the first record.
    first_read: where the service starts reading its inputs when its consumer group has no
              committed position (its first deployment, or after its group was deleted):
              "earliest" (the default) decides every record the input topics hold, history
              included; "latest" only those written after it first starts. Once it has
              committed, it always goes on from where it left off.
    """

    name: str
    inputs: Mapping[str, tuple[type, ...]]
    emits: tuple[type, ...]
    decide: Decide
    evolve: Evolve
    description: str = ""
    on_timer: tuple[type, ...] = ()
    check_settings: Callable[[], object] | None = None
    first_read: str = "earliest"

    def __post_init__(self) -> None:
        if self.first_read not in FIRST_READS:
            allowed = ", ".join(FIRST_READS)
            raise ValueError(f"service {self.name!r}: first_read {self.first_read!r} is not one of {allowed}")
        if not self.on_timer:
            return
        # Frozen: set once here, so every reader of `emits` and `evolve` (worker, restore,
        # rebuild, dry-run, registration) treats the firing record as an own event, whether or
        # not the service listed TimerFired itself.
        if TimerFired not in self.emits:
            object.__setattr__(self, "emits", (*self.emits, TimerFired))
        if not getattr(self.evolve, "removes_fired_timers", False):  # once, also after replace()
            domain_evolve = self.evolve

            def evolve(state: State, event: Any) -> None:
                if type(event) is TimerFired:
                    apply_fired(state, event)
                else:
                    domain_evolve(state, event)

            evolve.removes_fired_timers = True  # type: ignore[attr-defined]
            object.__setattr__(self, "evolve", evolve)

    @property
    def uses_timers(self) -> bool:
        return bool(self.on_timer)

    @property
    def own_topic(self) -> str:
        return self.name

    @property
    def dlq_topic(self) -> str:
        return f"{self.name}.dlq"

    @property
    def retry_topic(self) -> str:
        """Where `choreo dlq retry` sends this service's dead letters back: only it reads it."""
        return f"{self.name}.retry"

    def accepts(self, topic: str, event_type: type) -> bool:
        return event_type in self.inputs.get(topic, ())



# At the end: choreo.timers and choreo.in_flight build on the protocols above, and domain code
# finds everything of the contract here.
from choreo.in_flight import in_flight_since, saga_ended, saga_started  # noqa: E402
from choreo.timers import (  # noqa: E402
    TimerFired,
    apply_fired,
    cancel_timer,
    pending_timer,
    set_timer,
)

__all__ = [
    "Decide", "Evolve", "JsonValue", "Service", "State", "StateView", "TimerFired",
    "cancel_timer", "derive_id", "in_flight_since", "pending_timer", "saga_ended", "saga_started",
    "set_timer",
]
