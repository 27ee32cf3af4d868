"""Local state of one service on one partition: JSON documents in SQLite, plus a checkpoint.

The checkpoint is the next offset of the service's own topic partition that has not yet been
applied through `evolve`. It is written in the same SQLite transaction as the state it describes,
so state and checkpoint can never disagree (the follower-with-tracking pattern).

Inside a transaction the store is a write-back cache: `put` and `delete` land in memory (one
layer per open savepoint, so a record's writes are dropped alone), reads see them, and `commit`
writes what the transaction changed with one `executemany` per statement just before COMMIT.
Documents read in a transaction are kept as their stored text, so reading one again costs no
query, and a `put` of a document equal to what is stored writes nothing.

A damaged file (not a database, failing SQLite's quick check, or holding an impossible
checkpoint) is detected when the store opens. Opened with `heal=True` (what a worker does), the
file is moved aside, kept for inspection, and an empty store takes its place; the worker then
restores it from the own topic from offset 0. Every SQLite or JSON failure surfaces as a
`StoreError`, so the worker fails the batch instead of blaming the record it was processing.

A store names its owner (topic prefix and service) in a `meta` table written when it is made; a
store of another owner is refused at open with a `ForeignStoreError`, never treated as damaged.
A store that names no owner but holds something was made by a version before that (`LegacyStore`):
its keys were not escaped yet and its folder may have been another prefix's, so a worker moves it
aside like a damaged one and restores an empty store from offset 0 of the own topic, once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from choreo import state_json
from choreo.exceptions import (
    ConfigurationError,
    ForeignStoreError,
    StopRequested,
    StoreDamagedError,
    StoreError,
    StoreLockedError,
)
from choreo.settings import Settings

log = logging.getLogger("choreo.runtime.store")

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
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""


# Documents are stored as canonical JSON (choreo/state_json.py), the same as MemoryState's.
_loads = state_json.decode
_encode = state_json.encode


# A transaction's writes: table -> key -> stored text, or None for a deleted key.
Layer = dict[str, dict[str, str | None]]
_HASH_CHUNK = 4096  # rows per hashed chunk
_UNREAD = object()  # not in the read cache (None there means "no such document")


def state_dir_of(settings: Settings) -> Path:
    """Where the partition stores live: a folder of each topic prefix's own (see `prefix_folder`)."""
    folder = prefix_folder(settings.topic_prefix)
    return settings.state_dir / folder if folder else settings.state_dir


# Not one of Kafka's topic characters, so no prefix's folder can start with it.
_WHOLE_PREFIX_MARK = "@"
_SEPARATORS = ".-_"


def prefix_folder(prefix: str) -> str:
    """The folder name of a topic prefix, different for every prefix ("" for none).

    The usual form, a name and one dot (`example.`), keeps the name (`example`) as it always has;
    every other prefix is kept whole behind an `@` (`s` -> `@s`, `s-` -> `@s-`, `s..` -> `@s..`),
    which no name-and-dot folder can start with. Each is one path component: never `.` or `..`.
    """
    name = prefix[:-1]
    if prefix.endswith(".") and name and name[-1] not in _SEPARATORS:
        return name
    return f"{_WHOLE_PREFIX_MARK}{prefix}" if prefix else ""


def store_path(state_dir: Path, service: str, partition: int) -> Path:
    return state_dir / service / f"p{partition:04d}.sqlite"


@dataclass(frozen=True)
class StoreOwner:
    """Whose state a store holds: recorded in its `meta` table when it is made, checked at open."""

    topic_prefix: str
    service: str

    @classmethod
    def of(cls, settings: Settings, service: str) -> StoreOwner:
        return cls(settings.topic_prefix, service)

    def rows(self) -> dict[str, str]:
        return {"topic_prefix": self.topic_prefix, "service": self.service}


