"""The reference hubs spread over the partitions: the hub is the partition key, so a hub list that
hashes onto a few partitions leaves the other partitions (and the instances reading them) idle."""

from __future__ import annotations

from collections import Counter

import pytest

from choreo.kafka.partitioner import partition_for
from consumers.reference import SKU_PATTERN, hubs, normalise_address
from producers.seed import UNSTOCKED_SKU, fleet_size, stocked_skus

DESIGNED = {"hub-north", "hub-south", "hub-east", "hub-west"}

# partitions -> the fewest hubs any one of them must carry. 24 hubs give exactly 4 per partition
# of 6 (8 per 3, 6 per 4, 2 per 12); the floors leave room for a hub more or less here and there.
FLOORS = {6: 3, 3: 6, 4: 4, 12: 1}


def spread(partitions: int) -> dict[int, list[str]]:
    """Partition -> the hubs the Java-compatible partitioner puts on it (every partition listed)."""
    out: dict[int, list[str]] = {p: [] for p in range(partitions)}
    for hub in sorted(hubs()):
        out[partition_for(hub.encode(), partitions)].append(hub)
    return out


def test_there_are_24_hubs_and_the_four_designed_ones_are_among_them() -> None:
    assert len(hubs()) == 24
    assert DESIGNED <= set(hubs())


@pytest.mark.parametrize(("partitions", "floor"), FLOORS.items())
def test_every_partition_carries_a_fair_share_of_hubs(partitions: int, floor: int) -> None:
    by_partition = spread(partitions)
    counts = {p: len(hs) for p, hs in by_partition.items()}
    assert min(counts.values()) >= floor, (
        f"hubs per partition of {partitions} (want at least {floor} each): {counts}; {by_partition}"
    )


def test_the_six_partition_spread_is_even() -> None:
    counts = Counter(partition_for(hub.encode(), 6) for hub in hubs())
    assert sorted(counts.items()) == [(p, 4) for p in range(6)], dict(counts)


def test_every_hub_has_a_catalogue_stock_and_an_address_book_of_its_own() -> None:
    seen: dict[str, str] = {}
    for hub_id, hub in hubs().items():
        assert hub_id.startswith("hub-") and hub.name, hub_id
        assert all(SKU_PATTERN.fullmatch(s) for s in hub.skus), hub_id
        # OUT_OF_STOCK orders may go to any hub with drones: each must catalogue the unstocked SKU.
        assert UNSTOCKED_SKU in hub.skus and stocked_skus(hub_id), hub_id
        assert len(hub.addresses) >= 3, hub_id
        for address in hub.addresses:
            assert seen.setdefault(address, hub_id) == hub_id, f"{address!r} in two address books"
    assert normalise_address("1  Harbour Street, NORTHPORT") in hubs()["hub-north"].addresses


def test_the_designed_hubs_keep_their_roles_and_the_others_have_a_fleet() -> None:
    assert [fleet_size(h) for h in ("hub-north", "hub-south", "hub-east", "hub-west")] == [120, 120, 2, 0]
    assert all(fleet_size(h) > 2 for h in set(hubs()) - DESIGNED)
    assert fleet_size("hub-atlantis") == 0
