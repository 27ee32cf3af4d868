"""The toy pipeline set up on the real stack: topics, schemas, input, workers, read-back."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from choreo.kafka import clients
from choreo.serde.schemas import load_event_schemas
from harness.deploy import deploy
from harness.offsets import committed_to_end
from tests.support import toy
from tests.support.stack_slice import StackSlice
from tests.support.topic_reader import ReadRecord, read_topic

SERVICES = [toy.COUNTER, toy.DOUBLER]
HUBS = [f"hub-{i}" for i in range(7)]


class ToyPipeline(StackSlice):
    domains = "tests.support.toy:DOMAIN"

    def __init__(
        self, bootstrap: str, registry_url: str, prefix: str, tmp: Path, replication_factor: int = 1
    ) -> None:
        super().__init__(bootstrap, registry_url, prefix, tmp, replication_factor=replication_factor)
        schemas = load_event_schemas(
            [toy.AddNumber, toy.NumberCounted, toy.SumDoubled], *toy.DOMAIN.schema_dirs
        )
        deployment = deploy(self.settings, SERVICES, schemas)
        self.schemas, self.codec = deployment.schemas, deployment.codec
        self.totals: dict[str, int] = defaultdict(int)
        self._producer = clients.plain_producer(self.settings)

    def produce_numbers(self, n: int) -> list[toy.AddNumber]:
        now = datetime.now(UTC)
        commands = []
        for i in range(n):
            hub = HUBS[i % len(HUBS)]
            cmd = toy.AddNumber(str(uuid.uuid4()), hub, now, i % 7 + 1)
            self.totals[hub] += cmd.value
            commands.append(cmd)
        self.resend(commands)
        return commands

    def resend(self, commands: list[toy.AddNumber]) -> None:
        """Produce `commands` (again: the counter decides nothing for a command it has seen)."""
        topic = self.topic("counter.commands")
        for cmd in commands:
            self._producer.produce(topic, key=cmd.hub.encode(), value=self.codec.encode(topic, cmd))
            self._producer.poll(0)
        assert self._producer.flush(30) == 0

    def input_committed(self, service: str, logical_topic: str) -> bool:
        """Whether `service`'s group has committed `logical_topic` up to its end."""
        return committed_to_end(self.settings, self.settings.group(service), self.topic(logical_topic))

    def produce_raw(self, value: bytes, hub: str = "hub-0") -> None:
        self._producer.produce(self.topic("counter.commands"), key=hub.encode(), value=value)
        assert self._producer.flush(30) == 0

    def expected_totals(self) -> dict[str, int]:
        return dict(self.totals)

    def counted(self) -> list[ReadRecord]:
        return read_topic(self.settings, self.topic("counter"), self.codec)

    def doubled(self) -> list[ReadRecord]:
        return read_topic(self.settings, self.topic("doubler"), self.codec)

    def dead_letters(self) -> list[ReadRecord]:
        return read_topic(self.settings, self.topic("counter.dlq"))
