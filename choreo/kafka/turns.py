"""Transactional producers that take turns, one transaction each.

After `commit_transaction` returns, the transaction coordinator still has to write the commit
markers and mark the transaction complete. A new transaction of the same `transactional.id`
that adds a partition before then is refused with CONCURRENT_TRANSACTIONS, and librdkafka
retries it after a fixed 20 ms. A worker that finds its next batch waiting (any saga under
load) would pay those 20 ms on every batch, and a saga pays them on every hop.

With two producers taking turns, a transaction always starts on the producer whose last commit
is one whole batch older, and the coordinator has long finished it. Exactly-once is unchanged:
each producer has its own stable `transactional.id`, both are initialised (fencing any older
incarnation and aborting what it left open) before the worker reads anything, the batches still
commit one after the other, and the group coordinator keeps the consumed offsets committed last
(ADR 0005).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Producer


def turn_ids(transactional_id: str, turns: int) -> list[str]:
    """The `transactional.id` of each turn: the first keeps the worker's id, so an instance of
    an older version that used one producer is fenced by the new one."""
    return [transactional_id] + [f"{transactional_id}.turn{i}" for i in range(2, turns + 1)]


class TakingTurns:
    """The Producer calls of the commit protocol, each on the producer of the current turn;
    `begin_transaction` passes the turn on."""

    def __init__(self, producers: Sequence[Producer]) -> None:
        if not producers:
            raise ValueError("at least one producer")
        self.producers = list(producers)
        self._turn = len(self.producers) - 1  # the first begin_transaction takes producer 0
        self.current = self.producers[0]
        self.produce = self.current.produce  # rebound per turn: produce is called per record

    def init_transactions(self, timeout_s: float) -> None:
        """Initialise every producer, side by side: each waits for its coordinator to fence the
        previous instance and abort what it left open, and a restarted worker serves nothing
        until all have (the first error raised, after all have returned)."""
        if len(self.producers) == 1:
            self.producers[0].init_transactions(timeout_s)
            return
        errors: list[BaseException] = []

        def init(producer: Producer) -> None:
            try:
                producer.init_transactions(timeout_s)
            except BaseException as e:  # noqa: BLE001 - raised below, in the caller's thread
                errors.append(e)

        threads = [threading.Thread(target=init, args=(p,), name="init-transactions", daemon=True)
                   for p in self.producers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()  # each call is bounded by timeout_s; the caller's watchdog guards all
        if errors:
            raise errors[0]

    def replace(self, fresh: Sequence[Producer]) -> list[Producer]:
        """Take `fresh` producers (the same transactional ids, not yet initialised) in place of
        the current ones, which are returned; the next `begin_transaction` takes the first."""
        if len(fresh) != len(self.producers):
            raise ValueError("a replacement has one producer per turn")
        old, self.producers = self.producers, list(fresh)
        self._turn = len(self.producers) - 1
        self.current = self.producers[0]
        self.produce = self.current.produce
        return old

    def begin_transaction(self) -> None:
        self._turn = (self._turn + 1) % len(self.producers)
        self.current = self.producers[self._turn]
        self.produce = self.current.produce
        self.current.begin_transaction()

    def poll(self, timeout_s: float) -> int:
        return self.current.poll(timeout_s)

    def flush(self, timeout_s: float) -> int:
        return self.current.flush(timeout_s)

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, timeout_s: float) -> None:
        self.current.send_offsets_to_transaction(offsets, metadata, timeout_s)

    def commit_transaction(self, timeout_s: float) -> None:
        self.current.commit_transaction(timeout_s)

    def abort_transaction(self, timeout_s: float) -> None:
        self.current.abort_transaction(timeout_s)

    def flush_all(self, timeout_s: float) -> None:
        """On close: anything still queued by any turn (normally nothing)."""
        for producer in self.producers:
            producer.flush(timeout_s)


# What the commit protocol and the outputs take: one producer (tests) or producers taking turns.
TransactionalProducer = Producer | TakingTurns
