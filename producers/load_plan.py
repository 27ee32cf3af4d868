"""A reproducible plan of PlaceOrder commands with chosen shares of each designed failure."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from consumers.orders.events import PlaceOrder
from producers.commands import place_order
from producers.seed import (
    UNKNOWN_ADDRESSES,
    UNSTOCKED_SKU,
    deliverable_addresses,
    hubs_with_drones,
    hubs_without_drones,
    stocked_skus,
)

COMPLETED = "completed"


@dataclass(frozen=True)
class PlannedOrder:
    """A command and the end it was designed to reach (contention may still give NO_DRONE)."""

    command: PlaceOrder
    intent: str  # completed, OUT_OF_STOCK, ADDRESS_NOT_FOUND or NO_DRONE


def plan_orders(
    n: int,
    out_of_stock_share: float,
    unknown_address_share: float,
    seed: int,
    at: datetime,
    no_drone_share: float = 0.0,
) -> Iterator[PlannedOrder]:
    """`n` orders over the seeded hubs; each share is a fraction of n, rounded.

    The same seed gives the same orders, ids included, so a load run can be repeated.
    """
    shares = {
        "OUT_OF_STOCK": out_of_stock_share,
        "ADDRESS_NOT_FOUND": unknown_address_share,
        "NO_DRONE": no_drone_share,
    }
    if any(not 0.0 <= s <= 1.0 for s in shares.values()) or sum(shares.values()) > 1.0:
        raise ValueError(f"shares must be within 0..1 and add up to at most 1, got {shares}")
    if no_drone_share and not hubs_without_drones():
        raise ValueError("no_drone_share needs a hub without drones in the seed")
    rng = random.Random(seed)
    intents = [intent for intent, share in shares.items() for _ in range(round(n * share))][:n]
    intents += [COMPLETED] * (n - len(intents))
    rng.shuffle(intents)
    for intent in intents:
        yield PlannedOrder(command=_order(rng, intent, at), intent=intent)


def _order(rng: random.Random, intent: str, at: datetime) -> PlaceOrder:
    hub = rng.choice(hubs_without_drones() if intent == "NO_DRONE" else hubs_with_drones())
    sku = UNSTOCKED_SKU if intent == "OUT_OF_STOCK" else rng.choice(stocked_skus(hub))
    pool = UNKNOWN_ADDRESSES if intent == "ADDRESS_NOT_FOUND" else deliverable_addresses(hub)
    return place_order(
        hub=hub,
        sku=sku,
        quantity=rng.randint(1, 5),
        address=rng.choice(pool),
        at=at,
        order_id=_uuid(rng),
        event_id=_uuid(rng),
    )


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
