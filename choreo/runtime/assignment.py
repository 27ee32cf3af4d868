"""The stores of the partitions this instance owns: opened and restored on assignment, closed on
revoke or loss. librdkafka calls these callbacks inside consume(), so never during a batch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from choreo.contract import Service
from choreo.exceptions import StoreDamagedError
from choreo.runtime.foreign_records import SkippedRecords, installed_types_elsewhere
from choreo.runtime.health import Progress
from choreo.runtime.restore import UNDECIDED_S, PartitionsNotRestored, restore_partitions
from choreo.runtime.store import PartitionStore, StoreOwner, store_path
from choreo.runtime.watchdog import Watchdog
from choreo.serde.codec import Codec

log = logging.getLogger(__name__)

# A worker taking over a partition waits this long for the previous holder to close its store.
LOCK_WAIT_S = 60.0


class AssignedStores:
    """Partition number -> its open, restored store, following the consumer's assignment."""

    def __init__(
        self,
        *,
        service: Service,
        codec: Codec,
        own_topic: str,
        state_dir: Path,
        topic_prefix: str,
        reader: Consumer,
        written_end: Consumer,
        watchdog: Watchdog,
        progress: Progress,
        cancelled: Callable[[], bool],
        skipped: SkippedRecords | None = None,
        elsewhere: frozenset[type] | None = None,
        undecided_s: float = UNDECIDED_S,
    ) -> None:
        self.service = service
        self.undecided_s = undecided_s  # restore's wait for open transactions (restore.py)
        self.skipped = skipped or SkippedRecords(service.name)  # foreign records on the own topic
        # The types that mark a record on the own topic as someone else's (foreign_records.py).
        self.elsewhere = installed_types_elsewhere(service) if elsewhere is None else elsewhere
        self.codec = codec
        self.own_topic = own_topic
        # Physical name (Settings.topic's rule): its partitions follow the inputs' (on_assign).
        self.retry_topic = f"{topic_prefix}{service.retry_topic}"
        self.state_dir = state_dir
        self.owner = StoreOwner(topic_prefix, service.name)  # a store of another is refused
        self.reader = reader  # read_committed: what restore applies
        self.written_end = written_end  # read_uncommitted: high watermarks only
        self.watchdog = watchdog
        self.progress = progress
        self.cancelled = cancelled
        self.stores: dict[int, PartitionStore] = {}
        self.changes = 0  # assignments and releases so far: what was read before may not be ours
        # Whether a partition was paused by an earlier assignment (a retry partition without its
        # inputs, or one held back): librdkafka keeps the pause, so the next one resumes.
        self._paused_before = False

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.changes += 1
        self.progress.ready = False
        served = self._follow_inputs(consumer, partitions)
        new = sorted(served - set(self.stores))
        opened: dict[int, PartitionStore] = {}
        try:
            for p in new:
                with self.watchdog.guard("waiting for the store lock", LOCK_WAIT_S):
                    opened[p] = PartitionStore(
                        store_path(self.state_dir, self.service.name, p),
                        lock_wait_s=LOCK_WAIT_S, heal=True, cancelled=self.cancelled,
                        owner=self.owner,
                    )
            try:
                self.restore(opened)
            except PartitionsNotRestored as e:
                for p in e.failed:
                    opened.pop(p).close()
                self._hold_back(consumer, partitions, e.failed, e)
        except BaseException:
            for store in opened.values():
                store.close()
            raise
        self.stores.update(opened)
        self.progress.ready = True
        log.info("assigned %s; state restored for partitions %s", _fmt(partitions), new)

    def _follow_inputs(self, consumer: Consumer, partitions: list[TopicPartition]) -> set[int]:
        """The partition numbers to serve: those of the assigned input partitions. A retry topic
        partition whose number has no input partition here is paused and gets no store.

        The 'range' assignor shares out each topic among the members subscribed to it, so during
        a rolling upgrade from a version without retry topics this worker may get retry
        partition N while an old one keeps the inputs N, and so the state of N: deciding
        retried records against a store of N here would break "one instance owns partition N".
        With the eager protocol every rebalance revokes everything and assigns this worker's
        whole share again, so `partitions` is all of it, and a later assignment that brings the
        inputs N here resumes retry partition N.
        """
        inputs = {tp.partition for tp in partitions if tp.topic != self.retry_topic}
        waiting = [tp for tp in partitions
                   if tp.topic == self.retry_topic and tp.partition not in inputs]
        if not waiting and not self._paused_before:
            # The usual case: nothing to pause or resume, so the client assigns as it always
            # does once the callback returns. (Assigning inside the callback on every rebalance
            # made a worker stopped in a rebalance storm hang in close: only when needed.)
            return inputs
        self._paused_before = bool(waiting)
        # Assigned here, inside the callback, so that pause and resume act on this assignment.
        consumer.assign(partitions)
        # librdkafka keeps a partition paused across reassignments: each assignment starts with
        # everything it serves resumed (a partition paused before may be served now).
        served = [tp for tp in partitions if tp.partition in inputs]
        if served:
            consumer.resume(served)
        if waiting:
            consumer.pause(waiting)
            log.warning(
                "not reading %s: its input partitions are another instance's (old workers that "
                "do not read %s, in a rolling upgrade?); paused until an assignment brings them "
                "here", _fmt(waiting), self.retry_topic,
            )
        return inputs

    def _hold_back(
        self, consumer: Consumer, partitions: list[TopicPartition], failed: dict[int, str],
        why: Exception,
    ) -> None:
        """Serve the assigned partitions except `failed` (partition -> why), whose state could not
        be restored: one partition's trouble must not stop the others. Assigning here, inside the
        callback, replaces the assignment the client would make after it, so the pause sticks.

        Nothing retries it while the assignment lasts: the cause (a bug in `evolve`, a registry
        that lost a schema, an older version, a junk record only an operator can tell from an own
        one and skip with the `choreo rebuild ... --skip-offset` its reason names: the store is
        closed here, so that rebuild can take its lock) rarely goes away by itself. Every assignment
        restores it again, though: the 'range' assignor is eager, so each rebalance revokes the
        whole assignment (`_release` drops the partition from `held_back`) and assigns it anew,
        and a restarted worker starts with a fresh one. /readyz and the gauge
        choreo_partitions_held_back say it is held back meanwhile."""
        consumer.assign(partitions)
        consumer.pause([tp for tp in partitions if tp.partition in failed])
        self._paused_before = True  # the next assignment resumes what it serves
        for p in failed:  # /readyz says so until the partition is released or the worker restarts
            # Bounded, yet long enough for the record's coordinates, reason and skip command.
            self.progress.held_back[p] = failed[p][:1000]
        log.error("%s; not serving partition(s) %s until the cause is fixed (or the record "
                  "skipped as said) and the worker restarted (every restart or rebalance tries "
                  "again), the others go on", why, sorted(failed))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(consumer, partitions, "revoked")

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(consumer, partitions, "lost")

    def restore(self, stores: dict[int, PartitionStore]) -> None:
        """Restore from the own topic; a store found damaged meanwhile is healed and restored."""
        for _attempt in range(len(stores) + 1):
            try:
                restore_partitions(
                    self.reader, self.codec, self.service, self.own_topic, stores,
                    cancelled=self.cancelled, watchdog=self.watchdog, written_end=self.written_end,
                    skipped=self.skipped, elsewhere=self.elsewhere, undecided_s=self.undecided_s,
                )
                return
            except StoreDamagedError as e:
                if e.partition not in stores:
                    raise
                log.error("%s", e, extra={"partition": e.partition})
                stores[e.partition].replace_damaged()
        raise StoreDamagedError(f"the stores of {sorted(stores)} could not be restored")

    def restore_partition(self, partition: int) -> None:
        """Bring one assigned store up to its own topic (after it fell behind or was healed)."""
        self.restore({partition: self.stores[partition]})

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
        self.stores.clear()

    def _release(self, consumer: Consumer, partitions: list[TopicPartition], why: str) -> None:
        self.changes += 1
        # A store serves partition N of every input topic: keep it while any of them stays ours.
        still = {
            tp.partition for tp in consumer.assignment()
            if tp.topic not in {x.topic for x in partitions if x.partition == tp.partition}
        }
        for p in {tp.partition for tp in partitions} - still:
            self.progress.held_back.pop(p, None)
            store = self.stores.pop(p, None)
            if store is not None:
                store.close()
        log.info("%s %s", why, _fmt(partitions))


def _fmt(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