def make_folder(folder: Path) -> None:
    """Create a store folder, or say in one sentence why CHOREO_STATE_DIR cannot hold it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigurationError(
            f"cannot create the state folder {folder} ({e.strerror or e}): CHOREO_STATE_DIR must "
            "name a folder this process may write (or one it may create)"
        ) from e


class PartitionStore:
    """State of (service, partition). Implements the domain's `State` protocol."""

    def __init__(
        self, path: Path, *, lock: bool = True, lock_wait_s: float = 0.0, heal: bool = False,
        cancelled: Callable[[], bool] = lambda: False, owner: StoreOwner | None = None,
    ) -> None:
        self.path = path
        # Recorded in a new store and checked in an old one; None (tools that only read, tests)
        # neither records nor checks.
        self.owner = owner
        self.healed_from: Path | None = None  # where a damaged file was moved when healed
        make_folder(path.parent)
        self._lock_file: IO[str] | None = None
        if lock:
            self._lock_file = lock_store(path, lock_wait_s, cancelled)
        self._in_txn = False
        # Write-back cache of the open transaction: the batch's writes (layers[0]) and one layer
        # per open savepoint on top; and the stored text of documents read in it.
        self._layers: list[Layer] = []
        self._read: dict[tuple[str, str], str | None] = {}
        try:
            self._db = self._open(heal)
        except BaseException:
            self._unlock()
            raise

    def _open(self, heal: bool) -> sqlite3.Connection:
        try:
            return _open_checked(self.path, self.owner)
        except LegacyStoreError as e:
            if not heal:
                raise
            self.healed_from = quarantine(self.path, "legacy")
            # Expected once per store after an upgrade, and nothing is lost: not an error.
            log.warning("%s; moved it to %s and starting from an empty store, restored from "
                        "offset 0 of the own topic", e, self.healed_from)
            return _open_checked(self.path, self.owner)
        except StoreDamagedError as e:
            if not heal:
                raise
            # Still under the lock: nobody else can open the file between the move and the reopen.
            self.healed_from = quarantine(self.path)
            log.error(
                "%s; moved it to %s and starting from an empty store, to be restored from the log",
                e, self.healed_from,
            )
            return _open_checked(self.path, self.owner)

    # -- State protocol -----------------------------------------------------------------------

    # The hot path stays a plain try: no context manager per call, no cost unless it fails.

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        try:
            text = self._text(table, key)
            return None if text is None else _loads(text)  # type: ignore[no-any-return]
        except (sqlite3.Error, ValueError) as e:
            raise self._error(e, f"reading {table}/{key}") from e

    def _text(self, table: str, key: str) -> str | None:
        """The stored text of a document as this transaction sees it (None: no such document)."""
        seen = self._visible(table, key)
        if seen is not _UNREAD:
            return seen  # type: ignore[return-value]
        row = self._db.execute(
            "SELECT value FROM docs WHERE tbl = ? AND key = ?", (table, key)
        ).fetchone()
        text = None if row is None else row[0]
        if self._in_txn:
            self._read[(table, key)] = text
        return text

    def scan(self, table: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        # Range scan on the primary key: prefix <= key < prefix + U+10FFFF.
        # Lazy: a caller that stops at the first match reads (and decodes) one row, not all.
        high = prefix + "\U0010ffff"
        written: dict[str, str | None] = {}
        for layer in self._layers:  # bottom up: a savepoint's write hides the batch's
            for key, text in layer.get(table, {}).items():
                if prefix <= key < high:
                    written[key] = text
        try:
            cursor = self._db.execute(
                "SELECT key, value FROM docs WHERE tbl = ? AND key >= ? AND key < ? ORDER BY key",
                (table, prefix, high),
            )
            # Merge the stored rows with this transaction's writes, both in key order (SQLite
            # compares TEXT by bytes: UTF-8 byte order is code point order, as in Python).
            pending = sorted(written)
            i = 0
            for key, value in cursor:
                while i < len(pending) and pending[i] < key:
                    text = written[pending[i]]
                    if text is not None:
                        yield pending[i], _loads(text)
                    i += 1
                if key in written:
                    i += i < len(pending) and pending[i] == key
                    text = written[key]
                    if text is not None:
                        yield key, _loads(text)
                    continue
                yield key, _loads(value)
            for key in pending[i:]:
                text = written[key]
                if text is not None:
                    yield key, _loads(text)
        except (sqlite3.Error, ValueError) as e:
            raise self._error(e, f"scanning {table}") from e

    def put(self, table: str, key: str, value: dict[str, Any]) -> None:
        text = _encode(value)  # a copy of the caller's document, refused here if not JSON
        if not self._layers:
            self._execute("INSERT OR REPLACE INTO docs (tbl, key, value) VALUES (?, ?, ?)",
                          (table, key, text))
            return
        if self._visible(table, key) == text:
            return  # the document as this transaction already sees it: nothing to write
        self._layers[-1].setdefault(table, {})[key] = text

    def _visible(self, table: str, key: str) -> object:
        """What the transaction sees of a document without a query: its text, None when
        deleted or missing, or _UNREAD when it was never read."""
        for layer in reversed(self._layers):
            rows = layer.get(table)
            if rows is not None and key in rows:
                return rows[key]
        return self._read.get((table, key), _UNREAD)

    def delete(self, table: str, key: str) -> None:
        if not self._layers:
            self._execute("DELETE FROM docs WHERE tbl = ? AND key = ?", (table, key))
            return
        self._layers[-1].setdefault(table, {})[key] = None

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.Error as e:
            raise self._error(e, sql.split(" ", 1)[0].lower()) from e

    def _error(self, cause: BaseException, doing: str) -> StoreError:
        damaged = isinstance(cause, (sqlite3.DatabaseError, ValueError)) and not isinstance(
            cause, sqlite3.OperationalError
        )
        kind = StoreDamagedError if damaged else StoreError
        return kind(f"store {self.path} failed while {doing}: {cause}", partition_of(self.path))

    # -- transactions -------------------------------------------------------------------------

    def begin(self) -> None:
        if not self._in_txn:
            self._execute("BEGIN IMMEDIATE")
            self._in_txn = True
            self._layers = [{}]

    # Savepoints exist only in the write-back cache: SQLite sees no statement until commit.

    def savepoint(self) -> None:
        self.begin()
        self._layers.append({})

    def release_savepoint(self) -> None:
        self._require_savepoint()
        top = self._layers.pop()
        below = self._layers[-1]
        for table, rows in top.items():
            below.setdefault(table, {}).update(rows)

    def rollback_savepoint(self) -> None:
        self._require_savepoint()
        self._layers.pop()

    def _require_savepoint(self) -> None:
        if len(self._layers) < 2:
            raise StoreError(f"store {self.path}: no savepoint is open", partition_of(self.path))

    def commit(self, next_offset: int | None = None) -> None:
        """Commit the open transaction, moving the checkpoint to `next_offset` if given."""
        if next_offset is not None:
            self.begin()
            self._set_checkpoint(next_offset)
        if self._in_txn:
            self.write_back()
            self._execute("COMMIT")
            self._end_txn()

    def write_back(self) -> None:
        """Write the transaction's writes into the open SQLite transaction, one executemany per
        statement (unreleased savepoints too, as SQLite's COMMIT would keep them). The commit
        protocol calls it before the Kafka commit, so a failing write aborts the batch; COMMIT
        then only has to move the checkpoint."""
        written: Layer = {}
        for layer in self._layers:
            for table, rows in layer.items():
                written.setdefault(table, {}).update(rows)
        # In key order: the B-tree then takes the rows page by page instead of jumping to a
        # random leaf for each (a replay's slice of 20,000 new keys writes about 1.4x faster).
        puts = sorted((t, k, v) for t, rows in written.items() for k, v in rows.items() if v is not None)
        gone = sorted((t, k) for t, rows in written.items() for k, v in rows.items() if v is None)
        try:
            if puts:
                self._db.executemany(
                    "INSERT OR REPLACE INTO docs (tbl, key, value) VALUES (?, ?, ?)", puts
                )
            if gone:
                self._db.executemany("DELETE FROM docs WHERE tbl = ? AND key = ?", gone)
        except sqlite3.Error as e:
            raise self._error(e, "writing the batch") from e
        # Written: the SQLite transaction holds them now, and reads go there again.
        self._layers = [{} for _ in self._layers]
        self._read = {}

    def _end_txn(self) -> None:
        self._in_txn = False
        self._layers = []
        self._read = {}

    def rollback(self) -> None:
        if self._in_txn:
            self._end_txn()
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as e:  # e.g. the transaction is already gone after an I/O error
                log.warning("rollback of %s failed: %s", self.path, e)

    # -- checkpoint, dump, hash ---------------------------------------------------------------

    def checkpoint(self) -> int:
        try:
            row = self._db.execute("SELECT next_offset FROM checkpoint WHERE id = 0").fetchone()
        except sqlite3.Error as e:
            raise self._error(e, "reading the checkpoint") from e
        return 0 if row is None else int(row[0])

    def _set_checkpoint(self, next_offset: int) -> None:
        self._execute(
            "INSERT OR REPLACE INTO checkpoint (id, next_offset) VALUES (0, ?)", (next_offset,)
        )

    def dump(self) -> Iterator[str]:
        """Canonical dump: one line per document, `table<TAB>key<TAB>json`, in key order."""
        for tbl, key, value in self._db.execute(
            "SELECT tbl, key, value FROM docs ORDER BY tbl, key"
        ):
            yield f"{tbl}\t{key}\t{value}"

    def state_hash(self) -> str:
        """SHA-256 of the canonical dump, each line ending in a newline; the checkpoint is not
        part of it. Hashed a chunk of lines at a time: a rebuild hashes every store it makes."""
        digest = hashlib.sha256()
        try:
            cursor = self._db.execute("SELECT tbl, key, value FROM docs ORDER BY tbl, key")
            while rows := cursor.fetchmany(_HASH_CHUNK):
                digest.update("".join([f"{t}\t{k}\t{v}\n" for t, k, v in rows]).encode())
        except sqlite3.Error as e:
            raise self._error(e, "hashing the state") from e
        return digest.hexdigest()

    def count(self, table: str | None = None) -> int:
        if table is None:
            return int(self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0])
        return int(
            self._db.execute("SELECT COUNT(*) FROM docs WHERE tbl = ?", (table,)).fetchone()[0]
        )

    def replace_damaged(self) -> Path:
        """Move this (damaged) store aside and continue on an empty one, under the same lock."""
        self.rollback()
        self._db.close()
        self.healed_from = quarantine(self.path)
        log.error(
            "moved the damaged store %s to %s; it is restored from the log", self.path, self.healed_from
        )
        self._db = _open_checked(self.path, self.owner)
        return self.healed_from

    def close(self) -> None:
        self.rollback()
        self._db.close()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None


