"""Memory: the packaging worker's peak RSS with 10k, 100k and 1M keys of state.

The state is written straight into the worker's partition stores (reservations and shelves,
the documents `evolve` writes) with the checkpoint at the start of an empty own topic, so the
worker starts on it without a replay; it then processes `memory_inputs` new orders.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

from bench.config import FAIR, BenchContext, Sizes
from bench.inputs import order_records
from bench.kafka_io import produce, wait_committed
from bench.report import Row
from choreo.runtime.store import PartitionStore, state_dir_of, store_path
from choreo.settings import Settings
from consumers.packaging.service import RESERVATIONS, STOCK, stock_key
from consumers.reference import hubs
from consumers.saga import saga_key
from harness.deploy import deploy
from harness.offsets import end_offsets
from harness.processes import start_worker
from producers.seed import stocked_skus

SECTION = "7 memory"


def prefill(settings: Settings, keys: int) -> None:
    """`keys` reservation documents spread over the partitions, plus every shelf."""
    rng = random.Random(keys)
    hub_ids = sorted(hubs())
    for p in range(settings.partitions):
        store = PartitionStore(store_path(state_dir_of(settings), "packaging", p))
        store.begin()
        for hub in hub_ids:
            for sku in stocked_skus(hub):
                shelf = {"on_hand": FAIR.stock_per_shelf, "reserved": 0, "shipped": 0}
                store.put(STOCK, stock_key(hub, sku), shelf)
        for _ in range(keys // settings.partitions + (p < keys % settings.partitions)):
            hub = rng.choice(hub_ids)
            order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            store.put(RESERVATIONS, saga_key(hub, order_id), {
                "package_id": order_id, "sku": "SKU-0001", "quantity": 1, "status": "reserved",
            })
        store.commit()
        store.close()


def run_memory(ctx: BenchContext, sizes: Sizes, say: Callable[[str], None]) -> list[Row]:
    rows = []
    for index, keys in enumerate(sizes.memory_keys):
        dep = deploy(ctx.settings(f"memory{keys}"))
        s, topic = dep.settings, dep.topic("orders")
        prefill(s, keys)
        row = Row(f"memory.rss.{index}", SECTION, f"worker peak RSS, {keys:,} keys of state", "MiB")
        for run in range(sizes.runs):
            produce(s, topic, order_records(dep.codec, topic, sizes.memory_inputs, FAIR.partitions,
                                            seed=1000 + run))
            child = start_worker(s, "packaging", ctx.log_dir, log_level="WARNING")
            try:
                wait_committed(s, s.group("packaging"), topic, end_offsets(s, topic), 300,
                               child.alive, child.name)
                row.runs.append(child.peak_rss_mib())
            finally:
                child.stop()
            say(f"memory {keys:,} keys run {run + 1}/{sizes.runs}: {row.runs[-1]:.1f} MiB")
        rows.append(row)
    return rows
