"""Rebuild a service's partition stores from its own topic, or verify a live store against one."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer

from choreo.contract import Service
from choreo.exceptions import StoreLockedError
from choreo.kafka import clients
from choreo.runtime.restore import restore_partitions
from choreo.runtime.store import PartitionStore, lock_store, state_dir_of, store_path
from choreo.serde.codec import Codec
from choreo.settings import Settings


@dataclass(frozen=True)
class PartitionRebuild:
    partition: int
    events: int
    rebuilt_hash: str
    live_hash: str | None
    checkpoint: int

    @property
    def matches(self) -> bool:
        return self.live_hash is None or self.live_hash == self.rebuilt_hash


def partitions_of(settings: Settings, service: Service) -> list[int]:
    meta = clients.admin_client(settings).list_topics(settings.topic(service.own_topic), timeout=30)
    topic = meta.topics[settings.topic(service.own_topic)]
    return sorted(topic.partitions)


def rebuild(
    settings: Settings,
    service: Service,
    codec: Codec,
    partitions: list[int] | None = None,
    verify: bool = False,
) -> list[PartitionRebuild]:
    """Replay the own topic into fresh stores.

    verify=False replaces each live store with its rebuild. It holds the store's lock from
    before the replay until the file is replaced, so no worker can open the old file meanwhile
    (a worker that tries waits, and restarts if the rebuild takes longer than its lock wait).
    verify=True leaves the live store alone and compares hashes up to the live checkpoint, where
    both must be the same fold of the same events.
    """
    own = settings.topic(service.own_topic)
    parts = partitions if partitions is not None else partitions_of(settings, service)
    reader = clients.reader_consumer(settings)
    results = []
    try:
        for p in parts:
            live_path = store_path(state_dir_of(settings), service.name, p)
            lock = None
            if not verify:
                try:
                    lock = lock_store(live_path, 0)
                except StoreLockedError as e:
                    raise StoreLockedError(
                        f"{service.name} partition {p} is held by a running worker; stop it "
                        "first or use --verify"
                    ) from e
            try:
                results.append(_rebuild_one(reader, codec, service, own, p, live_path, verify))
            finally:
                if lock is not None:
                    lock.close()  # releases the flock, after the new file is in place
    finally:
        reader.close()
    return results


def _rebuild_one(
    reader: Consumer, codec: Codec, service: Service, own: str, p: int, live_path: Path,
    verify: bool,
) -> PartitionRebuild:
    """Rebuild one partition into a temporary file; verify it or put it in place."""
    live_hash, stop = None, None
    if verify and live_path.exists():
        live = PartitionStore(live_path, lock=False)
        live_hash, stop = live.state_hash(), live.checkpoint()
        live.close()
    elif verify:
        live_hash, stop = _empty_hash(), 0
    fd, tmp = tempfile.mkstemp(suffix=".sqlite", dir=_ensure(live_path.parent))
    os.close(fd)
    fresh = PartitionStore(Path(tmp), lock=False)
    try:
        applied = restore_partitions(
            reader, codec, service, own, {p: fresh},
            stop_at=None if stop is None else {p: stop},
        )
        result = PartitionRebuild(
            p, applied.get(p, 0), fresh.state_hash(), live_hash, fresh.checkpoint()
        )
    finally:
        fresh.close()
    if verify:
        _remove_db(Path(tmp))
    else:
        _remove_db(live_path)
        os.replace(tmp, live_path)
    return result


def _empty_hash() -> str:
    import hashlib

    return hashlib.sha256().hexdigest()


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