def partition_of(path: Path) -> int | None:
    """The partition number in a store file name (`p0003.sqlite` -> 3)."""
    stem = path.name.split(".", 1)[0]
    return int(stem[1:]) if stem[:1] == "p" and stem[1:].isdigit() else None


def _open_checked(path: Path, owner: StoreOwner | None = None) -> sqlite3.Connection:
    """Open the database and prove it usable (and `owner`'s), or raise StoreDamagedError
    (ForeignStoreError when it is another owner's)."""
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per batch.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # quick_check: page and index structure without the full cross-check (O(n), cheap).
        verdict = [row[0] for row in db.execute("PRAGMA quick_check")]
        if verdict != ["ok"]:
            raise StoreDamagedError(
                f"store {path} fails SQLite's quick check: {'; '.join(verdict[:3])}",
                partition_of(path),
            )
        db.executescript(_SCHEMA)
        row = db.execute("SELECT next_offset FROM checkpoint WHERE id = 0").fetchone()
        if row is not None and (type(row[0]) is not int or row[0] < 0):
            raise StoreDamagedError(
                f"store {path} holds an impossible checkpoint {row[0]!r}", partition_of(path)
            )
        if owner is not None:
            _claim(db, path, owner)
    except sqlite3.OperationalError as e:
        # Busy, a full disk, an I/O or permission error: the file may be fine, so never move it.
        db.close()
        raise StoreError(f"store {path} cannot be opened: {e}", partition_of(path)) from e
    except sqlite3.DatabaseError as e:  # "file is not a database", "database disk image is malformed"
        db.close()
        raise StoreDamagedError(f"store {path} is damaged: {e}", partition_of(path)) from e
    except BaseException:
        db.close()
        raise
    return db


