"""The exactly-once loop of one worker instance (docs/adr/0005-exactly-once-worker.md).

The loop itself is thin: consume a batch, hand it to the commit protocol (choreo/runtime/commit.py),
and keep the books (poison tracker, health, metrics). The parts live in modules of their own:
assignment.py (stores follow the assignment, restored before any input), processing.py (one
record: decide, evolve, dead-letter), outputs.py (producing into the transaction), intake.py
(reading a batch), lag.py (lag metrics).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from choreo.contract import Service
from choreo.envelope import Envelope
from choreo.exceptions import ChoreoError, ConfigurationError, StopRequested
from choreo.kafka import clients
from choreo.kafka.messages import Consumed
from choreo.kafka.topics import create_like, require_copartitioned
from choreo.kafka.turns import TakingTurns, turn_ids
from choreo.runtime.assignment import AssignedStores
from choreo.runtime.broker_watch import BrokerWatch, watch_client
from choreo.runtime.calls import guarded_call
from choreo.runtime.commit import TXN_CALL_S, BatchOutcome, CommitProtocol
from choreo.runtime.faults import FaultInjector
from choreo.runtime.first_read import start_at_the_end
from choreo.runtime.foreign_records import SkippedRecords
from choreo.runtime.health import Progress
from choreo.runtime.intake import keep_first, next_batch
from choreo.runtime.lag import LagReporter
from choreo.runtime.metrics import WorkerMetrics
from choreo.runtime.observation import CommitBatch, NoTracing, WorkerObservation
from choreo.runtime.poison import PoisonTracker

# Re-exported: the exceptions a dead letter names, importable from here as before.
from choreo.runtime.processing import BlamedRecordError, OutputTooLargeError, RecordProcessor
from choreo.runtime.renewal import ProducerRenewal
from choreo.runtime.restore import undecided_wait_s
from choreo.runtime.routing import PartitionRouting
from choreo.runtime.saga_ages import SagaAges
from choreo.runtime.stable_watch import HangingTransactionWatch
from choreo.runtime.store import state_dir_of
from choreo.runtime.timer_firing import TimerFiring
from choreo.runtime.watchdog import EXIT_NO_PROGRESS, NoWatchdog, Watchdog
from choreo.serde.codec import Codec
from choreo.settings import Settings

__all__ = [
    "BlamedRecordError", "NoProgressError", "OutputTooLargeError", "Worker", "run_worker_safely",
]

log = logging.getLogger(__name__)

_INIT_TXN_S = 60.0
_TOPIC_CALL_S = 20.0  # each metadata or create-topic call of the retry topic's creation


class NoProgressError(ChoreoError):
    """Batches kept failing for longer than the stall limit: restart and start afresh."""


class Worker:
    """One instance of a service: `run()` until SIGTERM, a fatal error, or `stop()`."""

    def __init__(
        self,
        service: Service,
        settings: Settings,
        codec: Codec,
        envelope: Envelope,
        instance_id: str = "0",
        faults: FaultInjector | None = None,
        watchdog: Watchdog | None = None,
        supervisor_pid: int | None = None,
        tracing: WorkerObservation | None = None,
        timer_topics: Iterable[str] = (),
    ) -> None:
        self.service = service
        # Spans or none: NoTracing hands every part back unwrapped (not one call per record).
        self.tracing: WorkerObservation = tracing or NoTracing()
        # A worker started by `choreo run` stops when that supervisor is gone (SIGKILLed, say):
        # nobody would restart it or stop it, and it would hold its partitions for ever.
        self.supervisor_pid = supervisor_pid
        # The domain's envelope: the key field routes and keys records, the saga field is copied
        # into a header of every output.
        self.envelope = envelope
        self.timer_topics = frozenset(timer_topics)  # other services' topics with TimerFired records
        self.settings = settings
        self.codec = codec
        self.instance_id = instance_id
        self.group_id = settings.group(service.name)
        self.transactional_id = f"{self.group_id}-{instance_id}"
        self.own_topic = settings.topic(service.own_topic)
        self.dlq_topic = settings.topic(service.dlq_topic)
        # The inputs and the retry topic, where `choreo dlq retry` sends this service's dead
        # letters back (choreo/runtime/retried.py): physical name -> logical name. A retry
        # partition is read only beside the same partition of the inputs (assignment.py).
        self._logical = {settings.topic(t): t for t in [*service.inputs, service.retry_topic]}
        self.metrics = WorkerMetrics(service.name)
        self.faults = faults or FaultInjector({})  # none: only the composition root reads them
        self.watchdog = watchdog or NoWatchdog()
        self.progress = Progress(stall_s=settings.stall_s)
        self.poison = PoisonTracker()
        self.saga_ages = SagaAges()
        self.metrics.follow_sagas(self.saga_ages)
        self._stopping = False
        # Set up by _start(), once the clients exist.
        self._consumer: Consumer | None = None
        self._producer: TakingTurns | None = None
        self._readers: list[Consumer] = []
        self._assigned: AssignedStores | None = None
        self._commit_batch: CommitBatch | None = None
        self._protocol: CommitProtocol | None = None
        self._broker_watch: BrokerWatch | None = None
        self._timers: TimerFiring | None = None

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
            consumer, lag, hanging = self._start()
            size, wait_s = self.settings.batch_size, self.settings.commit_interval_ms / 1000
            while not self._stopping:
                if self._orphaned():
                    break
                msgs = next_batch(consumer, self.watchdog, size, wait_s)
                self.progress.polled()
                lag.report()
                if self._assigned is not None:
                    hanging.check(self._assigned.stores)
                    self.saga_ages.check(self._assigned.stores)
                if msgs:
                    idle_since = time.monotonic()
                    if self.poison.isolating:
                        msgs = keep_first(consumer, msgs)
                    self._run_batch(msgs)
                elif self._timers is not None and self._timers.due():
                    self._run_batch([])  # fires them: timers do not wait for input
                else:
                    self._commit_carried()
                    self.progress.idle()
                    if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                        break
                    continue
                if self.progress.failing_for() > 2 * self.settings.stall_s:
                    raise NoProgressError(
                        f"no batch committed for {self.progress.failing_for():.0f} s; "
                        "restarting to start afresh"
                    )
            self._commit_carried()  # stopping: leave no offsets behind that are done with
        finally:
            self._close()

    def _orphaned(self) -> bool:
        if self.supervisor_pid is None or os.getppid() == self.supervisor_pid:
            return False
        log.warning("the supervisor (pid %d) is gone: stopping", self.supervisor_pid)
        return True

    def _start(self) -> tuple[Consumer, LagReporter, HangingTransactionWatch]:
        """Create the clients and wire the parts together; returns the consumer and the two
        reporters the loop calls on every turn (lag, hanging transactions)."""
        if self.service.check_settings is not None:
            self.service.check_settings()  # the service's own settings, before any client
        admin = clients.admin_client(self.settings)
        with self.watchdog.guard("creating the retry topic", 3 * _TOPIC_CALL_S):
            # Deployments made before retry topics existed have none: made like the own topic.
            create_like(admin, self.settings.topic(self.service.retry_topic), self.own_topic,
                        timeout=_TOPIC_CALL_S)
        with self.watchdog.guard("list_topics", 30):
            partitions = require_copartitioned(admin, [*self._logical, self.own_topic, self.dlq_topic])
        # Read once: the routing check runs on every record and must not ask the cluster.
        routing = PartitionRouting({t: partitions for t in [*self._logical, self.own_topic]},
                                   self.envelope.key_field)
        def make_producers() -> list[Producer]:
            return [clients.transactional_producer(self.settings, tid)
                    for tid in turn_ids(self.transactional_id, self.settings.txn_producers)]

        producer = self._producer = TakingTurns(make_producers())
        renewal = ProducerRenewal(producer, make_producers, self.watchdog, self.faults, _INIT_TXN_S)
        self._broker_watch = BrokerWatch(watch_client(self.settings), self.own_topic, renewal.request)
        self._broker_watch.start()
        # init_transactions fences any older producer with our transactional.ids and aborts
        # their open transactions, so restore below never sees a half-written batch of ours.
        guarded_call(
            self.watchdog, self.faults, "init_transactions", _INIT_TXN_S * len(producer.producers),
            producer.init_transactions, _INIT_TXN_S,
        )
        reader = clients.reader_consumer(self.settings)
        written_end = clients.reader_consumer(self.settings, committed_only=False)
        if self.service.first_read == "latest":
            with self.watchdog.guard("setting the first positions", 4 * _TOPIC_CALL_S):
                start_at_the_end(admin, reader, self.group_id, list(self._logical))
        self._readers = [reader, written_end]
        assigned = self._assigned = AssignedStores(
            service=self.service, codec=self.codec, own_topic=self.own_topic,
            state_dir=state_dir_of(self.settings), topic_prefix=self.settings.topic_prefix,
            reader=reader, written_end=written_end,
            watchdog=self.watchdog, progress=self.progress, cancelled=lambda: self._stopping,
            skipped=SkippedRecords(
                self.service.name, self.dlq_topic, lambda: clients.plain_producer(self.settings),
                self.metrics.restore_skipped,
            ),
            undecided_s=undecided_wait_s(self.settings.transaction_timeout_ms),
        )
        consumer = self._consumer = clients.group_consumer(
            self.settings, self.group_id, self.transactional_id,
            error_cb=clients.logged_errors(renewal.on_client_error),
            # Where a group without committed positions starts: the service says (first_read).
            **{"auto.offset.reset": self.service.first_read},
        )

        def on_lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            assigned.on_lost(consumer, partitions)
            renewal.on_session_lost()

        consumer.subscribe(
            list(self._logical),
            on_assign=assigned.on_assign, on_revoke=assigned.on_revoke, on_lost=on_lost,
        )
        tracing = self.tracing
        output = tracing.output(producer, self.watchdog, self.own_topic)
        processor = RecordProcessor(
            self.service, self.codec, output, self.poison,
            own_topic=self.own_topic, dlq_topic=self.dlq_topic, logical_topics=self._logical,
            saga_field=self.envelope.saga_field, routing=routing, timer_topics=self.timer_topics,
        )
        timers = self._timers = (
            TimerFiring(assigned.stores, processor.fire, self.settings.timer_check_ms / 1000)
            if self.service.uses_timers else None
        )
        protocol = CommitProtocol(
            renewal=renewal, consumer=consumer, stores=assigned.stores,
            process=tracing.decisions(processor.process),
            restore=assigned.restore_partition,
            faults=self.faults, watchdog=self.watchdog,
            flush_timeout_s=self.settings.transaction_timeout_ms / 1000,
            transactional_id=self.transactional_id,
            carry_s=self.settings.commit_interval_ms / 1000, assignment=lambda: assigned.changes,
            timers=timers,
        )
        self._protocol = protocol
        self._commit_batch = tracing.commits(protocol.commit)
        lag = LagReporter(consumer, self.metrics)
        hanging = HangingTransactionWatch(
            self.own_topic, reader, written_end, self.watchdog, self.progress,
            limit_s=undecided_wait_s(self.settings.transaction_timeout_ms),
        )
        try:
            port = self.metrics.serve(
                self.settings.metrics_port, self.progress, self.settings.metrics_host
            )
        except OSError as e:
            raise ConfigurationError(
                f"cannot serve metrics on {self.settings.metrics_host}:{self.settings.metrics_port}: "
                f"{e.strerror or e}; choose another CHOREO_METRICS_PORT (each instance needs its own) "
                "or CHOREO_METRICS_HOST (an address of this machine)"
            ) from e
        log.info(
            "worker %s started: inputs=%s own=%s metrics=%s",
            self.transactional_id, sorted(self._logical), self.own_topic,
            f"{self.settings.metrics_host}:{port}" if port else "off",
        )
        return consumer, lag, hanging

    def _close(self) -> None:
        """Release stores and clients, each step on its own, and never raise.

        `run` calls this in `finally`: an error here would replace the one that ended the loop
        (a fencing, say) with a traceback. A fenced client is the usual case: its fatal error
        can surface in close or flush, and confluent-kafka then runs the next delivery report
        with that exception still set, so the report fails as a SystemError (see
        `clients.client_error_text`). Nothing left here matters once the worker stops: what a
        transactional producer still holds is aborted by the broker anyway.
        """
        if self._broker_watch is not None:
            self._broker_watch.close()
        if self._assigned is not None:
            self._close_step("the state stores", self._assigned.close)
        with self.watchdog.guard("close", TXN_CALL_S):
            if self._consumer is not None:
                self._close_step("the consumer", self._consumer.close)
            for reader in self._readers:
                self._close_step("a reader", reader.close)
            if self._producer is not None:
                self._close_step("the producers", functools.partial(self._producer.flush_all, 10))
        log.info("worker %s stopped", self.transactional_id)

    @staticmethod
    def _close_step(what: str, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - closing goes on; the loop's own error wins
            log.warning("closing %s failed: %s", what, clients.client_error_text(e))

    # -- one batch --------------------------------------------------------------------------------

    def _commit_carried(self) -> None:
        """Commit the offsets of batches that wrote nothing, once the input has gone quiet (a
        transaction with those offsets alone)."""
        if self._protocol is not None and self._protocol.carrying:
            self._run_batch([])

    def _run_batch(self, msgs: list[Consumed]) -> None:
        assert self._commit_batch is not None
        started = time.perf_counter()
        alone = msgs[0].coordinates if len(msgs) == 1 and msgs[0].error is None else None
        outcome = self._commit_batch(msgs)
        if outcome.committed:
            self.poison.committed()
            self.progress.committed()
            self._count_committed(outcome, time.perf_counter() - started)
            return
        # Aborted: blame what can be blamed; the loop goes on from the committed offsets.
        batch = outcome.batch
        if batch.timers_fired:
            # A refusal may have been of a firing's output: no input record is to blame for it.
            alone = None
            if self._timers is not None:
                self._timers.retry_soon()
        refused = {record: f"{e.name()}: {e.str()}" for record, e in batch.refused.items()}
        self.poison.aborted(batch.size, alone, outcome.error, refused)
        self.progress.failed()
        self.metrics.aborted.labels(self.service.name).inc()

    def _count_committed(self, outcome: BatchOutcome, seconds: float) -> None:
        name, batch, m = self.service.name, outcome.batch, self.metrics
        if not outcome.carried:  # a carried batch's commit sends nothing: no commit to time
            m.commit_seconds.labels(name).observe(outcome.commit_seconds)
        m.batch_size.labels(name).observe(batch.size)
        m.batch_seconds.labels(name).observe(seconds)
        m.processed.labels(name).inc(batch.size)
        for event, count in batch.emitted_by_type.items():
            m.emitted.labels(name, event).inc(count)
        m.dead_lettered.labels(name).inc(batch.dead)
        if self._timers is not None:
            m.timers_fired.labels(name).inc(batch.timers_fired)
            m.timer_errors.labels(name).inc(batch.timer_errors)
            for late in batch.timer_lateness:
                m.timer_lateness.labels(name).observe(late)
            m.timers_pending.labels(name).set(self._timers.pending)
            m.oldest_timer_overdue.labels(name).set(self._timers.overdue_s)


def run_worker_safely(worker: Worker) -> int:
    """Exit code for the CLI: 0 after a clean stop, 1 after a fenced or fatal stop (FencedError is
    a ChoreoError), 4 when no batch could commit for twice the stall limit (the watchdog exits
    with 3 on its own)."""
    try:
        worker.run()
    except NoProgressError as e:
        log.error("%s", e)
        return EXIT_NO_PROGRESS
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
    except SystemError as e:
        # confluent-kafka's way of surfacing a fatal client error (a fenced producer) inside a
        # flush or poll: the SystemError is caused by the KafkaException that says what happened.
        if not _caused_by_kafka(e):
            raise
        log.error("stopping after a Kafka error: %s", clients.client_error_text(e))
        return 1
    return 0


def _caused_by_kafka(e: BaseException) -> bool:
    cause = e.__cause__ or e.__context__
    while cause is not None:
        if isinstance(cause, KafkaException):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
