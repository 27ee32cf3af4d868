"""The drone-delivery saga on the real stack: topics, schemas, seed, the four workers, orders."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from choreo import bootstrap
from choreo.kafka import clients
from choreo.kafka.topics import create_topics, logical_topics
from choreo.serde.registration import register_all
from choreo.serde.schemas import load_event_schemas
from producers import seed
from producers.edge import CommandSender
from producers.saga_watch import SagaWatcher
from tests.support.stack_slice import StackSlice
from tests.support.topic_reader import ReadRecord, read_topic


class SagaRun(StackSlice):
    """A test's own copy of the saga: prefixed topics, registered schemas, seeded hubs."""

    def __init__(
        self, bootstrap_servers: str, registry_url: str, prefix: str, tmp: Path,
        replication_factor: int = 1,
    ) -> None:
        super().__init__(
            bootstrap_servers, registry_url, prefix, tmp, partitions=4,
            replication_factor=replication_factor,
        )
        self.services = bootstrap.load_all_services()
        schemas = load_event_schemas(bootstrap.event_classes(self.services), *bootstrap.schema_roots())
        create_topics(clients.admin_client(self.settings), self.settings, logical_topics(self.services))
        register_all(clients.registry_client(self.settings), self.settings, self.services, schemas)
        self.codec = bootstrap.build_codec(self.settings, self.services)
        self.sender = CommandSender(self.settings, self.codec)
        self._seed_ids: set[str] = set()

    def seed(self, at: Any, stock: int = seed.STOCK_PER_SKU) -> None:
        """Send the seed; the first order waits until it is applied (see start_all)."""
        commands = [*seed.stock_commands(at, stock), *seed.fleet_commands(at)]
        self.sender.send_all(commands)
        self._seed_ids.update(c.event_id for c in commands)

    def start_all(self) -> None:
        """Start the four workers and wait until they have applied the seed.

        Stock and drones arrive on other topics than orders, and topics are not ordered against
        each other: an order placed before the seed is applied may find an empty shelf.
        """
        for name in bootstrap.service_names():
            self.start(name)
        self.wait_seeded()

    def wait_seeded(self, timeout: float = 120) -> None:
        if not self._seed_ids:
            return
        watcher = SagaWatcher(self.settings, self.codec, topics=("packaging", "drones"))
        try:
            assert watcher.wait_answered(self._seed_ids, timeout), "the seed was never applied"
        finally:
            watcher.close()

    def send(self, commands: Iterable[Any]) -> None:
        self.sender.send_all(commands)

    def wait_for_ends(self, order_ids: Iterable[str], timeout: float = 180) -> dict[str, str]:
        """Poll the event topics until every order has ended; return order id -> how it ended."""
        watcher = SagaWatcher(self.settings, self.codec)
        try:
            return watcher.wait_ended(set(order_ids), timeout)
        finally:
            watcher.close()

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