class LegacyStoreError(StoreDamagedError):
    """A store that names no owner (or part of one) yet holds a checkpoint or documents: made
    before stores named their owner, it is not to be trusted (see the module's docstring)."""


def _claim(db: sqlite3.Connection, path: Path, owner: StoreOwner) -> None:
    """Record `owner` in a new, empty store; refuse a store that names another owner (its state
    is not this owner's to reuse or to heal) and raise LegacyStoreError for one that names none
    but holds something."""
    # One transaction (the connection commits each statement alone otherwise): a crash half-way
    # must leave a store that names its whole owner or nothing, never a prefix without a service.
    db.execute("BEGIN IMMEDIATE")
    try:
        recorded = dict(db.execute("SELECT name, value FROM meta").fetchall())
        if not recorded.keys() >= owner.rows().keys():
            holds = db.execute(
                "SELECT EXISTS (SELECT 1 FROM docs) OR EXISTS (SELECT 1 FROM checkpoint)"
            ).fetchone()[0]
            if recorded or holds:
                raise LegacyStoreError(
                    f"store {path} names no owner but holds state, so it was made before stores "
                    "recorded their topic prefix and escaped their keys: an id with '/' or '%' "
                    "sits under another key than this version looks up, and another prefix may "
                    "have written it last",
                    partition_of(path),
                )
            db.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", owner.rows().items())
            recorded = owner.rows()
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # SQLite may have rolled back already (a full disk, say)
            db.execute("ROLLBACK")
        raise
    if {name: recorded.get(name) for name in owner.rows()} != owner.rows():
        raise ForeignStoreError(
            f"store {path} holds the state of service {recorded.get('service')!r} under topic "
            f"prefix {recorded.get('topic_prefix')!r}, not of {owner.service!r} under "
            f"{owner.topic_prefix!r}: CHOREO_STATE_DIR and CHOREO_TOPIC_PREFIX must be the ones "
            "the store was made with (each prefix has a folder of its own)"
        )


def quarantine(path: Path, why: str = "damaged") -> Path:
    """Move a damaged (or legacy) store and its WAL files aside, keeping it; returns its new path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, f"{target}{suffix}")
    return target


def lock_store(
    path: Path, wait_s: float, cancelled: Callable[[], bool] = lambda: False
) -> IO[str]:
    """Hold an exclusive flock beside the database for as long as the store is open.

    A running worker holds it for each assigned partition, so `choreo rebuild` cannot swap a
    file under a live worker. The kernel drops the lock when the process dies, even by kill -9.
    A worker taking over a partition waits a little: the previous holder may still be closing.
    """
    make_folder(path.parent)
    try:
        fh = open(path.with_suffix(".lock"), "a+")  # noqa: SIM115 - lives as long as the store
    except OSError as e:
        raise ConfigurationError(
            f"cannot open the store lock {path.with_suffix('.lock')} ({e.strerror or e}): "
            "CHOREO_STATE_DIR must name a folder this process may write"
        ) from e
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError as e:
            if cancelled():
                fh.close()
                raise StopRequested(f"stopped while waiting for the lock of {path}") from e
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
