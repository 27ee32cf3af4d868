"""Consumer lag per input partition, for the `choreo_consumer_lag` gauge."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException

from choreo.runtime.metrics import WorkerMetrics

# Lag is for dashboards: every few seconds is enough, and each report asks for positions.
REPORT_EVERY_S = 5.0


class LagReporter:
    def __init__(
        self,
        consumer: Consumer,
        metrics: WorkerMetrics,
        every_s: float = REPORT_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.metrics = metrics
        self.every_s = every_s
        self.clock = clock
        self._last_at: float | None = None
        # The (topic, partition) series last set: a partition revoked since is removed from the
        # gauge, or its last value would stand for ever on this instance (the new owner reports
        # its own), and an alert on lag would fire on a partition nobody here reads.
        self._shown: set[tuple[str, int]] = set()

    def report(self) -> None:
        """Set the gauge from the cached high watermarks, at most once per `every_s`."""
        now = self.clock()
        if self._last_at is not None and now - self._last_at < self.every_s:
            return
        self._last_at = now
        assignment = self.consumer.assignment()
        service = self.metrics.service
        for tp in self.consumer.position(assignment) if assignment else []:
            try:
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue  # no cached watermark yet: the next report has one
            if high >= 0 and tp.offset >= 0:
                self.metrics.lag.labels(service, tp.topic, str(tp.partition)).set(high - tp.offset)
                self._shown.add((tp.topic, tp.partition))
        assigned = {(tp.topic, tp.partition) for tp in assignment}
        for topic, partition in self._shown - assigned:
            self.metrics.lag.remove(service, topic, str(partition))
        self._shown &= assigned
