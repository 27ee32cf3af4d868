"""The records every contender reads: OrderPlaced spread over all partitions, and shelf stock.

Keyed by hub, the 24 reference hubs would fill every partition of 6, four hubs each, but the
orders picked at random would still load them unevenly. The one-stage comparison places record i
on partition i % partitions, with a hub that murmur2 puts there (a worker dead-letters a record
off its key's partition), so every contender gets exactly the same share per partition.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from bench.kafka_io import Headers, Record
from choreo.kafka.partitioner import partition_for
from choreo.serde.codec import Codec
from consumers.orders.events import OrderPlaced
from consumers.packaging.events import StockAdded
from consumers.reference import hubs
from producers.commands import edge_time
from producers.seed import deliverable_addresses, stocked_skus


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def order_placed(rng: random.Random, at: datetime, hub: str | None = None) -> OrderPlaced:
    hub = hub or rng.choice(sorted(hubs()))
    return OrderPlaced(
        event_id=_uuid(rng),
        order_id=_uuid(rng),
        hub=hub,
        occurred_at=at,
        causation_id=_uuid(rng),
        sku=rng.choice(stocked_skus(hub)),
        quantity=rng.randint(1, 5),
        address=rng.choice(deliverable_addresses(hub)),
    )


def order_records(codec: Codec, topic: str, n: int, partitions: int, seed: int) -> list[Record]:
    """`n` encoded OrderPlaced records for `topic`, the same bytes for the same seed."""
    rng = random.Random(seed)
    at = edge_time(datetime(2025, 1, 1, tzinfo=UTC))
    on_partition = [[h for h in sorted(hubs()) if partition_for(h.encode(), partitions) == p]
                    for p in range(partitions)]
    out: list[Record] = []
    for i in range(n):
        event = order_placed(rng, at, rng.choice(on_partition[i % partitions]))
        headers: Headers = [("event_type", OrderPlaced.SCHEMA.encode()),
                            ("order_id", event.order_id.encode())]
        out.append((i % partitions, event.hub.encode(), codec.encode(topic, event), headers))
    return out


def stock_records(codec: Codec, own_topic: str, partitions: int, quantity: int) -> list[Record]:
    """StockAdded for every stocked shelf on every partition: packaging's state, pre-filled
    by writing its own topic (the worker restores it before processing any input)."""
    at = edge_time(datetime(2025, 1, 1, tzinfo=UTC))
    rng = random.Random(0)
    out: list[Record] = []
    for p in range(partitions):
        for hub in sorted(hubs()):
            for sku in stocked_skus(hub):
                event = StockAdded(event_id=_uuid(rng), hub=hub, occurred_at=at, causation_id=None,
                                   sku=sku, quantity=quantity)
                out.append((p, hub.encode(), codec.encode(own_topic, event),
                            [("event_type", StockAdded.SCHEMA.encode())]))
    return out
