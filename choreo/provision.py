"""What a saga needs on the cluster before it runs: its topics, and its schemas registered.

The one way they are made, for `choreo topics create` and `choreo schemas register`, the demo,
the test harness and the benchmarks alike, so that what the tests run on is what users get.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from choreo import bootstrap
from choreo.contract import Service
from choreo.domain import installation
from choreo.kafka import clients
from choreo.kafka.topics import create_topics, logical_topics
from choreo.serde.registration import Registered, register_all
from choreo.serde.schemas import EventSchema, load_event_schemas
from choreo.settings import Settings


@dataclass(frozen=True)
class Provisioned:
    topics: list[str]  # every logical topic of the services
    created: list[str]  # the physical topics this call created (the others existed)
    registered: list[Registered]
    schemas: dict[str, EventSchema]  # full name -> schema, as registered


def installed_schemas(services: Sequence[Service]) -> dict[str, EventSchema]:
    """The schema of every event class the services read or write, from the domains' folders."""
    return load_event_schemas(bootstrap.event_classes(services), *bootstrap.schema_roots())


def create_all_topics(
    settings: Settings, services: Sequence[Service] | None = None,
    extra_config: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[list[str], list[str]]:
    """Every topic of `services` (default: the installed ones): (logical names, created)."""
    services = list(services) if services is not None else list(installation().services)
    names = logical_topics(services)
    return names, create_topics(clients.admin_client(settings), settings, names,
                                extra_config=extra_config)


def register_schemas(
    settings: Settings, services: Sequence[Service] | None = None,
    schemas: dict[str, EventSchema] | None = None,
) -> tuple[list[Registered], dict[str, EventSchema]]:
    """Register the schema of every event of `services` under its topic's subject."""
    services = list(services) if services is not None else list(installation().services)
    schemas = schemas if schemas is not None else installed_schemas(services)
    return register_all(clients.registry_client(settings), settings, services, schemas), schemas


def provision(
    settings: Settings, services: Sequence[Service] | None = None,
    schemas: dict[str, EventSchema] | None = None,
    extra_config: Mapping[str, Mapping[str, str]] | None = None,
) -> Provisioned:
    """Topics created (those missing) and schemas registered, for `services` (default: installed)."""
    services = list(services) if services is not None else list(installation().services)
    names, created = create_all_topics(settings, services, extra_config)
    registered, schemas = register_schemas(settings, services, schemas)
    return Provisioned(names, created, registered, schemas)
