"""An in-memory driver of the four services: topics as lists, deliveries in a random interleaving.

Each service reads each subscribed topic in order (as Kafka guarantees per partition), but which
topic it reads next, and which service moves next, is chosen by the random generator: that is the
freedom a real deployment has across topics.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from choreo.contract import Service
from choreo.testing import MemoryState
from tests.support.reference import SERVICE_NAMES, load_service

COMMAND_TOPICS = {
    "PlaceOrder": "orders.commands",
    "CancelOrder": "orders.commands",
    "AddStock": "packaging.commands",
    "RegisterDrone": "drones.commands",
}


class SagaSim:
    """Routes records between services' decide/evolve, checking the runtime's rules on the way."""

    def __init__(self, rng: random.Random, names: Iterable[str] = SERVICE_NAMES) -> None:
        self.rng = rng
        self.services: dict[str, Service] = {n: load_service(n) for n in names}
        self.states = {n: MemoryState() for n in self.services}
        self.topics: dict[str, list[Any]] = {}
        self.log: list[tuple[str, Any]] = []  # (topic, record) in the order they were written
        self.cursors = {(n, t): 0 for n, s in self.services.items() for t in s.inputs}

    def send(self, *commands: Any) -> None:
        """Write edge commands to their command topics."""
        for command in commands:
            self._write(COMMAND_TOPICS[type(command).__name__], command)

    def _write(self, topic: str, record: Any) -> None:
        self.topics.setdefault(topic, []).append(record)
        self.log.append((topic, record))

    def pending(self) -> list[tuple[str, str]]:
        """(service, topic) pairs with a record not yet read."""
        return [(n, t) for (n, t), pos in self.cursors.items() if pos < len(self.topics.get(t, []))]

    def step(self) -> bool:
        """Deliver one record to one service; False when nothing is pending."""
        ready = self.pending()
        if not ready:
            return False
        name, topic = self.rng.choice(ready)
        record = self.topics[topic][self.cursors[(name, topic)]]
        self.cursors[(name, topic)] += 1
        self._process(name, topic, record)
        return True

    def run(self, max_steps: int = 1_000_000) -> None:
        """Step until every service has read everything."""
        for _ in range(max_steps):
            if not self.step():
                return
        raise AssertionError(f"still busy after {max_steps} steps")

    def _process(self, name: str, topic: str, record: Any) -> None:
        service = self.services[name]
        # The runtime dead-letters a type a service did not subscribe to: here that is a bug.
        assert service.accepts(topic, type(record)), f"{name} does not accept {type(record)} on {topic}"
        state = self.states[name]
        for out in service.decide(state, record):
            assert type(out) in service.emits, f"{name} emitted {type(out)}"
            assert out.hub == record.hub and out.causation_id == record.event_id
            assert out.occurred_at == record.occurred_at
            service.evolve(state, out)
            self._write(service.own_topic, out)

    def events(self) -> list[Any]:
        """Every record written, in write order."""
        return [record for _, record in self.log]

    def shuffled_events(self) -> list[Any]:
        """Every record, topics merged in a random order that keeps each topic's own order."""
        queues = {t: list(records) for t, records in self.topics.items()}
        merged: list[Any] = []
        while queues:
            topic = self.rng.choice(sorted(queues))
            merged.append(queues[topic].pop(0))
            if not queues[topic]:
                del queues[topic]
        return merged

    def rebuild(self, name: str) -> MemoryState:
        """A fresh state from the service's own topic alone, as `choreo rebuild` does."""
        service = self.services[name]
        state = MemoryState()
        for record in self.topics.get(service.own_topic, []):
            service.evolve(state, record)
        return state

    def of_order(self, order_id: str) -> list[str]:
        """The type names of an order's records, in write order."""
        return [type(r).__name__ for _, r in self.log if getattr(r, "order_id", None) == order_id]
