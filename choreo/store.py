"""Local state of one service on one partition: JSON documents in SQLite, plus a checkpoint.

The checkpoint is the next offset of the service's own topic partition that has not yet been
applied through `evolve`. It is written in the same SQLite transaction as the state it describes,
so state and checkpoint can never disagree (the follower-with-tracking pattern).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from choreo.exceptions import StoreLockedError
from choreo.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    tbl   TEXT NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint (
    id          INTEGER PRIMARY KEY CHECK (id = 0),
    next_offset INTEGER NOT NULL
);
"""


def _encode(value: dict[str, Any]) -> str:
    # Canonical JSON: the same document always gives the same text, so dumps and hashes compare.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def state_dir_of(settings: Settings) -> Path:
    """Where the partition stores live; a topic prefix gets a folder of its own."""
    prefix = settings.topic_prefix.rstrip(".-_")
    return settings.state_dir / prefix if prefix else settings.state_dir


def store_path(state_dir: Path, service: str, partition: int) -> Path:
    return state_dir / service / f"p{partition:04d}.sqlite"


class PartitionStore:
    """State of (service, partition). Implements the domain's `State` protocol."""

    def __init__(self, path: Path, *, lock: bool = True, lock_wait_s: float = 0.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file: IO[str] | None = None
        if lock:
            self._lock_file = _acquire_lock(path, lock_wait_s)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per batch.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._in_txn = False

    # -- State protocol -----------------------------------------------------------------------

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT value FROM docs WHERE tbl = ? AND key = ?", (table, key)
        ).fetchone()
        return None if row is None else json.loads(row[0])  # type: ignore[no-any-return]

    def scan(self, table: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        # Range scan on the primary key: prefix <= key < prefix + U+10FFFF.
        # Lazy: a caller that stops at the first match reads (and decodes) one row, not all.
        cursor = self._db.execute(
            "SELECT key, value FROM docs WHERE tbl = ? AND key >= ? AND key < ? ORDER BY key",
            (table, prefix, prefix + "\U0010ffff"),
        )
        for key, value in cursor:
            yield key, json.loads(value)

    def put(self, table: str, key: str, value: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO docs (tbl, key, value) VALUES (?, ?, ?)",
            (table, key, _encode(value)),
        )

    def delete(self, table: str, key: str) -> None:
        self._db.execute("DELETE FROM docs WHERE tbl = ? AND key = ?", (table, key))

    # -- transactions -------------------------------------------------------------------------

    def begin(self) -> None:
        if not self._in_txn:
            self._db.execute("BEGIN IMMEDIATE")
            self._in_txn = True

    def savepoint(self) -> None:
        self._db.execute("SAVEPOINT record")

    def release_savepoint(self) -> None:
        self._db.execute("RELEASE SAVEPOINT record")

    def rollback_savepoint(self) -> None:
        self._db.execute("ROLLBACK TO SAVEPOINT record")
        self._db.execute("RELEASE SAVEPOINT record")

    def commit(self, next_offset: int | None = None) -> None:
        """Commit the open transaction, moving the checkpoint to `next_offset` if given."""
        if next_offset is not None:
            self.begin()
            self._set_checkpoint(next_offset)
        if self._in_txn:
            self._db.execute("COMMIT")
            self._in_txn = False

    def rollback(self) -> None:
        if self._in_txn:
            self._db.execute("ROLLBACK")
            self._in_txn = False

    @property
    def in_transaction(self) -> bool:
        return self._in_txn

    # -- checkpoint, dump, hash ---------------------------------------------------------------

    def checkpoint(self) -> int:
        row = self._db.execute("SELECT next_offset FROM checkpoint WHERE id = 0").fetchone()
        return 0 if row is None else int(row[0])

    def _set_checkpoint(self, next_offset: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO checkpoint (id, next_offset) VALUES (0, ?)", (next_offset,)
        )

    def dump(self) -> Iterator[str]:
        """Canonical dump: one line per document, `table<TAB>key<TAB>json`, in key order."""
        for tbl, key, value in self._db.execute(
            "SELECT tbl, key, value FROM docs ORDER BY tbl, key"
        ):
            yield f"{tbl}\t{key}\t{value}"

    def state_hash(self) -> str:
        """SHA-256 of the canonical dump; the checkpoint is not part of it."""
        digest = hashlib.sha256()
        for line in self.dump():
            digest.update(line.encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def count(self, table: str | None = None) -> int:
        if table is None:
            return int(self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0])
        return int(
            self._db.execute("SELECT COUNT(*) FROM docs WHERE tbl = ?", (table,)).fetchone()[0]
        )

    def close(self) -> None:
        self.rollback()
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None


def _acquire_lock(path: Path, wait_s: float) -> IO[str]:
    """Hold an exclusive flock beside the database for as long as the store is open.

    A running worker holds it for each assigned partition, so `choreo rebuild` cannot swap a
    file under a live worker. The kernel drops the lock when the process dies, even by kill -9.
    A worker taking over a partition waits a little: the previous holder may still be closing.
    """
    fh = open(path.with_suffix(".lock"), "a+")  # noqa: SIM115 - lives as long as the store
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError as e:
            if time.monotonic() >= deadline:
                fh.close()
                holder = path.with_suffix(".lock").read_text().strip() or "another process"
                raise StoreLockedError(f"{path} is in use by a running worker (pid {holder})") from e
            time.sleep(0.05)  # polling a kernel lock: there is no event to wait on
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def is_locked(path: Path) -> bool:
    """True if a live process holds the store at `path`."""
    lock = path.with_suffix(".lock")
    if not lock.exists():
        return False
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return False
