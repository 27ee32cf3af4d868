"""Seeing sagas end from outside: the seed answered, orders ended (decoded, as operators see
them), and a light tail of saga ends with their broker times (headers only, for measurements)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from choreo.kafka import clients
from choreo.kafka.messages import EVENT_TYPE_HEADER
from choreo.serde.codec import Codec
from choreo.settings import Settings
from consumers.domain import SAGA_ENDS
from producers.saga_watch import SagaWatcher

# A tail that sees a commit within milliseconds, not after the default 500 ms fetch wait.
TAIL_CONFIG: dict[str, Any] = {"enable.partition.eof": False, "fetch.wait.max.ms": 10}
_ENDS: list[Any] = list(SAGA_ENDS)  # event classes: each has SCHEMA
END_TYPES = {c.SCHEMA.encode(): c.__name__ for c in _ENDS}


def wait_seeded(settings: Settings, codec: Codec, seed_ids: set[str], timeout: float = 120) -> None:
    """Wait until packaging and drones have answered every command in `seed_ids`."""
    watcher = SagaWatcher(settings, codec, topics=("packaging", "drones"))
    try:
        assert watcher.wait_answered(seed_ids, timeout), "the seed was never applied"
    finally:
        watcher.close()


def wait_for_ends(
    settings: Settings, codec: Codec, order_ids: Iterable[str], timeout: float = 180
) -> dict[str, str]:
    """Poll the event topics until every order has ended; order id -> how it ended."""
    watcher = SagaWatcher(settings, codec)
    try:
        return watcher.wait_ended(set(order_ids), timeout)
    finally:
        watcher.close()


class EndWatcher:
    """Tails the orders topic (read_committed) and keeps each saga's end event and its time.

    Only record headers are read (event_type, order_id), so the watcher costs the measured
    workers next to nothing; the time is the end record's Kafka timestamp.
    """

    def __init__(self, settings: Settings) -> None:
        topic = settings.topic("orders")
        self._consumer = clients.reader_consumer(settings, **TAIL_CONFIG)
        parts = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.ended: dict[str, tuple[str, int]] = {}  # order id -> (end event name, ms)

    def poll(self, timeout: float) -> None:
        for msg in self._consumer.consume(1000, timeout):
            if msg.error() is not None:
                continue
            raw = msg.headers() or []
            pairs = raw.items() if isinstance(raw, dict) else raw  # consumed headers are a list
            headers = {k: v for k, v in pairs if isinstance(v, bytes)}
            name = END_TYPES.get(headers.get(EVENT_TYPE_HEADER, b""))
            order_id = headers.get("order_id", b"").decode()
            if name is not None and order_id not in self.ended:
                self.ended[order_id] = (name, msg.timestamp()[1])

    def wait_for(self, order_ids: Iterable[str], timeout: float) -> dict[str, tuple[str, int]]:
        wanted = set(order_ids)
        deadline = time.monotonic() + timeout
        while not wanted <= self.ended.keys():
            if time.monotonic() > deadline:
                missing = len(wanted - self.ended.keys())
                raise TimeoutError(f"{missing} of {len(wanted)} sagas did not end within {timeout:.0f}s")
            self.poll(0.2)
        return {o: self.ended[o] for o in wanted}

    def close(self) -> None:
        self._consumer.close()
