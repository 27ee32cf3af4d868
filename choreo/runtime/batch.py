"""What one batch touched, shared by the record processor, its outputs and the commit protocol."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import KafkaError

from choreo.contract import State
from choreo.runtime.poison import Coordinates


class TransactionalStore(State, Protocol):
    """What the commit protocol needs of a partition store (PartitionStore in production)."""

    def begin(self) -> None: ...
    def savepoint(self) -> None: ...
    def release_savepoint(self) -> None: ...
    def rollback_savepoint(self) -> None: ...
    def write_back(self) -> None: ...
    def commit(self, next_offset: int | None = None) -> None: ...
    def rollback(self) -> None: ...
    def replace_damaged(self) -> object: ...


@dataclass
class Batch:
    """Stores in transaction, input offsets to commit, own-topic offsets delivered, and tallies."""

    size: int = 0
    # (input topic, partition) -> next offset to consume: what send_offsets_to_transaction commits.
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    stores: dict[int, TransactionalStore] = field(default_factory=dict)
    # partition -> next own-topic offset after this batch's outputs: the stores' new checkpoints.
    delivered: dict[int, int] = field(default_factory=dict)
    delivery_error: KafkaError | None = None
    # Inputs whose outputs Kafka refused for what they are (e.g. too large): blamed on abort.
    refused: dict[Coordinates, KafkaError] = field(default_factory=dict)
    emitted: int = 0
    # Event type (the short name of its schema) -> how many this batch emitted: the metric's
    # `event` label, so a dashboard can tell a saga's outcomes apart.
    emitted_by_type: Counter[str] = field(default_factory=Counter)
    dead: int = 0
    timers_fired: int = 0
    timer_errors: int = 0  # firings whose decide or evolve raised: recorded with no events
    # Due time to firing, in seconds, of each timer fired in this batch (the lateness metric).
    timer_lateness: list[float] = field(default_factory=list)

    def count_emitted(self, event: str) -> None:
        """Count one output of type `event` (its schema's short name)."""
        self.emitted += 1
        self.emitted_by_type[event] += 1


class RecordRefused(Exception):
    """Kafka refused an output of one input record at produce time: abort, then blame it."""

    def __init__(self, record: Coordinates, err: KafkaError) -> None:
        super().__init__(err.str())
        self.record, self.err = record, err
