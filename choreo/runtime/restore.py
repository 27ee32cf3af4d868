"""Bring partition stores up to date from the service's own topic: start-up, assignment, rebuild.

state(p) = fold(evolve, own topic partition p). A store remembers the next own offset it has not
applied (its checkpoint); restoring reads from there to the end of the committed log
(read_committed, so aborted transactions are skipped) and applies each event through `evolve`.
`decide` is never called here.

A record the service cannot have written (foreign_records.py) is skipped and reported, and the
checkpoint moves past it. A record that may be the service's own but cannot be read by this
process (an unknown schema id, say), or an own event whose `evolve` raises (a bug in the
service), stops its partition where it was (PartitionsNotRestored names it) while the others
finish, because applying the events after it would give a state the live worker never had. For
the former the reason names the command that skips it, should an operator know it is junk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from choreo.contract import Service
from choreo.exceptions import (
    ChoreoError,
    DecodeError,
    StopRequested,
    StoreDamagedError,
    StoreError,
)
from choreo.runtime.foreign_records import (
    ForeignRecordError,
    HeldBackError,
    SkippedRecords,
    not_own,
    skip_command,
    skipped_by_operator,
)
from choreo.runtime.stable_watch import ending
from choreo.runtime.store import PartitionStore
from choreo.runtime.watchdog import NoWatchdog, Watchdog
from choreo.serde.codec import Codec

log = logging.getLogger(__name__)

# Commit restored state in slices so one huge replay does not hold one giant SQLite transaction.
# A slice's writes wait in the store's memory (a few MB here) and go to SQLite in key order:
# the bigger the slice, the fewer random B-tree pages each key costs.
_COMMIT_EVERY = 20_000
_RETRY_PAUSE_S = 0.5
_STALL_S = 5.0
# How long a partition read to its stable offset waits for the transactions beyond it: longer
# than the shipped transaction timeout (30 s) plus the coordinator's check for expired
# transactions (transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 s). The worker
# passes its own from CHOREO_TRANSACTION_TIMEOUT_MS (undecided_wait_s).
UNDECIDED_S = 45.0
EXPIRED_TXN_CHECK_S = 15.0


def undecided_wait_s(transaction_timeout_ms: int) -> float:
    """The longest a transaction of the service's own producers can stay open, and then some."""
    return transaction_timeout_ms / 1000 + EXPIRED_TXN_CHECK_S
_WHY_CHARS = 300  # of a held-back record's reason: the command after it must survive clipping


class RestoreError(ChoreoError):
    """The own topic cannot be read to its end, or holds a record that cannot be applied."""


class RestoreCancelled(RestoreError, StopRequested):
    """The worker was asked to stop while restoring."""


class PartitionsNotRestored(RestoreError):
    """Some partitions hold a record that cannot be applied now: one this process cannot read
    (HeldBackError) or an own event whose `evolve` raised; the others are restored.

    `failed` maps each such partition to why; its store stays before that record.
    """

    def __init__(self, topic: str, failed: dict[int, str], applied: dict[int, int]) -> None:
        super().__init__(
            f"{topic} partition(s) {sorted(failed)} cannot be restored: "
            + "; ".join(failed[p] for p in sorted(failed))
        )
        self.failed = failed
        self.applied = applied  # what restore_partitions would have returned


def _watermarks(
    consumer: Consumer, tp: TopicPartition, deadline: float, cancelled: Callable[[], bool],
    watchdog: Watchdog,
) -> tuple[int, int]:
    """(low, high) of a partition, asking again while its leader is moving (e.g. a broker died)."""
    while True:
        if cancelled():
            raise RestoreCancelled(f"restore of {tp.topic}[{tp.partition}] stopped")
        try:
            with watchdog.guard("get_watermark_offsets", 10):
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
            return int(low), int(high)
        except KafkaException as e:
            if time.monotonic() > deadline:
                raise RestoreError(f"no watermarks for {tp.topic}[{tp.partition}]: {e}") from e
            log.warning("watermarks of %s[%d] not available yet: %s", tp.topic, tp.partition, e,
                        extra={"partition": tp.partition})
            time.sleep(_RETRY_PAUSE_S)  # back off: the client answers at once while metadata is stale
            _refresh_metadata(consumer, tp.topic, watchdog)


def _refresh_metadata(consumer: Consumer, topic: str, watchdog: Watchdog) -> None:
    # The watermark query goes to the leader the client last knew; after a broker died that is
    # a dead address until the metadata is asked for again.
    try:
        with watchdog.guard("list_topics", 5):
            consumer.list_topics(topic, timeout=5)
    except KafkaException as e:
        log.warning("metadata refresh for %s failed: %s", topic, e)


