"""The stack file (`<state>/stack.json`): how a started stack is reached, read by every command."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from choreo.stack.layout import StackLayout
from choreo.stack.ports import HOST


@dataclass(frozen=True)
class StackInfo:
    """Ports and identity of one local stack; everything else is derived from these."""

    brokers: int
    kafka_ports: list[int]
    controller_ports: list[int]
    registry_port: int
    management_port: int
    cluster_id: str
    kafka_version: str = ""
    apicurio_version: str = ""
    java: dict[str, str] = field(default_factory=dict)

    @property
    def node_ids(self) -> list[int]:
        return list(range(1, self.brokers + 1))

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{HOST}:{port}" for port in self.kafka_ports)

    @property
    def registry_root(self) -> str:
        return f"http://{HOST}:{self.registry_port}"

    @property
    def schema_registry_url(self) -> str:
        """The Confluent-compatible base URL that confluent-kafka's client is given."""
        return f"{self.registry_root}/apis/ccompat/v7"

    def components(self) -> list[str]:
        return [*(f"kafka-{n}" for n in self.node_ids), "registry"]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["bootstrap_servers"] = self.bootstrap_servers
        data["schema_registry_url"] = self.schema_registry_url
        data["registry_root"] = self.registry_root
        return data


def save(layout: StackLayout, info: StackInfo) -> None:
    layout.stack_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = layout.stack_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n")
    tmp.replace(layout.stack_file)


def load(layout: StackLayout) -> StackInfo | None:
    """The saved stack info, or None if this state folder never had a stack."""
    try:
        data = json.loads(layout.stack_file.read_text())
    except (OSError, ValueError):
        return None
    known = StackInfo.__dataclass_fields__
    return StackInfo(**{k: v for k, v in data.items() if k in known})
