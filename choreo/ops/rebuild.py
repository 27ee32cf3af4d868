"""Rebuild a service's partition stores from its own topic, or verify a live store against one.

Partitions are independent folds, so they are rebuilt in parallel, one process per usable CPU
(choreo/cpus.py: a container's CPU quota counts; at most one per partition): decode and evolve
are Python, bound to one core per process.

Rebuild and verify replay through restore_partitions, so they skip the same foreign records as a
worker's restore. A rebuild copies a skipped record to the DLQ only when the DLQ holds no copy of
it yet (a worker's restore copied most; a live worker's checkpoint can pass one it never read),
so running it again adds none; verify writes nothing. A partition that holds a record that cannot
be read now, or one whose `evolve` raises, is reported failed and its live store left as it is;
the others go on. `skip_offsets` lets a rebuild of one partition past records of the first kind
that an operator knows are junk (foreign_records.check_skippable says which may be named).
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
from choreo.cpus import usable_cpus
from choreo.exceptions import ConfigurationError, StoreLockedError
from choreo.kafka import clients
from choreo.kafka.topics import partition_counts
from choreo.ops.log_reader import read_log
from choreo.runtime.dead_letters import ERROR_CLASS, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from choreo.runtime.foreign_records import (
    ForeignRecordError,
    SkippedRecords,
    check_skippable,
    installed_types_elsewhere,
)
from choreo.runtime.restore import PartitionsNotRestored, restore_partitions
from choreo.runtime.store import (
    PartitionStore,
    StoreOwner,
    lock_store,
    make_folder,
    state_dir_of,
    store_path,
)
from choreo.serde.codec import Codec
from choreo.settings import Settings


@dataclass(frozen=True)
class PartitionRebuild:
    partition: int
    events: int
    rebuilt_hash: str
    live_hash: str | None
    checkpoint: int
    skipped: int = 0  # records on the own topic that the service did not write
    copied: int = 0  # of those, copied to the DLQ by this rebuild (none was there yet)
    failed: str | None = None  # why the partition could not be rebuilt (its live store is kept)

    @property
    def matches(self) -> bool:
        return self.failed is None and (self.live_hash is None or self.live_hash == self.rebuilt_hash)


def partitions_of(settings: Settings, service: Service) -> list[int]:
    own = settings.topic(service.own_topic)
    return list(range(partition_counts(clients.admin_client(settings), [own])[own]))


def checked_partitions(settings: Settings, service: Service, wanted: list[int] | None) -> list[int]:
    """`wanted` (default: all) once each is known to be a partition of the own topic."""
    every = partitions_of(settings, service)
    if wanted is None:
        return every
    unknown = sorted(set(wanted) - set(every))
    if unknown:
        raise ConfigurationError(
            f"{settings.topic(service.own_topic)} has no partition {', '.join(map(str, unknown))}: "
            f"its partitions are 0 to {len(every) - 1}"
        )
    return sorted(set(wanted))


def checked_skips(partitions: list[int] | None, offsets: list[int] | None) -> dict[int, frozenset[int]]:
    """--skip-offset's offsets as partition -> offsets: offsets belong to one partition, so
    they need exactly one --partition."""
    if not offsets:
        return {}
    if partitions is None or len(set(partitions)) != 1:
        raise ConfigurationError(
            "--skip-offset needs exactly one --partition, the partition whose offsets it names"
        )
    return {partitions[0]: frozenset(offsets)}


def rebuild(
    settings: Settings,
    service: Service,
    codec: Codec,
    partitions: list[int] | None = None,
    verify: bool = False,
    jobs: int | None = None,
    skip_offsets: list[int] | None = None,
) -> list[PartitionRebuild]:
    """Replay the own topic into fresh stores, in `jobs` processes (default: one per CPU this
    process may use, its affinity capped by its cgroup's CPU quota, at most one per partition);
    results in partition order.

    verify=False replaces each live store with its rebuild. It holds the store's lock from
    before the replay until the file is replaced, so no worker can open the old file meanwhile
    (a worker that tries waits, and restarts if the rebuild takes longer than its lock wait).
    verify=True leaves the live store alone and compares hashes up to the live checkpoint, where
    both must be the same fold of the same events.

    `skip_offsets` (with exactly one partition) are offsets of records the rule holds back that
    are skipped as foreign instead; any other offset is refused before anything is replaced.
    """
    skips = checked_skips(partitions, skip_offsets)
    parts = checked_partitions(settings, service, partitions)
    jobs = min(len(parts), jobs or usable_cpus())
    if jobs <= 1:
        return _rebuild_group(settings, service, codec, parts, verify, skips)
    global _JOB
    # Handed to the children by fork, not by pickling: a codec holds a registry client.
    _JOB = (settings, service, codec, verify, skips)
    try:
        groups = [parts[i::jobs] for i in range(jobs)]
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            done = list(pool.map(_rebuild_in_child, groups))
    finally:
        _JOB = None
    return sorted((r for group in done for r in group), key=lambda r: r.partition)


_JOB: tuple[Settings, Service, Codec, bool, dict[int, frozenset[int]]] | None = None


def _rebuild_in_child(parts: list[int]) -> list[PartitionRebuild]:
    assert _JOB is not None
    settings, service, codec, verify, skips = _JOB
    codec.reconnect(clients.registry_client(settings))
    return _rebuild_group(settings, service, codec, parts, verify, skips)


def _rebuild_group(
    settings: Settings, service: Service, codec: Codec, parts: list[int], verify: bool,
    skips: dict[int, frozenset[int]],
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
        elsewhere = installed_types_elsewhere(service)
        reader = clients.reader_consumer(settings)
        for p, offsets in skips.items():  # refused before any replay or replacement
            check_skippable(reader, codec, service, own, p, offsets, elsewhere)
        live = {p: _live(paths[p]) for p in parts} if verify else {}
        for p in parts:
            fd, tmp = _temp_file(paths[p].parent)
            os.close(fd)
            temps[p] = Path(tmp)
            fresh[p] = PartitionStore(temps[p], lock=False, owner=StoreOwner.of(settings, service.name))
        dlq = None if verify else settings.topic(service.dlq_topic)  # verify writes nothing
        skipped = SkippedRecords(
            service.name, dlq, lambda: clients.plain_producer(settings),
            copied=lambda p: _copied(settings, own, settings.topic(service.dlq_topic), p),
        )
        failed: dict[int, str] = {}
        try:
            applied = restore_partitions(
                reader, codec, service, own, fresh,
                stop_at={p: stop for p, (_hash, stop) in live.items()} if verify else None,
                skipped=skipped, elsewhere=elsewhere, skip_offsets=skips,
            )
        except PartitionsNotRestored as e:
            failed, applied = e.failed, e.applied  # the others are restored all the same
        results = [
            PartitionRebuild(p, applied.get(p, 0), fresh[p].state_hash(),
                             live[p][0] if verify else None, fresh[p].checkpoint(),
                             skipped.counts[p], skipped.copies[p], failed.get(p))
            for p in parts
        ]
        for store in fresh.values():
            store.close()
        fresh.clear()
        for p in parts:
            if verify or p in failed:
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


def _temp_file(folder: Path) -> tuple[int, str]:
    """A new store file in the store's folder, made if need be; one sentence if it cannot be."""
    make_folder(folder)
    try:
        return tempfile.mkstemp(suffix=".sqlite", dir=folder)
    except OSError as e:
        raise ConfigurationError(
            f"cannot create a store in {folder} ({e.strerror or e}): CHOREO_STATE_DIR must name a "
            "folder this process may write"
        ) from e


def _copied(settings: Settings, own: str, dlq: str, partition: int) -> set[int]:
    """Offsets of own-topic `partition`'s records that a replay already copied to the DLQ (on
    the same partition number)."""
    found: set[int] = set()
    for r in read_log(settings, [dlq], partitions=[partition]):
        h = r.headers  # a copy's own headers come after the record's: they win here
        if (h.get(ERROR_CLASS) == ForeignRecordError.__name__.encode()
                and h.get(SOURCE_TOPIC) == own.encode()
                and h.get(SOURCE_PARTITION) == str(partition).encode()):
            try:
                found.add(int(h.get(SOURCE_OFFSET, b"")))
            except ValueError:
                continue
    return found


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

