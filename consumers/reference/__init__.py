"""Reference data the services share: hubs, their SKU catalogues and address books (hubs.json)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from choreo.exceptions import ConfigurationError
from choreo.settings import IntRange

# A SKU is "SKU-" and four digits; the catalogue of each hub lists which ones it stocks.
SKU_PATTERN = re.compile(r"SKU-[0-9]{4}")
MIN_QUANTITY = 1
MAX_QUANTITY = 100

# How long a saga may run when its PlaceOrder names no deadline (docs/adr/0007-saga-deadlines.md).
DEADLINE_ENV = "CHOREO_ORDER_DEADLINE_S"
DEFAULT_DEADLINE_S = 900
MAX_DEADLINE_S = 7 * 24 * 3600


# How long a package waits for a drone at a hub whose drones are all flying (0: not at all).
DRONE_WAIT_ENV = "CHOREO_DRONE_WAIT_S"
DEFAULT_DRONE_WAIT_S = 60
MAX_DRONE_WAIT_S = 24 * 3600


@cache
def default_deadline_s() -> int:
    """The orders service's deadline for orders that name none, in seconds (read once)."""
    return _seconds(DEADLINE_ENV, DEFAULT_DEADLINE_S, 1, MAX_DEADLINE_S)


@cache
def drone_wait_s() -> int:
    """How long the drones service queues a package for a drone before NO_DRONE (read once)."""
    return _seconds(DRONE_WAIT_ENV, DEFAULT_DRONE_WAIT_S, 0, MAX_DRONE_WAIT_S)


def _seconds(name: str, default: int, low: int, high: int) -> int:
    """The setting `name` from the environment, range-checked as choreo's own settings are
    (unset: the default; set but empty, or out of range: one sentence)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = IntRange(low, high).convert(raw.strip())
    if value is None:
        raise ConfigurationError(f"{name}={raw!r} is not a number of seconds from {low} to {high}")
    return value


@dataclass(frozen=True)
class Hub:
    """A fulfilment hub: warehouse plus drone base, and the partition key of its sagas."""

    hub_id: str
    name: str
    skus: frozenset[str]
    addresses: frozenset[str]  # normalised, see normalise_address

    def reaches(self, address: str) -> bool:
        """Whether the address is in this hub's address book."""
        return normalise_address(address) in self.addresses


def normalise_address(address: str) -> str:
    """Case-folded with runs of whitespace collapsed, so "1  harbour street" matches."""
    return " ".join(address.split()).casefold()


@cache
def hubs() -> Mapping[str, Hub]:
    """Every hub by id, read once from the packaged hubs.json (lazily: nothing at import)."""
    raw = json.loads(resources.files(__package__).joinpath("hubs.json").read_text("utf-8"))
    return {
        hub_id: Hub(
            hub_id=hub_id,
            name=spec["name"],
            skus=frozenset(spec["skus"]),
            addresses=frozenset(normalise_address(a) for a in spec["addresses"]),
        )
        for hub_id, spec in raw["hubs"].items()
    }


@cache
def sku_weights() -> Mapping[str, int]:
    """What one item of each SKU of the catalogue weighs, in grams (hubs.json)."""
    raw = json.loads(resources.files(__package__).joinpath("hubs.json").read_text("utf-8"))
    return dict(raw["sku_weight_grams"])


def raw_addresses(hub_id: str) -> list[str]:
    """The address book of a hub as written in hubs.json (for producers and demos)."""
    raw = json.loads(resources.files(__package__).joinpath("hubs.json").read_text("utf-8"))
    return list(raw["hubs"][hub_id]["addresses"])
