"""Rebuild a service's partition stores from its own topic, or verify a live store against one.

Partitions are independent folds, so they are rebuilt in parallel, one process per core (at
most one per partition): decode and evolve are Python, bound to one core per process.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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
    jobs: int | None = None,
) -> list[PartitionRebuild]:
    """Replay the own topic into fresh stores, in `jobs` processes (default: one per core this
    process may run on, at most one per partition); results in partition order.

    verify=False replaces each live store with its rebuild. It holds the store's lock from
    before the replay until the file is replaced, so no worker can open the old file meanwhile
    (a worker that tries waits, and restarts if the rebuild takes longer than its lock wait).
    verify=True leaves the live store alone and compares hashes up to the live checkpoint, where
    both must be the same fold of the same events.
    """
    parts = partitions if partitions is not None else partitions_of(settings, service)
    jobs = min(len(parts), jobs or len(os.sched_getaffinity(0)))
    if jobs <= 1:
        return _rebuild_group(settings, service, codec, parts, verify)
    global _JOB
    # Handed to the children by fork, not by pickling: a codec holds a registry client.
    _JOB = (settings, service, codec, verify)
    try:
        groups = [parts[i::jobs] for i in range(jobs)]
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            done = list(pool.map(_rebuild_in_child, groups))
    finally:
        _JOB = None
    return sorted((r for group in done for r in group), key=lambda r: r.partition)


_JOB: tuple[Settings, Service, Codec, bool] | None = None


def _rebuild_in_child(parts: list[int]) -> list[PartitionRebuild]:
    assert _JOB is not None
    settings, service, codec, verify = _JOB
    codec.reconnect(clients.registry_client(settings))
    return _rebuild_group(settings, service, codec, parts, verify)


def _rebuild_group(
    settings: Settings, service: Service, codec: Codec, parts: list[int], verify: bool
) -> list[PartitionRebuild]:
    """Rebuild `parts` together: one reader and one replay over all of them, so the fetches of
    the partitions overlap instead of each paying its own start and end of replay."""
    own = settings.topic(service.own_topic)
    paths = {p: store_path(state_dir_of(settings), service.name, p) for p in parts}
    locks: list[IO[str]] = []
    fresh: dict[int, PartitionStore] = {}
    temps: dict[int, Path] = {}
    reader = None
    try:
        if not verify:
            for p in parts:
                try:
                    locks.append(lock_store(paths[p], 0))
                except StoreLockedError as e:
                    raise StoreLockedError(
                        f"{service.name} partition {p} is held by a running worker; stop it "
                        "first or use --verify"
                    ) from e
        live = {p: _live(paths[p]) for p in parts} if verify else {}
        for p in parts:
            fd, tmp = tempfile.mkstemp(suffix=".sqlite", dir=_ensure(paths[p].parent))
            os.close(fd)
            temps[p] = Path(tmp)
            fresh[p] = PartitionStore(temps[p], lock=False)
        reader = clients.reader_consumer(settings)
        applied = restore_partitions(
            reader, codec, service, own, fresh,
            stop_at={p: stop for p, (_hash, stop) in live.items()} if verify else None,
        )
        results = [
            PartitionRebuild(p, applied.get(p, 0), fresh[p].state_hash(),
                             live[p][0] if verify else None, fresh[p].checkpoint())
            for p in parts
        ]
        for store in fresh.values():
            store.close()
        fresh.clear()
        for p in parts:
            if verify:
                _remove_db(temps[p])
            else:
                _remove_db(paths[p])
                os.replace(temps[p], paths[p])
        temps.clear()
        return results
    finally:
        for store in fresh.values():
            store.close()
        for left in temps.values():
            _remove_db(left)
        if reader is not None:
            reader.close()
        for lock in locks:
            lock.close()  # releases the flock, after the new file is in place


def _live(path: Path) -> tuple[str, int]:
    """The hash and checkpoint of a live store (an empty one when there is no file)."""
    if not path.exists():
        return _empty_hash(), 0
    live = PartitionStore(path, lock=False)
    try:
        return live.state_hash(), live.checkpoint()
    finally:
        live.close()


def _empty_hash() -> str:
    import hashlib

    return hashlib.sha256().hexdigest()


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

