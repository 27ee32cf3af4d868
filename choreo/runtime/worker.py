"""The exactly-once loop of one worker instance (docs/adr/0005-exactly-once-worker.md).

Per batch: consume up to `batch_size` records, begin a Kafka transaction and one SQLite
transaction per touched partition, decide and evolve each record, send the consumed offsets
to the transaction, commit Kafka, and only then commit SQLite with the new checkpoint.
A crash anywhere leaves either both committed or the Kafka side committed and SQLite behind,
which the restore on the next assignment repairs from the own topic.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from choreo.contract import Service
from choreo.exceptions import (
    ChoreoError,
    ConfigurationError,
    DecodeError,
    FencedError,
    RegistryUnavailableError,
    SchemaNotRegisteredError,
    StopRequested,
    StoreDamagedError,
    StoreError,
)
from choreo.kafka import clients
from choreo.kafka.messages import coordinates, header_pairs
from choreo.kafka.topics import require_copartitioned
from choreo.runtime.dead_letters import dead_letter, record_size
from choreo.runtime.faults import FaultInjector
from choreo.runtime.health import Progress
from choreo.runtime.metrics import WorkerMetrics
from choreo.runtime.poison import Coordinates, PoisonTracker, is_record_error
from choreo.runtime.restore import restore_partitions
from choreo.runtime.store import PartitionStore, state_dir_of, store_path
from choreo.runtime.triage import call_retrying, is_fatal
from choreo.runtime.watchdog import EXIT_NO_PROGRESS, NoWatchdog, Watchdog
from choreo.serde.codec import Codec
from choreo.settings import Settings

log = logging.getLogger("choreo.runtime.worker")

# Timeouts handed to librdkafka's blocking calls; the watchdog adds its grace on top, since
# librdkafka does not always keep them (see choreo/runtime/watchdog.py).
_TXN_CALL_S = 30.0
_INIT_TXN_S = 60.0
_LOCK_WAIT_S = 60.0
_OUTPUT_LIMIT = clients.MAX_RECORD_BYTES - clients.RECORD_FRAMING_BYTES


class NoProgressError(ChoreoError):
    """Batches kept failing for longer than the stall limit: restart and start afresh."""


class OutputTooLargeError(ChoreoError):
    """An event the service decided on is larger than a Kafka record may be."""


class BlamedRecordError(ChoreoError):
    """An input record that made its batch fail, dead-lettered so its partition can go on."""


class _RecordRefused(Exception):
    """Kafka refused an output of one input record at produce time: abort, then blame it."""

    def __init__(self, record: Coordinates, err: KafkaError) -> None:
        super().__init__(err.str())
        self.record, self.err = record, err


@dataclass
class _Batch:
    """What one batch touched: stores in transaction, offsets to commit, own offsets delivered."""

    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    stores: dict[int, PartitionStore] = field(default_factory=dict)
    delivered: dict[int, int] = field(default_factory=dict)
    delivery_error: KafkaError | None = None
    # Inputs whose outputs Kafka refused for what they are (e.g. too large): blamed on abort.
    refused: dict[Coordinates, KafkaError] = field(default_factory=dict)
    size: int = 0
    emitted: int = 0
    dead: int = 0


class Worker:
    """One instance of a service: `run()` until SIGTERM, a fatal error, or `stop()`."""

    def __init__(
        self,
        service: Service,
        settings: Settings,
        codec: Codec,
        instance_id: str = "0",
        faults: FaultInjector | None = None,
        watchdog: Watchdog | None = None,
        saga_id: str = "saga_id",
    ) -> None:
        self.service = service
        # The domain's name for the saga id field: copied into a header of every output so that
        # operators find a saga's records (dead letters too) without decoding them.
        self.saga_id = saga_id
        self.settings = settings
        self.codec = codec
        self.instance_id = instance_id
        self.group_id = settings.group(service.name)
        self.transactional_id = f"{self.group_id}-{instance_id}"
        self.own_topic = settings.topic(service.own_topic)
        self.dlq_topic = settings.topic(service.dlq_topic)
        self._logical = {settings.topic(t): t for t in service.inputs}
        self.metrics = WorkerMetrics(service.name)
        self.faults = faults or FaultInjector()
        self.watchdog = watchdog or NoWatchdog()
        self.progress = Progress(stall_s=settings.stall_s)
        self.poison = PoisonTracker()
        self._stores: dict[int, PartitionStore] = {}
        self._stopping = False
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._reader: Consumer | None = None
        self._written_end: Consumer | None = None  # read_uncommitted: high watermarks only
        self._last_lag_at = 0.0

    # -- lifecycle ------------------------------------------------------------------------------

    def stop(self, *_: Any) -> None:
        """Finish the current batch, commit, and leave (SIGTERM/SIGINT handler)."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: finishing the current batch, then stopping", signum)
            self.watchdog.stop_requested()
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, max_idle_s: float | None = None) -> None:
        """Process batches until stopped. `max_idle_s` stops after that long with no input."""
        idle_since = time.monotonic()
        try:
            self._start()
            while not self._stopping:
                msgs = self._next_batch()
                self.progress.polled()
                self._report_lag()
                if not msgs:
                    self.progress.idle()
                    if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                        break
                    continue
                idle_since = time.monotonic()
                if self.poison.isolating:
                    msgs = self._keep_first(msgs)
                self._run_batch(msgs)
                if self.progress.failing_for() > 2 * self.settings.stall_s:
                    raise NoProgressError(
                        f"no batch committed for {self.progress.failing_for():.0f} s; "
                        "restarting to start afresh"
                    )
        finally:
            self._close()

    def _next_batch(self) -> list[Message]:
        """Up to batch_size records: wait up to the commit interval for the first, then take
        only what has already arrived.

        Waiting for a full batch would add the whole commit interval to every hop of a saga at
        low load; under load the fetch queue is full and batches come out large anyway.
        """
        assert self._consumer is not None
        size, wait_s = self.settings.batch_size, self.settings.commit_interval_ms / 1000
        with self.watchdog.guard("consume", wait_s):
            msgs = self._consumer.consume(size, 0)
            if not msgs:
                msgs = self._consumer.consume(1, wait_s)
                if msgs and size > 1:
                    msgs += self._consumer.consume(size - 1, 0)
        return msgs

    def _keep_first(self, msgs: list[Message]) -> list[Message]:
        """Isolation: one record per batch; the others are read again after it."""
        assert self._consumer is not None
        rewind: dict[tuple[str, int], int] = {}
        for msg in msgs[1:]:
            if msg.error() is None:
                topic, p, offset = coordinates(msg)
                rewind[(topic, p)] = min(offset, rewind.get((topic, p), offset))
        for (topic, p), offset in rewind.items():
            self._consumer.seek(TopicPartition(topic, p, offset))
        log.debug("isolating: one record per batch")
        return msgs[:1]

    def _start(self) -> None:
        admin = clients.admin_client(self.settings)
        topics = [*self._logical, self.own_topic, self.dlq_topic]
        with self.watchdog.guard("list_topics", 30):
            require_copartitioned(admin, topics)
        self._producer = clients.transactional_producer(self.settings, self.transactional_id)
        # init_transactions fences any older producer with our transactional.id and aborts
        # its open transaction, so restore below never sees a half-written batch of ours.
        self._call("init_transactions", _INIT_TXN_S, self._producer.init_transactions, _INIT_TXN_S)
        self._reader = clients.reader_consumer(self.settings)
        self._written_end = clients.reader_consumer(self.settings, committed_only=False)
        self._consumer = clients.group_consumer(self.settings, self.group_id, self.transactional_id)
        self._consumer.subscribe(
            list(self._logical),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            port = self.metrics.serve(self.settings.metrics_port, self.progress)
        except OSError as e:
            raise ConfigurationError(
                f"cannot serve metrics on 127.0.0.1:{self.settings.metrics_port}: {e.strerror}; "
                "choose another CHOREO_METRICS_PORT (each instance needs its own)"
            ) from e
        log.info(
            "worker %s started: inputs=%s own=%s metrics=%s",
            self.transactional_id, sorted(self._logical), self.own_topic, port or "off",
        )

    def _close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        with self.watchdog.guard("close", _TXN_CALL_S):
            if self._consumer is not None:
                self._consumer.close()
            for reader in (self._reader, self._written_end):
                if reader is not None:
                    reader.close()
            if self._producer is not None:
                self._producer.flush(10)
        log.info("worker %s stopped", self.transactional_id)

    def _call(self, name: str, timeout_s: float, fn: Callable[..., Any], *args: Any) -> Any:
        """A blocking client call under the watchdog, retried while librdkafka says retriable."""

        def attempt() -> Any:
            with self.watchdog.guard(name, timeout_s):
                self.faults.wedge(name)
                return fn(*args)

        return call_retrying(attempt, what=name)

    # -- rebalance callbacks (they run inside consume(), so never during a batch) ---------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.progress.ready = False
        new = sorted({tp.partition for tp in partitions} - set(self._stores))
        opened: dict[int, PartitionStore] = {}
        try:
            for p in new:
                with self.watchdog.guard("waiting for the store lock", _LOCK_WAIT_S):
                    opened[p] = PartitionStore(
                        store_path(self._state_dir, self.service.name, p),
                        lock_wait_s=_LOCK_WAIT_S, heal=True, cancelled=lambda: self._stopping,
                    )
            self._restore(opened)
        except BaseException:
            for store in opened.values():
                store.close()
            raise
        self._stores.update(opened)
        self.progress.ready = True
        log.info("assigned %s; state restored for partitions %s", _fmt(partitions), new)

    def _restore(self, stores: dict[int, PartitionStore]) -> None:
        """Restore from the own topic; a store found damaged meanwhile is healed and restored."""
        assert self._reader is not None
        for _attempt in range(len(stores) + 1):
            try:
                restore_partitions(
                    self._reader, self.codec, self.service, self.own_topic, stores,
                    cancelled=lambda: self._stopping, watchdog=self.watchdog,
                    written_end=self._written_end,
                )
                return
            except StoreDamagedError as e:
                if e.partition not in stores:
                    raise
                log.error("%s", e)
                stores[e.partition].replace_damaged()
        raise StoreDamagedError(f"the stores of {sorted(stores)} could not be restored")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions, "revoked")

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._release(partitions, "lost")

    def _release(self, partitions: list[TopicPartition], why: str) -> None:
        still = {
            tp.partition for tp in (self._consumer.assignment() if self._consumer else [])
            if tp.topic not in {x.topic for x in partitions if x.partition == tp.partition}
        }
        for p in {tp.partition for tp in partitions} - still:
            store = self._stores.pop(p, None)
            if store is not None:
                store.close()
        log.info("%s %s", why, _fmt(partitions))

    @property
    def _state_dir(self) -> Path:
        return state_dir_of(self.settings)

    # -- one batch --------------------------------------------------------------------------------

    def _run_batch(self, msgs: list[Message]) -> None:
        assert self._producer is not None and self._consumer is not None
        started = time.perf_counter()
        batch = _Batch(size=len(msgs))
        alone = coordinates(msgs[0]) if len(msgs) == 1 and msgs[0].error() is None else None
        self._call("begin_transaction", 5, self._producer.begin_transaction)
        try:
            for msg in msgs:
                self._process(msg, batch)
            self._commit(batch)
        except KafkaException as e:
            self._handle_kafka_error(e.args[0], batch, alone)
            return
        except _RecordRefused as e:
            batch.refused[e.record] = e.err
            self._failed(batch, alone, e.err, f"{e.err.name()} for an output of {_at(e.record)}")
            return
        except RegistryUnavailableError as e:
            self._failed(batch, alone, None, f"the schema registry is unavailable ({e})")
            return
        except SchemaNotRegisteredError as e:
            # A deployment without `choreo schemas register`: the input is fine, so wait for it.
            log.error("%s; retrying the batch until the schema is registered", e)
            self._failed(batch, alone, None, "a schema is not registered")
            return
        except StoreError as e:
            self._failed(batch, alone, None, f"a store failed ({e})")
            if isinstance(e, StoreDamagedError) and e.partition in self._stores:
                self._heal(e.partition)
            return
        except BaseException:
            self._rollback_stores(batch)
            raise
        self.faults.batch_committed()
        self.poison.committed()
        self.progress.committed()
        self.metrics.batch_size.labels(self.service.name).observe(len(msgs))
        self.metrics.batch_seconds.labels(self.service.name).observe(time.perf_counter() - started)
        self.metrics.processed.labels(self.service.name).inc(len(msgs))
        self.metrics.emitted.labels(self.service.name).inc(batch.emitted)
        self.metrics.dead_lettered.labels(self.service.name).inc(batch.dead)

    def _process(self, msg: Message, batch: _Batch) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                return
            raise KafkaException(err)
        topic, p, offset = coordinates(msg)
        store = self._stores.get(p)
        if store is None:  # a record of a partition we no longer own: its offset is not ours
            return
        batch.positions[(topic, p)] = offset + 1
        if p not in batch.stores:
            store.begin()
            batch.stores[p] = store
        blamed = self.poison.reason_for((topic, p, offset))
        if blamed is not None:
            self._dead_letter(msg, BlamedRecordError(blamed), batch)
            return
        try:
            event = self.codec.decode(msg.value())
            if not self.service.accepts(self._logical[topic], type(event)):
                raise DecodeError(
                    f"{type(event).SCHEMA} is not an event {self.service.name} "
                    f"subscribes to on {self._logical[topic]}"
                )
            outputs = list(self.service.decide(store, event))
            encoded = [self._encoded(out) for out in outputs]
        except (RegistryUnavailableError, SchemaNotRegisteredError, StoreError):
            raise  # not the record's fault: the batch fails and is tried again
        except Exception as e:  # noqa: BLE001 - anything a record causes goes to the DLQ
            self._dead_letter(msg, e, batch)
            return
        store.savepoint()
        try:
            for out in outputs:
                self.service.evolve(store, out)
        except StoreError:
            raise
        except Exception as e:  # noqa: BLE001 - a bad decision must not poison the partition
            store.rollback_savepoint()
            self._dead_letter(msg, e, batch)
            return
        store.release_savepoint()
        for key, value, headers in encoded:
            self._produce(self.own_topic, p, key, value, headers, batch, cause=(topic, p, offset))
            batch.emitted += 1

    def _encoded(self, out: Any) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """Key, value and headers of an output, refused here if Kafka could never take it."""
        key, value = out.hub.encode(), self.codec.encode(self.own_topic, out)
        headers = [
            ("event_type", type(out).SCHEMA.encode()),
            (self.saga_id, str(getattr(out, self.saga_id, "")).encode()),
        ]
        size = record_size(key, value, headers)
        if size > _OUTPUT_LIMIT:
            raise OutputTooLargeError(
                f"{type(out).__name__} would be {size} bytes, more than a Kafka record may hold "
                f"({_OUTPUT_LIMIT})"
            )
        return key, value, headers

    def _dead_letter(self, msg: Message, error: BaseException, batch: _Batch) -> None:
        topic, p, offset = coordinates(msg)
        saga = dict(header_pairs(msg)).get(self.saga_id) or b"-"
        log.warning(
            "dead-lettering %s[%d]@%d: %s: %s", topic, p, offset, type(error).__name__,
            str(error)[:500], extra={"saga": saga[:128].decode(errors="replace")},
        )
        letter = dead_letter(msg, error, _OUTPUT_LIMIT)
        self._produce(self.dlq_topic, p, letter.key, letter.value, letter.headers, None)
        batch.dead += 1

    def _produce(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        batch: _Batch | None,
        cause: Coordinates | None = None,
    ) -> None:
        assert self._producer is not None
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None
        if batch is not None:
            def on_delivery(err: KafkaError | None, m: Message, b: _Batch = batch) -> None:
                if err is not None:
                    b.delivery_error = err
                    if cause is not None and is_record_error(err):
                        b.refused[cause] = err
                    return
                _t, part, off = coordinates(m)
                if off + 1 > b.delivered.get(part, 0):
                    b.delivered[part] = off + 1
        with self.watchdog.guard("produce", _TXN_CALL_S):
            while True:
                try:
                    self._producer.produce(
                        topic, value=value, key=key, partition=partition,
                        headers=headers,  # type: ignore[arg-type]  # the stub is narrower
                        on_delivery=on_delivery,
                    )
                    return
                except BufferError:
                    self._producer.poll(0.05)  # local queue full: let deliveries drain
                except KafkaException as e:
                    if cause is not None and is_record_error(e.args[0]):
                        raise _RecordRefused(cause, e.args[0]) from e
                    raise

    def _commit(self, batch: _Batch) -> None:
        assert self._producer is not None and self._consumer is not None
        producer, consumer = self._producer, self._consumer
        # flush() serves the delivery reports, which give the own-topic offsets for checkpoints.
        # Bounded: after the transaction timeout the broker aborts the transaction anyway.
        flush_s = self.settings.transaction_timeout_ms / 1000
        with self.watchdog.guard("flush", flush_s):
            left = producer.flush(flush_s)
        if batch.delivery_error is not None:
            raise KafkaException(batch.delivery_error)
        if left:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{left} output(s) undelivered"))
        offsets = [TopicPartition(t, p, o) for (t, p), o in batch.positions.items()]

        def send_offsets() -> None:
            # The group metadata is read again on each attempt: after a rebalance the old
            # generation can never commit.
            with self.watchdog.guard("send_offsets_to_transaction", _TXN_CALL_S):
                self.faults.wedge("send_offsets_to_transaction")
                producer.send_offsets_to_transaction(
                    offsets, consumer.consumer_group_metadata(), _TXN_CALL_S
                )

        # Few attempts: giving up here only aborts a batch that is then redone.
        call_retrying(send_offsets, attempts=3, what="send_offsets_to_transaction")
        self.faults.at("before_kafka_commit")
        started = time.perf_counter()
        # A commit that times out is retried as the same commit, never re-sent in a new one.
        self._call("commit_transaction", _TXN_CALL_S, producer.commit_transaction, _TXN_CALL_S)
        self.metrics.commit_seconds.labels(self.service.name).observe(time.perf_counter() - started)
        self.faults.at("after_kafka_commit")
        for p, store in batch.stores.items():
            try:
                store.commit(next_offset=batch.delivered.get(p))
            except StoreError as e:
                # Kafka has committed: nothing to abort. The store is left behind its log, as
                # after a crash here, and catches up from its checkpoint (healed if damaged).
                log.error("store commit after the Kafka commit failed: %s", e)
                store.rollback()
                if isinstance(e, StoreDamagedError):
                    store.replace_damaged()
                self._restore({p: store})

    # -- failure triage -----------------------------------------------------------------------


    def _handle_kafka_error(
        self, err: KafkaError, batch: _Batch, alone: Coordinates | None
    ) -> None:
        if is_fatal(err):
            self._rollback_stores(batch)
            raise FencedError(
                f"{self.transactional_id} can no longer write ({err.name()}: {err.str()}); "
                "another instance with the same id took over, or the producer hit a fatal error"
            )
        self._failed(batch, alone, err, f"{err.name()}: {err.str()}")

    def _failed(
        self, batch: _Batch, alone: Coordinates | None, err: KafkaError | None, why: str
    ) -> None:
        """The batch cannot commit: blame what can be blamed, abort, and let the loop go on."""
        log.warning("aborting the batch after %s", why)
        refused = {record: f"{e.name()}: {e.str()}" for record, e in batch.refused.items()}
        self.poison.aborted(batch.size, alone, err, refused)
        self.progress.failed()
        self._abort(batch)

    def _abort(self, batch: _Batch) -> None:
        """Abort the Kafka transaction, roll back SQLite, and rewind inputs to committed offsets."""
        assert self._producer is not None and self._consumer is not None
        self.metrics.aborted.labels(self.service.name).inc()
        self._rollback_stores(batch)
        try:
            self._call("abort_transaction", _TXN_CALL_S, self._producer.abort_transaction, _TXN_CALL_S)
        except KafkaException as e:
            if e.args[0].fatal():
                raise FencedError(f"abort failed with a fatal error: {e.args[0].str()}") from e
            raise
        assignment = self._consumer.assignment()
        if assignment:
            # Without the committed offsets the loop cannot rewind: retried, and if it still
            # fails the worker exits and its successor reads from the committed offsets.
            committed = self._call(
                "committed", _TXN_CALL_S, self._consumer.committed, assignment, _TXN_CALL_S
            )
            for tp in committed:
                if tp.offset < 0:
                    tp.offset = -2  # OFFSET_BEGINNING: nothing committed yet
                self._consumer.seek(tp)

    def _heal(self, partition: int) -> None:
        """Replace a store found damaged mid-batch (already rolled back) and restore it."""
        store = self._stores[partition]
        store.replace_damaged()
        self._restore({partition: store})

    def _rollback_stores(self, batch: _Batch) -> None:
        for store in batch.stores.values():
            store.rollback()

    # -- lag ----------------------------------------------------------------------------------

    def _report_lag(self) -> None:
        now = time.monotonic()
        if self._consumer is None or now - self._last_lag_at < 5:
            return
        self._last_lag_at = now
        assignment = self._consumer.assignment()
        for tp in self._consumer.position(assignment) if assignment else []:
            try:
                _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high >= 0 and tp.offset >= 0:
                self.metrics.lag.labels(self.service.name, tp.topic, str(tp.partition)).set(
                    high - tp.offset
                )


def _at(record: Coordinates) -> str:
    topic, p, offset = record
    return f"{topic}[{p}]@{offset}"


def _fmt(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


def run_worker_safely(worker: Worker) -> int:
    """Exit code for the CLI: 0 after a clean stop, 1 after a fenced or fatal stop, 4 when no
    batch could commit for twice the stall limit (the watchdog exits with 3 on its own)."""
    try:
        worker.run()
    except NoProgressError as e:
        log.error("%s", e)
        return EXIT_NO_PROGRESS
    except FencedError as e:
        log.error("%s", e)
        return 1
    except StopRequested as e:
        log.info("%s: asked to stop", e)
        return 0
    except ChoreoError as e:
        log.error("%s", e)
        return 1
    except KafkaException as e:
        # Not one we could triage in place (e.g. raised from a rebalance callback): stop with a
        # clear line and let the supervisor (`choreo run`, systemd, k8s) start us again.
        log.error("stopping after a Kafka error: %s", e.args[0] if e.args else e)
        return 1
    return 0
