"""Creating the saga's topics and checking that they are co-partitioned."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from choreo.contract import Service
from choreo.exceptions import ConfigurationError
from choreo.settings import Settings

# Event and command topics are the source of truth: keep them forever.
KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}


def topic_config(replication_factor: int) -> dict[str, str]:
    """The configuration every topic of a deployment is created with: kept forever and, with
    three copies or more, `min.insync.replicas` 2, so that a write the producers' `acks=all`
    calls acknowledged is on two brokers at least (with the broker's default of 1 it can be on the
    leader alone, and lost with it). A replication factor of -1 (the broker's default) is not
    known here: the broker's own `min.insync.replicas` applies."""
    config = dict(KEEP_FOREVER)
    if replication_factor >= 3:
        config["min.insync.replicas"] = "2"
    return config


def logical_topics(services: Iterable[Service]) -> list[str]:
    """Every logical topic the services read or write, DLQs and retry topics included, in a
    stable order."""
    names: set[str] = set()
    for s in services:
        names.update(s.inputs)
        names.add(s.own_topic)
        names.add(s.dlq_topic)
        names.add(s.retry_topic)
    return sorted(names)


def create_topics(
    admin: AdminClient, settings: Settings, logical: Iterable[str], timeout: float = 30.0,
    extra_config: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Create the missing topics (prefixed), all with the same partition count and
    `topic_config`, plus `extra_config` for some (logical name -> settings); return the new ones
    once every partition of each has a leader."""
    extra = extra_config or {}
    existing = set(admin.list_topics(timeout=timeout).topics)
    new = [
        NewTopic(
            settings.topic(t),
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            config={**topic_config(settings.replication_factor), **extra.get(t, {})},
        )
        for t in logical
        if settings.topic(t) not in existing
    ]
    if not new:
        return []
    created = []
    for name, future in admin.create_topics(new, operation_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as e:
            if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise ConfigurationError(f"could not create topic {name}: {e.args[0].str()}") from e
    for name in created:
        _wait_for_leaders(admin, name, settings.partitions, timeout)
    return created


def create_like(admin: AdminClient, name: str, like: str, timeout: float = 30.0) -> bool:
    """Create topic `name` with the partition count and replication of topic `like`, kept
    forever, unless it exists (or `like` does not); True if this call created it.

    For topics that deployments made before they existed (a retry topic, a DLQ's retry log):
    same partition count as their model, so a key's partition is the same number in both.
    """
    meta = admin.list_topics(timeout=timeout).topics
    if name in meta and meta[name].error is None:
        return False
    if like not in meta or meta[like].error is not None:
        return False  # nothing to copy: whoever needs `like` says that it is missing
    partitions = meta[like].partitions
    replicas = len(next(iter(partitions.values())).replicas)
    new = NewTopic(name, num_partitions=len(partitions), replication_factor=replicas,
                   config=topic_config(replicas))
    try:
        admin.create_topics([new], operation_timeout=timeout)[name].result()
    except KafkaException as e:
        if e.args[0].name() != "TOPIC_ALREADY_EXISTS":  # another process made it first: fine
            raise ConfigurationError(
                f"could not create topic {name}: {e.args[0].str()}; run `choreo topics create` "
                "as a user who may create topics"
            ) from e
        return False
    _wait_for_leaders(admin, name, len(partitions), timeout)
    return True


def _wait_for_leaders(admin: AdminClient, name: str, partitions: int, timeout: float) -> None:
    # A consumer subscribing before every partition has a leader could be assigned none of them
    # until its next metadata refresh, minutes later.
    deadline = time.monotonic() + timeout
    while True:
        topic = admin.list_topics(name, timeout=timeout).topics.get(name)
        parts = {} if topic is None or topic.error is not None else topic.partitions
        if len(parts) == partitions and all(p.leader >= 0 for p in parts.values()):
            return
        if time.monotonic() > deadline:
            raise ConfigurationError(f"topic {name} was created but has no leader after {timeout:.0f} s")
        time.sleep(0.1)  # polling metadata with a deadline: there is no event to wait on


def partition_counts(admin: AdminClient, topics: Iterable[str], timeout: float = 30.0) -> dict[str, int]:
    meta = admin.list_topics(timeout=timeout).topics
    counts = {}
    for t in topics:
        if t not in meta or meta[t].error is not None:
            raise ConfigurationError(f"topic {t} does not exist: run `choreo topics create`")
        counts[t] = len(meta[t].partitions)
    return counts


def require_copartitioned(admin: AdminClient, topics: Iterable[str]) -> int:
    """The common partition count of `topics`; refuse to run when they differ.

    A saga's events are keyed alike on every topic, so one key's records sit on the same
    partition number everywhere only when every topic has the same partition count.
    """
    return common_partition_count(
        partition_counts(admin, topics),
        "every saga topic needs the same partition count, or a saga's events would land on "
        "different partitions",
    )


def common_partition_count(counts: Mapping[str, int], why: str) -> int:
    """The one partition count of `counts` (topic -> count); a ConfigurationError naming each
    topic's count, and `why` it matters here, when they differ."""
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{t}={n}" for t, n in sorted(counts.items()))
        raise ConfigurationError(f"topics are not co-partitioned ({detail}): {why}")
    return next(iter(counts.values()))
