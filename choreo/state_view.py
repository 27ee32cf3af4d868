"""Reading a service's local partition stores for operators, without taking a running worker's lock."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from choreo.exceptions import ConfigurationError
from choreo.settings import Settings
from choreo.store import PartitionStore, state_dir_of

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
    """Keys of saga state start with the hub (`hub/...`); a field filter matches a top-level value."""

    hub: str | None = None
    table: str | None = None
    fields: tuple[tuple[str, str], ...] = ()

    def matches(self, doc: Document) -> bool:
        if self.table is not None and doc.table != self.table:
            return False
        if self.hub is not None and not (
            doc.key.startswith(f"{self.hub}/") or doc.value.get("hub") == self.hub
        ):
            return False
        return all(_field_matches(doc, name, value) for name, value in self.fields)


def _field_matches(doc: Document, name: str, value: str) -> bool:
    # A key segment counts too: packaging keys its shelves `hub/sku`.
    return str(doc.value.get(name)) == value or value in doc.key.split("/")[1:]


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


def _open(path: Path) -> PartitionStore:
    # lock=False: reading beside a live worker is safe in WAL mode; taking its lock is not ours to do.
    return PartitionStore(path, lock=False)


def documents(settings: Settings, service: str, where: DocumentFilter) -> Iterator[Document]:
    for partition, path in partition_files(settings, service).items():
        store = _open(path)
        try:
            for line in list(store.dump()):
                table, key, value = line.split("\t", 2)
                doc = Document(partition, table, key, json.loads(value))
                if where.matches(doc):
                    yield doc
        finally:
            store.close()


def summaries(settings: Settings, service: str) -> list[PartitionSummary]:
    out = []
    for partition, path in partition_files(settings, service).items():
        store = _open(path)
        try:
            out.append(_consistent_summary(partition, store))
        finally:
            store.close()
    return out


def _consistent_summary(partition: int, store: PartitionStore) -> PartitionSummary:
    # Hash and checkpoint are separate reads; a worker committing in between would pair a hash
    # with the wrong checkpoint, so read again until the checkpoint held still around the hash.
    while True:
        before = store.checkpoint()
        summary = PartitionSummary(partition, store.count(), before, store.state_hash())
        if store.checkpoint() == before:
            return summary
