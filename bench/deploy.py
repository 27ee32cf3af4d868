"""One isolated copy of the saga's topics and schemas on the stack, under a fresh prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import bench_settings
from bench.kafka_io import LOG_APPEND_TIME, create_topics
from bench.stack import Endpoints
from choreo import bootstrap
from choreo.contract import Service
from choreo.kafka import clients
from choreo.kafka.topics import logical_topics
from choreo.serde.codec import Codec
from choreo.serde.registration import register_all
from choreo.serde.schemas import load_event_schemas
from choreo.settings import Settings


@dataclass
class BenchContext:
    """What every measurement shares: the stack, a scratch folder, and unique prefixes."""

    endpoints: Endpoints
    work_dir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    def settings(self, name: str) -> Settings:
        """Settings of a fresh slice: prefix `bench.<run>.<name>.`, its own state folder."""
        prefix = f"bench.{self.run_id}.{name}."
        return bench_settings(
            self.endpoints.bootstrap_servers, self.endpoints.schema_registry_url,
            prefix, self.work_dir / "state",
        )


@dataclass
class Deployment:
    """The saga's topics (all services) and registered schemas under `settings.topic_prefix`."""

    settings: Settings
    services: list[Service]
    codec: Codec

    def topic(self, logical: str) -> str:
        return self.settings.topic(logical)


def deploy(settings: Settings, log_append: Iterable[str] = ()) -> Deployment:
    """Create every topic (those in `log_append` stamped by the broker) and register the schemas."""
    services = bootstrap.load_all_services()
    stamped = set(log_append)
    names = logical_topics(services)
    create_topics(settings, [settings.topic(t) for t in names if t not in stamped])
    if stamped:
        create_topics(settings, [settings.topic(t) for t in sorted(stamped)], LOG_APPEND_TIME)
    schemas = load_event_schemas(bootstrap.event_classes(services), *bootstrap.schema_roots())
    register_all(clients.registry_client(settings), settings, services, schemas)
    return Deployment(settings, services, bootstrap.build_codec(settings, services))
