"""What every saga record shares: its key in state, and the common fields of a caused event."""

from __future__ import annotations

from typing import Any

from choreo.contract import derive_id
from choreo.keys import compose_key
from consumers.limits import HUB_MAX, ID_MAX, clipped


def caused_by(cause: Any, purpose: str) -> dict[str, Any]:
    """event_id, order_id, hub, occurred_at, causation_id of an output of `cause`.

    The id is derived from the cause and a purpose (the output's name), so a retried decision
    produces the same ids; the time is the cause's, since domain code has no clock. The copied
    ids are clipped to their caps: only a rejection ever answers a command with an over-long one,
    and it must stay far below Kafka's record limit (within the caps clipping changes nothing).
    """
    return {
        "event_id": derive_id(cause.event_id, purpose),
        "order_id": clipped(cause.order_id, ID_MAX),
        "hub": clipped(cause.hub, HUB_MAX),
        "occurred_at": cause.occurred_at,
        "causation_id": clipped(cause.event_id, ID_MAX),
    }


def caused_by_timer(fired: Any, purpose: str) -> dict[str, Any]:
    """The common fields of an event decided on a fired timer whose data holds order_id and hub.

    Its time is the firing's (`fired_at`, the one clock a decision ever sees), its cause the
    TimerFired record the worker wrote just before it."""
    return {
        "event_id": derive_id(fired.event_id, purpose),
        "order_id": clipped(fired.data["order_id"], ID_MAX),
        "hub": clipped(fired.data["hub"], HUB_MAX),
        "occurred_at": fired.fired_at,
        "causation_id": fired.event_id,
    }


def caused_by_without_order(cause: Any, purpose: str) -> dict[str, Any]:
    """The common fields for records that are not about an order (stock and fleet)."""
    return {
        "event_id": derive_id(cause.event_id, purpose),
        "hub": clipped(cause.hub, HUB_MAX),
        "occurred_at": cause.occurred_at,
        "causation_id": clipped(cause.event_id, ID_MAX),
    }


def saga_key(hub: str, order_id: str) -> str:
    """Key of a saga in a service's tables: the hub is part of it, since order ids are only
    checked for uniqueness within a hub's partition and a record of one hub must never touch
    another hub's stock or drones.

    The parts are escaped (choreo/keys.py), so ("hub-north/y", "o") and ("hub-north", "y/o")
    are two sagas; ordinary ids give the plain "hub/order" key stores have always held.

    Both parts are clipped to their caps first, so that the key of a command with an over-long
    hub or order id is that of its rejection (which carries them clipped): a replay of the
    command is then seen as a duplicate, and no state key is ever much larger than the caps. A
    stand-in never meets an accepted order's key: consumers/ids.py refuses ids of its form.
    """
    return compose_key(clipped(hub, HUB_MAX), clipped(order_id, ID_MAX))
