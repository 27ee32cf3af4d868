"""Topics for a test or a measurement: a fresh prefix, created topics with a leader on every partition."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from confluent_kafka.admin import AdminClient, NewTopic

# Topics stamped by the broker when a batch is appended: the bench's rates come from these, so every
# contender is measured the same way and none pays for reading a clock per record.
LOG_APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


def unique_prefix() -> str:
    """A topic / group prefix no other test (or earlier run) uses."""
    return f"t{uuid.uuid4().hex[:10]}."


def create_topics(
    bootstrap: str | AdminClient,
    names: Iterable[str],
    partitions: int = 1,
    config: dict[str, str] | None = None,
    replication_factor: int = -1,
    timeout: float = 30.0,
) -> None:
    """Create the missing topics (replication -1: the broker's default) and wait until every
    partition of every one of `names` has a leader."""
    admin = AdminClient({"bootstrap.servers": bootstrap}) if isinstance(bootstrap, str) else bootstrap
    names = list(names)
    existing = admin.list_topics(timeout=timeout).topics
    wanted = [n for n in names if n not in existing]
    if wanted:
        futures = admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=replication_factor,
                      config=config or {}) for n in wanted],
            operation_timeout=timeout,
        )
        for future in futures.values():
            future.result(timeout)
    wait_for_leaders(admin, names, partitions, timeout)


def wait_for_leaders(admin: AdminClient, names: list[str], partitions: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        meta = admin.list_topics(timeout=5).topics
        if all(
            n in meta and meta[n].error is None and len(meta[n].partitions) == partitions
            and all(p.leader >= 0 for p in meta[n].partitions.values())
            for n in names
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {names} have no leaders after {timeout}s")
        time.sleep(0.1)  # polling metadata with a deadline
