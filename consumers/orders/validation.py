"""Validation of PlaceOrder against the size caps and the reference data, with readable reasons."""

from __future__ import annotations

from consumers.ids import id_rejection
from consumers.limits import field_too_long, shown
from consumers.orders.events import PlaceOrder
from consumers.reference import MAX_DEADLINE_S, MAX_QUANTITY, MIN_QUANTITY, SKU_PATTERN, hubs


def rejection(command: PlaceOrder) -> tuple[str, str] | None:
    """(reason code, detail) when the order cannot be accepted, else None."""
    too_long = field_too_long(command)
    if too_long is not None:
        return too_long
    bad_id = id_rejection(command)
    if bad_id is not None:
        return bad_id
    hub = hubs().get(command.hub)
    if hub is None:
        known = ", ".join(sorted(hubs()))
        return "UNKNOWN_HUB", f"hub {shown(command.hub)} is not one of ours ({known})"
    if not MIN_QUANTITY <= command.quantity <= MAX_QUANTITY:
        return (
            "INVALID_QUANTITY",
            f"quantity {command.quantity} is outside {MIN_QUANTITY}..{MAX_QUANTITY}",
        )
    if not command.address.strip():
        return "EMPTY_ADDRESS", "the delivery address is empty"
    if not SKU_PATTERN.fullmatch(command.sku):
        return "INVALID_SKU", f"SKU {shown(command.sku)} is not of the form SKU-0000 (four digits)"
    if command.sku not in hub.skus:
        return "UNKNOWN_SKU", f"SKU {shown(command.sku)} is not in the catalogue of {shown(command.hub)}"
    if command.deadline is not None:
        # Against the order's own time: decide has no clock, and the edge stamped both.
        allowed = (command.deadline - command.occurred_at).total_seconds()
        if not 0 < allowed <= MAX_DEADLINE_S:
            return (
                "INVALID_DEADLINE",
                f"deadline {command.deadline.isoformat()} is not within {MAX_DEADLINE_S} s after "
                f"the order's time {command.occurred_at.isoformat()}",
            )
    return None
