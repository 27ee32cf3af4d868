"""Notice a transaction on the own topic that never ends: the sagas behind it wait, silently.

Only the service's own producers write its own topic, one batch per transaction, and the
coordinator aborts any of theirs still open at the transaction timeout. So a partition whose
last stable offset stays at one place, short of the end written, for longer than that (plus the
coordinator's check for expired transactions) holds a hanging transaction: a read_committed
consumer of that partition (every service downstream) cannot read past it, and nothing inside
Kafka's clients ends it. Seen when a lone Kafka 4.3 node killed with SIGKILL restarts and its
coordinator skips the markers of the transactions it finds prepared (KAFKA-20734, in 4.3.0 to
4.4.0; docs/adr/0006-nothing-stalls.md, 7). The worker cannot end it through the client library
(librdkafka has no admin call for KIP-664), so it says so where an operator looks: one ERROR
line naming the partition, the offset and the command that ends it, `/readyz` 503 with
`hanging_transactions`, and the gauge `choreo_hanging_transactions`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from choreo.runtime.health import Progress
from choreo.runtime.watchdog import Watchdog

log = logging.getLogger(__name__)

CHECK_EVERY_S = 10.0


def ending(topic: str, p: int, offset: int) -> str:
    """What an operator runs for a hanging transaction at `topic[p]@offset`."""
    return (
        f"`choreo kafka transactions describe-producers --topic {topic} --partition {p}` names "
        "its producer and `... describe --transactional-id <id>` what became of it; if it was "
        f"aborted (or fenced), `choreo kafka transactions abort --topic {topic} --partition {p} "
        f"--start-offset {offset}` ends it (aborting one that committed would drop its events)"
    )


_QUERY_S = 2.0  # short: while a broker is away the loop must not wait here


class HangingTransactionWatch:
    """Every `every_s`, compares each assigned own partition's stable offset with its end."""

    def __init__(
        self,
        topic: str,
        committed: Consumer,
        written: Consumer,
        watchdog: Watchdog,
        progress: Progress,
        limit_s: float,
        every_s: float = CHECK_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = topic
        self.committed = committed  # read_committed: its "high" offset is the stable offset
        self.written = written  # read_uncommitted: the end of everything written
        self.watchdog = watchdog
        self.progress = progress
        self.limit_s = limit_s
        self.every_s = every_s
        self.clock = clock
        self._next = clock() + every_s
        self._stuck: dict[int, tuple[float, int]] = {}  # partition -> (since, stable offset)

    def check(self, partitions: Iterable[int]) -> None:
        """One look, at most every `every_s` (the loop calls it on every turn)."""
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.every_s
        owned = set(partitions)
        for p in set(self._stuck) - owned:  # no longer ours: its new owner looks
            self._forget(p)
        for p in sorted(owned):
            try:
                stable, end = self._offsets(p)
            except KafkaException as e:  # the cluster is not answering: look next time
                log.debug("stable offset of %s[%d] not known now: %s", self.topic, p, e,
                          extra={"partition": p})
                return
            self.look(p, stable, end, now)

    def look(self, p: int, stable: int, end: int, now: float) -> None:
        """The verdict on one partition from its offsets (separate so tests need no broker)."""
        if stable >= end:
            self._forget(p)
            return
        since, at = self._stuck.get(p, (now, stable))
        if at != stable:
            since, at = now, stable  # it moved: transactions are being decided
        self._stuck[p] = (since, at)
        if now - since > self.limit_s and p not in self.progress.hanging:
            why = (
                f"{self.topic}[{p}]@{stable}: a transaction open for {now - since:.0f} s, "
                "longer than any of the service's may be (a hanging transaction): the services "
                f"that read {self.topic} wait behind it. "
                + ending(self.topic, p, stable)
            )
            self.progress.hanging[p] = why
            log.error("%s", why, extra={"partition": p})

    def _forget(self, p: int) -> None:
        self._stuck.pop(p, None)
        if self.progress.hanging.pop(p, None) is not None:
            log.info("%s[%d]: the hanging transaction has ended", self.topic, p, extra={"partition": p})

    def _offsets(self, p: int) -> tuple[int, int]:
        tp = TopicPartition(self.topic, p)
        with self.watchdog.guard("get_watermark_offsets (stable offset)", 2 * _QUERY_S):
            stable = self.committed.get_watermark_offsets(tp, timeout=_QUERY_S)[1]
            end = self.written.get_watermark_offsets(tp, timeout=_QUERY_S)[1]
        return int(stable), int(end)
