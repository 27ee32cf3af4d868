"""Sagas in flight for longer than an age, and which services have not read their events yet.

A saga waits on a service when that service subscribes to one of the saga's events and its
consumer group has not committed past it: the service owes the saga its next step. For each such
service the listing gives its lag on that partition and whether any instance is in its group
(a worker stopped for longer than its session timeout is not). A saga whose every event has been
read by every subscriber waits for something no log shows (a timer, or a service that decided
nothing): it is listed with nobody named.

Reads every service's own topic from the beginning (committed records only), like `audit`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from choreo.contract import Service
from choreo.domain import Installation
from choreo.kafka import clients
from choreo.kafka.group_offsets import committed_offsets
from choreo.ops.log_reader import LogRecord, read_log
from choreo.ops.records import saga_id_of
from choreo.serde.codec import Codec
from choreo.settings import Settings
from choreo.timers import TimerFired

_TIMEOUT_S = 10.0
T = TypeVar("T")  # how the caller names its sagas


@dataclass(frozen=True)
class Owing:
    """A service that has not read one of the saga's events yet."""

    service: str
    lag: int  # records it is behind on that partition of that topic
    running: bool  # any instance in its consumer group now
    topic: str  # logical
    event: str  # the type of the oldest event of the saga it has not read
    partition: int  # where that event is
    offset: int


@dataclass
class SagaInFlight:
    saga_id: str
    key: str | None
    started_ms: int
    last_ms: int = 0
    last_event: str = ""
    last_topic: str = ""
    records: list[LogRecord] = field(default_factory=list)
    owed_by: list[Owing] = field(default_factory=list)

    def age_s(self, now_ms: int) -> float:
        return (now_ms - self.started_ms) / 1000

    def as_json(self, now_ms: int) -> dict[str, Any]:
        return {
            "saga_id": self.saga_id, "key": self.key, "age_s": round(self.age_s(now_ms), 1),
            "last_event": self.last_event, "last_topic": self.last_topic,
            "owed_by": [o.__dict__ for o in self.owed_by],
        }


NOBODY_OWES = "nobody has an unread event (it waits for a timer, or for a decision that emitted nothing)"


def waiting_for(owing: Sequence[Owing]) -> str:
    """The services a saga waits for, in one line (`choreo sagas`, the UI's saga page)."""
    return "; ".join(
        f"{o.service} has not read {o.event} on {o.topic} (lag {o.lag}, "
        f"{'running' if o.running else 'NOT RUNNING'})" for o in owing
    ) or NOBODY_OWES


def sagas_in_flight(
    settings: Settings, installation: Installation, codec: Codec, older_than_s: float, now_ms: int,
) -> list[SagaInFlight]:
    """Every saga not ended whose first event is older than `older_than_s`, oldest first."""
    services = list(installation.services)
    physical = {settings.topic(s.own_topic): s.own_topic for s in services}
    field_name = installation.envelope.saga_field
    # By key and saga id: a saga id need be unique only under its partition key.
    sagas: dict[tuple[str | None, str], SagaInFlight] = {}
    ended: set[tuple[str | None, str]] = set()
    for record in read_log(settings, list(physical), codec):
        saga_id = saga_id_of(record, field_name)
        if saga_id is None:
            continue
        key = None if record.key is None else record.key.decode(errors="replace")
        which = (key, saga_id)
        if which in ended:
            continue
        if installation.outcome_of(record.event) is not None:
            ended.add(which)
            sagas.pop(which, None)
            continue
        found = sagas.get(which)
        if found is None:
            found = sagas[which] = SagaInFlight(saga_id, key, record.timestamp_ms)
        found.started_ms = min(found.started_ms, record.timestamp_ms)
        if record.timestamp_ms >= found.last_ms:
            found.last_ms, found.last_event = record.timestamp_ms, record.type_label
            found.last_topic = physical[record.topic]
        found.records.append(record)
    old = [s for s in sagas.values() if s.age_s(now_ms) > older_than_s]
    if old:
        owing = find_owing(settings, services, {(s.key, s.saga_id): s.records for s in old})
        for waiting in old:
            waiting.owed_by = owing[(waiting.key, waiting.saga_id)]
    return sorted(old, key=lambda s: s.started_ms)


def find_owing(
    settings: Settings, services: Sequence[Service], sagas: Mapping[T, Sequence[LogRecord]],
) -> dict[T, list[Owing]]:
    """Per saga (its records of any topics), the services that have not read one of its events
    on the services' own topics, with their lag there and whether any instance runs."""
    physical = {settings.topic(s.own_topic): s.own_topic for s in services}
    subscribers = {logical: [s for s in services if logical in s.inputs] for logical in physical.values()}
    admin = clients.admin_client(settings)
    reader = clients.reader_consumer(settings)
    committed: dict[str, dict[tuple[str, int], int]] = {}
    running: dict[str, bool] = {}
    ends: dict[tuple[str, int], int] = {}
    out: dict[T, list[Owing]] = {}
    try:
        for saga_id, records in sagas.items():
            owing: dict[str, Owing] = {}
            for record in records:
                logical = physical.get(record.topic)
                for s in subscribers.get(logical or "", ()):
                    if s.name in owing or not _takes(s, logical or "", record.event):
                        continue
                    group = settings.group(s.name)
                    if group not in committed:
                        committed[group] = _group_offsets(admin, group, settings, s)
                        running[group] = _has_members(admin, group)
                    done = committed[group].get((record.topic, record.partition), 0)
                    if done > record.offset:
                        continue
                    where = (record.topic, record.partition)
                    if where not in ends:
                        ends[where] = reader.get_watermark_offsets(
                            TopicPartition(*where), timeout=_TIMEOUT_S)[1]
                    owing[s.name] = Owing(s.name, max(0, ends[where] - done), running[group],
                                          logical or "", record.type_label, *where[1:], record.offset)
            out[saga_id] = sorted(owing.values(), key=lambda o: o.service)
    finally:
        reader.close()
    return out


def _takes(service: Service, logical: str, event: Any) -> bool:
    # Another service's timer records are skipped by its readers: nobody owes an answer to them.
    return event is not None and not isinstance(event, TimerFired) and service.accepts(logical, type(event))


def _group_offsets(
    admin: AdminClient, group: str, settings: Settings, service: Service
) -> dict[tuple[str, int], int]:
    topics = [settings.topic(t) for t in service.inputs]
    meta = admin.list_topics(timeout=_TIMEOUT_S).topics
    tps = [TopicPartition(t, p) for t in topics if t in meta for p in meta[t].partitions]
    try:
        return committed_offsets(admin, group, tps)
    except KafkaException:
        return {}  # a group that never committed: it owes everything it subscribes to


def _has_members(admin: AdminClient, group: str) -> bool:
    try:
        described = admin.describe_consumer_groups([group], request_timeout=_TIMEOUT_S)[group].result()
    except KafkaException:
        return False
    return bool(described.members)
