"""Reference data the services share: hubs, their SKU catalogues and address books (hubs.json)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

# A SKU is "SKU-" and four digits; the catalogue of each hub lists which ones it stocks.
SKU_PATTERN = re.compile(r"SKU-[0-9]{4}")
MIN_QUANTITY = 1
MAX_QUANTITY = 100


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


def raw_addresses(hub_id: str) -> list[str]:
    """The address book of a hub as written in hubs.json (for producers and demos)."""
    raw = json.loads(resources.files(__package__).joinpath("hubs.json").read_text("utf-8"))
    return list(raw["hubs"][hub_id]["addresses"])
