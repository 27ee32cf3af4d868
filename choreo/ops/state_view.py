"""Reading a service's local partition stores for operators, without taking a running worker's lock."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from choreo.exceptions import ConfigurationError, StoreDamagedError, StoreError
from choreo.keys import key_parts
from choreo.runtime.store import PartitionStore, state_dir_of
from choreo.settings import Settings

_STORE_FILE = re.compile(r"^p(\d{4})\.sqlite$")


@dataclass(frozen=True)
class Document:
    partition: int
    table: str
    key: str
    value: dict[str, Any]


@dataclass(frozen=True)
class PartitionSummary:
    partition: int
    documents: int
    checkpoint: int
    state_hash: str


@dataclass(frozen=True)
class DocumentFilter:
    """Keys of saga state start with the partition key (parts joined by choreo/keys.py), or a
    document holds it under the domain's name for it (`key_field`); a field filter matches a
    top-level value or a part of the key."""

    key: str | None = None
    key_field: str = "key"
    table: str | None = None
    fields: tuple[tuple[str, str], ...] = ()

    def matches(self, doc: Document) -> bool:
        if self.table is not None and doc.table != self.table:
            return False
        if self.key is not None and not (
            key_parts(doc.key)[0] == self.key or doc.value.get(self.key_field) == self.key
        ):
            return False
        return all(_field_matches(doc, name, value) for name, value in self.fields)


def _field_matches(doc: Document, name: str, value: str) -> bool:
    # A key part counts too (decoded, so an id holding '/' is one part), after the partition key.
    return str(doc.value.get(name)) == value or value in key_parts(doc.key)[1:]


def partition_files(settings: Settings, service: str) -> dict[int, Path]:
    folder = state_dir_of(settings) / service
    files = {
        int(m.group(1)): path for path in (sorted(folder.glob("p*.sqlite")) if folder.is_dir() else [])
        if (m := _STORE_FILE.match(path.name))
    }
    if not files:
        raise ConfigurationError(
            f"no local state for {service} in {folder}: has a worker of it run here? "
            "(CHOREO_STATE_DIR and CHOREO_TOPIC_PREFIX must be the worker's)"
        )
    return files


@contextmanager
def _reading(path: Path, partition: int, service: str) -> Iterator[PartitionStore]:
    """The store at `path`, open for reading; damage becomes one sentence saying what to do."""
    fix = f"`choreo rebuild {service}` rebuilds it from the log"
    try:
        # lock=False: reading beside a live worker is safe in WAL mode; its lock is not ours to take.
        store = PartitionStore(path, lock=False)
        try:
            yield store
        finally:
            store.close()
    except StoreDamagedError as e:
        raise StoreDamagedError(f"{e}; {fix}", partition) from e
    except sqlite3.OperationalError as e:  # busy, locked, no permission: not damage
        raise StoreError(f"store {path} cannot be read: {e}", partition) from e
    except (sqlite3.DatabaseError, ValueError) as e:  # ValueError: a document that is not JSON
        raise StoreDamagedError(f"store {path} is damaged ({e}); {fix}", partition) from e


def documents(settings: Settings, service: str, where: DocumentFilter) -> Iterator[Document]:
    for partition, path in partition_files(settings, service).items():
        with _reading(path, partition, service) as store:
            lines = list(store.dump())
            docs = [_document(partition, line) for line in lines]
        yield from (doc for doc in docs if where.matches(doc))


def _document(partition: int, line: str) -> Document:
    table, key, value = line.split("\t", 2)
    return Document(partition, table, key, json.loads(value))


def summaries(settings: Settings, service: str) -> list[PartitionSummary]:
    out = []
    for partition, path in partition_files(settings, service).items():
        with _reading(path, partition, service) as store:
            out.append(_consistent_summary(partition, store))
    return out


def _consistent_summary(partition: int, store: PartitionStore) -> PartitionSummary:
    # Hash and checkpoint are separate reads; a worker committing in between would pair a hash
    # with the wrong checkpoint, so read again until the checkpoint held still around the hash.
    while True:
        before = store.checkpoint()
        summary = PartitionSummary(partition, store.count(), before, store.state_hash())
        if store.checkpoint() == before:
            return summary
