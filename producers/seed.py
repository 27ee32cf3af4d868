"""The demo's starting world: stock per hub and SKU, drones per hub, good and unknown addresses.

Every hub of hubs.json is seeded. Four have designed roles (below); the other twenty are ordinary
hubs with a small fleet, there so that the hub key spreads the sagas over every partition.
"""

from __future__ import annotations

from datetime import datetime

from consumers.drones.events import RegisterDrone
from consumers.packaging.events import AddStock
from consumers.reference import hubs, raw_addresses
from producers.commands import add_stock, register_drone

# Catalogued everywhere but never stocked: an order for it fails with OUT_OF_STOCK.
UNSTOCKED_SKU = "SKU-0999"
STOCK_PER_SKU = 1000
# hub-east has too few drones (busy periods give some NO_DRONE); hub-west has none at all.
DESIGNED_FLEETS = {"hub-north": 120, "hub-south": 120, "hub-east": 2, "hub-west": 0}
# Every other hub: enough drones that a steady stream of orders finds one free.
ORDINARY_FLEET = 20
# Not in any hub's address book: delivery fails with ADDRESS_NOT_FOUND.
UNKNOWN_ADDRESSES = (
    "404 Nowhere Lane, Lostville",
    "13 Missing Street, Atlantis",
    "0 Void Avenue, Nullport",
)


def stocked_skus(hub: str) -> list[str]:
    """The SKUs the seed puts on the shelves of `hub`."""
    return sorted(sku for sku in hubs()[hub].skus if sku != UNSTOCKED_SKU)


def fleet_size(hub: str) -> int:
    """How many drones the seed registers at `hub` (0 for a hub not in hubs.json)."""
    if hub not in hubs():
        return 0
    return DESIGNED_FLEETS.get(hub, ORDINARY_FLEET)


def drone_ids(hub: str) -> list[str]:
    """The seed's drones of `hub`, zero-padded so key order is numeric order."""
    return [f"drone-{i:03d}" for i in range(1, fleet_size(hub) + 1)]


def deliverable_addresses(hub: str) -> list[str]:
    """Addresses in the hub's address book."""
    return raw_addresses(hub)


def hubs_with_drones() -> list[str]:
    """Hubs whose seeded fleet is not empty."""
    return sorted(h for h in hubs() if fleet_size(h) > 0)


def hubs_without_drones() -> list[str]:
    """Hubs whose seeded fleet is empty: every order there ends with NO_DRONE."""
    return sorted(h for h in hubs() if fleet_size(h) == 0)


def stock_commands(at: datetime, quantity: int = STOCK_PER_SKU) -> list[AddStock]:
    """AddStock for every stocked SKU of every hub."""
    return [add_stock(hub, sku, quantity, at) for hub in sorted(hubs()) for sku in stocked_skus(hub)]


def fleet_commands(at: datetime) -> list[RegisterDrone]:
    """RegisterDrone for every seeded drone of every hub."""
    return [register_drone(hub, d, at) for hub in sorted(hubs()) for d in drone_ids(hub)]
