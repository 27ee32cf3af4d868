"""What a worker lets watch it: its output, its decisions and its commits, each wrapped or not.

`WorkerTracing` (choreo/tracing/spans.py, when the OTEL_* variables ask for traces) wraps them in
spans. `NoTracing` is the worker without: every hook hands back what it was given, so not a single
call per record is added, and the worker builds its parts one way whichever it got.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from choreo.kafka.messages import Consumed
from choreo.kafka.turns import TransactionalProducer
from choreo.runtime.outputs import TransactionalOutput
from choreo.runtime.watchdog import Watchdog

if TYPE_CHECKING:
    from choreo.runtime.commit import BatchOutcome, ProcessRecord

CommitBatch = Callable[[list[Consumed]], "BatchOutcome"]


class WorkerObservation(Protocol):
    def output(
        self, producer: TransactionalProducer, watchdog: Watchdog, own_topic: str
    ) -> TransactionalOutput: ...

    def decisions(self, process: ProcessRecord) -> ProcessRecord: ...

    def commits(self, commit: CommitBatch) -> CommitBatch: ...


class NoTracing:
    """No spans: the plain output, and `process` and `commit` themselves."""

    def output(
        self, producer: TransactionalProducer, watchdog: Watchdog, own_topic: str
    ) -> TransactionalOutput:
        return TransactionalOutput(producer, watchdog)

    def decisions(self, process: ProcessRecord) -> ProcessRecord:
        return process

    def commits(self, commit: CommitBatch) -> CommitBatch:
        return commit
