"""The drone-delivery saga on the real stack: topics, schemas, seed, the four workers, orders."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from choreo.domain import installation
from harness.deploy import deploy
from harness.watch import wait_for_ends
from producers import seed
from tests.support.stack_slice import StackSlice
from tests.support.topic_reader import ReadRecord, read_topic


class SagaRun(StackSlice):
    """A test's own copy of the saga: prefixed topics, registered schemas, seeded hubs."""

    def __init__(
        self, bootstrap_servers: str, registry_url: str, prefix: str, tmp: Path,
        replication_factor: int = 1, partitions: int = 4,
    ) -> None:
        super().__init__(
            bootstrap_servers, registry_url, prefix, tmp, partitions=partitions,
            replication_factor=replication_factor,
        )
        self.deployment = deploy(self.settings)
        self.codec = self.deployment.codec
        self.sender = self.deployment.sender
        self._seed_ids: set[str] = set()

    def seed(self, at: Any, stock: int = seed.STOCK_PER_SKU) -> None:
        """Send the seed; the first order waits until it is applied (see start_all)."""
        self._seed_ids |= self.deployment.send_seed(at, stock)

    def start_all(self) -> None:
        """Start the four workers and wait until they have applied the seed."""
        for name in installation().service_names:
            self.start(name)
        self.wait_seeded()

    def wait_seeded(self, timeout: float = 120) -> None:
        self.deployment.wait_seeded(self._seed_ids, timeout)

    def send(self, commands: Iterable[Any]) -> None:
        self.deployment.send(commands)

    def wait_for_ends(self, order_ids: Iterable[str], timeout: float = 180) -> dict[str, str]:
        """Poll the event topics until every order has ended; return order id -> how it ended."""
        return wait_for_ends(self.settings, self.codec, order_ids, timeout)

    def events(self, logical: str) -> list[ReadRecord]:
        return read_topic(self.settings, self.topic(logical), self.codec)

    def raw(self, logical: str) -> list[ReadRecord]:
        return read_topic(self.settings, self.topic(logical))

    def saga(self, order_id: str) -> list[str]:
        """Every event type of one saga across the event topics (per topic in log order)."""
        names = []
        for topic in ("orders", "packaging", "drones", "delivery"):
            names += [type(r.event).__name__ for r in self.events(topic)
                      if getattr(r.event, "order_id", None) == order_id]
        return names
