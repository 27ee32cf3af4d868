"""Prometheus metrics of a worker: records, dead letters, batch and commit latency, lag, progress."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from choreo.runtime.health import Progress, serve_endpoints
from choreo.runtime.saga_ages import SagaAges


class WorkerMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        # process_start_time_seconds and friends: a restart (the watchdog's exit included) shows
        # as a new start time, which the restart alert counts without any state kept here.
        ProcessCollector(registry=self.registry)
        labels = ["service"]
        self.processed = Counter(
            "choreo_records_processed", "Input records processed", labels, registry=self.registry
        )
        self.emitted = Counter(
            "choreo_events_emitted", "Own events produced, by event type (its schema's short name)",
            ["service", "event"], registry=self.registry,
        )
        self.dead_lettered = Counter(
            "choreo_records_dead_lettered", "Input records sent to the DLQ", labels,
            registry=self.registry,
        )
        self.aborted = Counter(
            "choreo_batches_aborted", "Batches whose transaction was aborted", labels,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "choreo_batch_size", "Records per batch", labels, registry=self.registry,
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
        )
        self.batch_seconds = Histogram(
            "choreo_batch_seconds", "Batch wall time, consume to SQLite commit", labels,
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "choreo_commit_seconds", "Kafka transaction commit time", labels, registry=self.registry
        )
        self.lag = Gauge(
            "choreo_consumer_lag", "Records behind the end of an input partition",
            ["service", "topic", "partition"], registry=self.registry,
        )
        self.last_commit = Gauge(
            "choreo_last_commit_timestamp_seconds",
            "When the worker last committed a batch (epoch seconds; 0 = not yet)", labels,
            registry=self.registry,
        )
        self.failing_seconds = Gauge(
            "choreo_failing_seconds",
            "How long batches have failed without a commit in between (0 = not failing)", labels,
            registry=self.registry,
        )
        self.restore_skipped = Counter(
            "choreo_restore_skipped_records",
            "Records on the own topic that restore skipped as not the service's (reason: "
            "undecodable, not_emitted); each has a copy in the DLQ",
            ["service", "partition", "reason"], registry=self.registry,
        )
        self.held_back = Gauge(
            "choreo_partitions_held_back",
            "Partitions assigned but not served: their state could not be restored (see /readyz)",
            labels, registry=self.registry,
        )
        self.hanging = Gauge(
            "choreo_hanging_transactions",
            "Own partitions whose stable offset has not moved for longer than any transaction of "
            "the service may last: a hanging transaction that stalls every reader (see /readyz)",
            labels, registry=self.registry,
        )
        self.timers_fired = Counter(
            "choreo_timers_fired", "Timers fired (each once, with what it decided)", labels,
            registry=self.registry,
        )
        self.timer_errors = Counter(
            "choreo_timer_errors",
            "Timer firings whose decide or evolve raised: recorded as fired with no events",
            labels, registry=self.registry,
        )
        self.timer_lateness = Histogram(
            "choreo_timer_lateness_seconds", "From a timer's due time to its firing", labels,
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
        )
        self.timers_pending = Gauge(
            "choreo_timers_pending", "Timers set and not yet fired, over the assigned partitions",
            labels, registry=self.registry,
        )
        self.oldest_timer_overdue = Gauge(
            "choreo_oldest_timer_overdue_seconds",
            "How long the earliest due timer of the assigned partitions has waited (0 = none due)",
            labels, registry=self.registry,
        )
        self.oldest_saga_age = Gauge(
            "choreo_oldest_saga_age_seconds",
            "Age of the oldest saga the assigned partitions hold open (marked by the service's "
            "evolve with saga_started, until saga_ended); 0 when none is held",
            labels, registry=self.registry,
        )
        self.sagas_in_flight = Gauge(
            "choreo_sagas_in_flight",
            "Sagas the assigned partitions hold open (counted every few seconds)",
            labels, registry=self.registry,
        )
        self.service = service

    def serve(self, port: int, progress: Progress, host: str = "127.0.0.1") -> int:
        """Serve /metrics, /healthz, /readyz on host:port (0 = no endpoint); returns the port."""
        if port <= 0:
            return 0
        self.follow(progress)
        server = serve_endpoints(self.registry, progress, port, host)
        return int(server.server_port)

    def follow(self, progress: Progress) -> None:
        """Make the gauges that describe `progress` read it at each scrape, so they cannot
        disagree with /healthz and /readyz."""
        self.last_commit.labels(self.service).set_function(lambda: progress.last_commit_wall)
        self.failing_seconds.labels(self.service).set_function(progress.failing_for)
        self.held_back.labels(self.service).set_function(lambda: len(progress.held_back))
        self.hanging.labels(self.service).set_function(lambda: len(progress.hanging))

    def follow_sagas(self, ages: SagaAges) -> None:
        """Make the saga gauges read `ages` at each scrape: the age rises between two looks."""
        self.oldest_saga_age.labels(self.service).set_function(ages.oldest_age_s)
        self.sagas_in_flight.labels(self.service).set_function(lambda: ages.in_flight)
