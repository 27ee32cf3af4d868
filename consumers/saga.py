"""What every saga record shares: its key in state, and the common fields of a caused event."""

from __future__ import annotations

from typing import Any

from choreo.contract import derive_id


def caused_by(cause: Any, purpose: str) -> dict[str, Any]:
    """event_id, order_id, hub, occurred_at, causation_id of an output of `cause`.

    The id is derived from the cause and a purpose (the output's name), so a retried decision
    produces the same ids; the time is the cause's, since domain code has no clock.
    """
    return {
        "event_id": derive_id(cause.event_id, purpose),
        "order_id": cause.order_id,
        "hub": cause.hub,
        "occurred_at": cause.occurred_at,
        "causation_id": cause.event_id,
    }


def caused_by_without_order(cause: Any, purpose: str) -> dict[str, Any]:
    """The common fields for records that are not about an order (stock and fleet)."""
    return {
        "event_id": derive_id(cause.event_id, purpose),
        "hub": cause.hub,
        "occurred_at": cause.occurred_at,
        "causation_id": cause.event_id,
    }


def saga_key(hub: str, order_id: str) -> str:
    """Key of a saga in a service's tables: the hub is part of it, since order ids are only
    checked for uniqueness within a hub's partition and a record of one hub must never touch
    another hub's stock or drones."""
    return f"{hub}/{order_id}"