def _hanging(topic: str, p: int, position: int, end: int, waited_s: float) -> str:
    # Worded as stable_watch words it: one pattern for alerts and tests to match.
    return (
        f"{topic}[{p}]@{position}: a transaction open for {waited_s:.0f} s, longer than any of "
        "the service's may be (its transaction timeout, CHOREO_TRANSACTION_TIMEOUT_MS, and the "
        "coordinator's check for expired ones): a hanging transaction; the records from offset "
        f"{position} to {end} cannot be read, so the state stops before them. "
        + ending(topic, p, position)
    )


def restore_partitions(
    consumer: Consumer,
    codec: Codec,
    service: Service,
    topic: str,
    stores: Mapping[int, PartitionStore],
    timeout_s: float = 300.0,
    stop_at: Mapping[int, int] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    watchdog: Watchdog | None = None,
    written_end: Consumer | None = None,
    skipped: SkippedRecords | None = None,
    elsewhere: frozenset[type] = frozenset(),
    skip_offsets: Mapping[int, AbstractSet[int]] | None = None,
    undecided_s: float = UNDECIDED_S,
) -> dict[int, int]:
    """Apply every committed own event after each store's checkpoint; return events applied.

    `stop_at` (partition -> offset) stops short of the end, e.g. to rebuild exactly up to a live
    store's checkpoint and compare the two.

    `written_end`, a read_uncommitted consumer, gives the high watermark: the end of everything
    written, where `consumer` (read_committed) sees only the last stable offset. A transaction
    that has committed but whose markers are not yet written holds the stable offset below its
    records; restoring only to there would leave its events out of the state while its inputs
    are already consumed. So the restore waits (within its timeout) until every transaction
    written before it started is decided. A checkpoint beyond the high watermark cannot come
    from this log: StoreDamagedError names the partition, so the caller can heal it.

    `skipped` hears of each record the service cannot have written (logged only by default);
    `elsewhere` holds the types that show a record was (foreign_records.types_elsewhere; none by
    default, so any type the service does not emit holds its partition back). When a record
    cannot be read now, or `evolve` raises on an own event, that partition is left before it
    and, once the others are restored, PartitionsNotRestored names it.

    `skip_offsets` (partition -> offsets; `choreo rebuild --skip-offset`) skips a record there
    that would hold its partition back, as foreign: an operator said it is not the service's
    own. Any other record at such an offset is handled as without it (an own event is applied).

    A partition read to its stable offset but short of the end written waits for the
    transactions there to be decided, `undecided_s` at most, and then is held back: a transaction
    open for longer than any of the service's producers may keep one open (their transaction
    timeout, after which the coordinator aborts it) will never end by itself (a hanging
    transaction), and its reason names the command that aborts it.
    """
    watchdog = watchdog or NoWatchdog()
    skipped = skipped or SkippedRecords(service.name)
    stop_at = stop_at or {}
    skip_offsets = skip_offsets or {}
    if not stores:
        return {}
    applied = dict.fromkeys(stores, 0)
    pending: set[int] = set()
    starts = []
    target: dict[int, int] = {}
    deadline = time.monotonic() + timeout_s
    for p, store in stores.items():
        tp = TopicPartition(topic, p)
        low, high = _watermarks(consumer, tp, deadline, cancelled, watchdog)
        if written_end is not None:
            high = max(high, _watermarks(written_end, tp, deadline, cancelled, watchdog)[1])
        if store.checkpoint() > high:
            raise StoreDamagedError(
                f"store {store.path} says it applied {topic}[{p}] up to offset "
                f"{store.checkpoint()}, but the partition ends at {high}", p,
            )
        target[p] = min(high, stop_at.get(p, high))
        if store.checkpoint() < target[p]:
            pending.add(p)
            starts.append(TopicPartition(topic, p, max(store.checkpoint(), low)))
    if not pending:
        return applied
    consumer.assign(starts)
    decode, evolve, emits = codec.decode, service.evolve, service.emits  # once, not per record
    failed: dict[int, str] = {}
    uncommitted = dict.fromkeys(pending, 0)
    restored_to = {p: stores[p].checkpoint() for p in pending}
    at_end: set[int] = set()  # partitions that reported their end, maybe short of the target
    # Partitions at their stable offset, short of the target: since when, at which position.
    undecided: dict[int, tuple[float, int]] = {}
    last_progress = time.monotonic()
    try:
        while pending:
            now = time.monotonic()
            for p in sorted(at_end & pending):
                position = consumer.position([TopicPartition(topic, p)])[0].offset
                if position >= target[p]:
                    pending.discard(p)
                    continue
                since, where = undecided.get(p, (now, -1))
                if where != position:
                    undecided[p] = (now, position)  # moved on: the wait starts again
                elif now - since > undecided_s:
                    failed[p] = _hanging(topic, p, position, target[p], now - since)
                    log.error("%s; partition %d stays at offset %d", failed[p], p, position,
                              extra={"partition": p})
                    skipped.flush()  # the copies first: the checkpoint moves past their records
                    stores[p].commit(next_offset=max(position, restored_to[p]))
                    uncommitted.pop(p)
                    pending.discard(p)
            if cancelled():
                raise RestoreCancelled(f"restore of {topic} stopped")
            if now > deadline:
                raise RestoreError(f"restoring {topic} partitions {sorted(pending)} timed out")
            if now - last_progress > _STALL_S:
                waiting = sorted(p for p in pending if p in undecided)
                fetching = sorted(pending - set(waiting))
                if waiting:
                    log.warning(
                        "restore of %s%s waits for transactions still open there (read to the "
                        "stable offset, short of the end written); %.0f s at most",
                        topic, waiting, undecided_s,
                    )
                if fetching:
                    # No record and no end for a while: typically a leader that died; the client
                    # keeps fetching from the old address until it asks for metadata again.
                    log.warning("restore of %s%s stalled; refreshing metadata", topic, fetching)
                    _refresh_metadata(consumer, topic, watchdog)
                last_progress = now
            # A short wait: consume() only returns early with a full batch, and the end-of-
            # partition event must not cost half a second per restore.
            with watchdog.guard("consume (restore)", 0.05):
                batch = consumer.consume(num_messages=1000, timeout=0.05)
            if batch:
                last_progress = time.monotonic()
            for msg in batch:
                err = msg.error()
                p = msg.partition() or 0
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(p)  # done once the position reaches the target (above)
                        continue
                    if err.fatal():
                        raise RestoreError(f"reading {topic}[{p}] failed: {err.str()}")
                    log.warning("reading %s[%d]: %s (the client retries)", topic, p, err.str(),
                                extra={"partition": p})
                    continue
                offset = msg.offset() or 0  # a consumed record always has one
                if p not in pending:
                    continue
                if offset >= stop_at.get(p, offset + 1):
                    pending.discard(p)
                    restored_to[p] = stop_at[p]
                    continue
                store = stores[p]
                store.begin()  # no-op while the slice's transaction is open
                # The common case inline, no call per record: an own event. The rule of
                # foreign_records.not_own only runs for a record that is not one.
                try:
                    event = decode(msg.value())
                except DecodeError as e:
                    event = e
                except ChoreoError as e:  # the registry does not answer: the record may be ours
                    raise RestoreError(f"{topic}[{p}]@{offset} cannot be decoded now: {e}") from e
                if type(event) not in emits:
                    verdict = not_own(event, elsewhere)
                    if isinstance(verdict, HeldBackError) and offset in skip_offsets.get(p, ()):
                        verdict = skipped_by_operator(verdict)
                    if isinstance(verdict, ForeignRecordError):
                        skipped.skip(msg, verdict)
                        restored_to[p] = offset + 1  # the checkpoint moves past it: copied once
                        continue
                    # Maybe the service's own: the partition stops before it. What came before
                    # is sound, so it is kept (a restart need not read it again).
                    # Says what to run when the record is junk: the only way past it.
                    failed[p] = (
                        f"{topic}[{p}]@{offset}: {str(verdict)[:_WHY_CHARS]}; only if that record "
                        f"is not {service.name}'s own (junk from a stray producer), "
                        f"`{skip_command(service.name, p, offset)}` skips it"
                    )
                    log.error("%s; partition %d stays at offset %d", failed[p], p, restored_to[p],
                              extra={"partition": p})
                    skipped.flush()  # the copies first: the checkpoint moves past their records
                    store.commit(next_offset=restored_to[p])
                    uncommitted.pop(p)
                    pending.discard(p)
                    continue
                try:
                    evolve(store, event)
                except StoreError:
                    raise
                except Exception as e:  # noqa: BLE001 - a service bug stops its partition only
                    failed[p] = f"evolve raised on {topic}[{p}]@{offset}: {type(e).__name__}: {e}"
                    log.error("%s; partition %d stays at offset %d", failed[p], p, store.checkpoint(),
                              extra={"partition": p})
                    store.rollback()  # the slice, with whatever the failing evolve wrote
                    applied[p] -= uncommitted.pop(p)
                    pending.discard(p)
                    continue
                applied[p] += 1
                uncommitted[p] += 1
                restored_to[p] = offset + 1
                if uncommitted[p] >= _COMMIT_EVERY:
                    skipped.flush()  # the copies first: the checkpoint moves past their records
                    store.commit(next_offset=restored_to[p])
                    uncommitted[p] = 0
        skipped.flush()
        for p in uncommitted:
            # After EOF the position is the last stable offset, past any transaction markers.
            with watchdog.guard("position", 1):
                position = consumer.position([TopicPartition(topic, p)])[0].offset or 0
            if p in stop_at:
                position = min(position, stop_at[p])
            stores[p].commit(next_offset=max(position, restored_to[p]))
    except BaseException:
        for p in uncommitted:
            stores[p].rollback()
        raise
    finally:
        with watchdog.guard("unassign", 1):
            consumer.unassign()
    for p, n in applied.items():
        if n:
            log.info("restored %s[%d]: applied %d own events", topic, p, n, extra={"partition": p})
    if failed:
        raise PartitionsNotRestored(topic, failed, applied)
    return applied
