"""The saga (or any domain's services) deployed on the stack under one topic prefix: every topic
created, every schema registered, and the seed (stock and drones) sent and applied."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from choreo.contract import Service
from choreo.domain import installation
from choreo.edge import CommandSender
from choreo.kafka import clients
from choreo.provision import provision
from choreo.serde.codec import Codec
from choreo.serde.schemas import EventSchema
from choreo.settings import Settings
from harness.topics import LOG_APPEND_TIME
from harness.watch import wait_seeded
from producers import seed


@dataclass
class Deployment:
    """The services' topics and registered schemas under `settings.topic_prefix`, and a codec."""

    settings: Settings
    services: list[Service]
    schemas: dict[str, EventSchema]  # full name -> schema, as registered
    codec: Codec
    _sender: CommandSender | None = field(default=None, repr=False)

    def topic(self, logical: str) -> str:
        return self.settings.topic(logical)

    @property
    def sender(self) -> CommandSender:
        """The edge's command producer on this deployment (made on first use)."""
        if self._sender is None:
            self._sender = CommandSender(self.settings, self.codec)
        return self._sender

    def send(self, commands: Iterable[Any]) -> None:
        self.sender.send_all(commands)

    def send_seed(self, at: datetime, stock: int = seed.STOCK_PER_SKU) -> set[str]:
        """Send the seed (every shelf stocked with `stock`, every fleet); the ids of its commands."""
        commands = [*seed.stock_commands(at, stock), *seed.fleet_commands(at)]
        self.send(commands)
        return {c.event_id for c in commands}

    def wait_seeded(self, seed_ids: set[str], timeout: float = 120) -> None:
        """Wait until the workers have answered every seed command.

        Stock and drones arrive on other topics than orders, and topics are not ordered against
        each other: an order placed before the seed is applied may find an empty shelf.
        """
        if seed_ids:
            wait_seeded(self.settings, self.codec, seed_ids, timeout)


def deploy(
    settings: Settings,
    services: Sequence[Service] | None = None,
    schemas: dict[str, EventSchema] | None = None,
    log_append: Iterable[str] = (),
) -> Deployment:
    """Create every topic of `services` (default: every installed service), those in `log_append`
    stamped by the broker, and register their schemas (default: loaded from the domains)."""
    services = list(services) if services is not None else list(installation().services)
    # Made as `choreo topics create` and `choreo schemas register` make them.
    stamped = dict.fromkeys(log_append, LOG_APPEND_TIME)
    done = provision(settings, services, schemas, extra_config=stamped)
    return Deployment(settings, services, done.schemas,
                      Codec(clients.registry_client(settings), done.schemas.values()))
