"""Sending orders into the saga on a fixed schedule, and seeing when each saga ended.

Open loop: order i is sent at start + i / rate whether or not earlier sagas have ended, so a
slow pipeline shows up as latency instead of slowing the generator down. Start and end times
are Kafka record timestamps: the PlaceOrder record's (set when the edge produced it) and the
end event's on the orders topic (set when the orders worker produced it, just before its commit).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition

from bench.kafka_io import BenchError, Headers
from choreo.kafka import clients
from choreo.serde.codec import Codec
from choreo.settings import Settings
from consumers.domain import SAGA_ENDS
from consumers.orders.events import PlaceOrder

# A tail that sees a commit within milliseconds, not after the default 500 ms fetch wait.
TAIL_CONFIG: dict[str, Any] = {"enable.partition.eof": False, "fetch.wait.max.ms": 10}
END_TYPES = {c.SCHEMA.encode(): c.__name__ for c in SAGA_ENDS}  # type: ignore[attr-defined]


def _stamp(stamps: dict[str, int], order_id: str, err: KafkaError | None, msg: Message) -> None:
    if err is None:
        stamps[order_id] = msg.timestamp()[1]


def send_orders(
    settings: Settings, codec: Codec, orders: list[PlaceOrder], rate: float | None
) -> dict[str, int]:
    """Send `orders` at `rate` per second (None: as fast as possible); order id -> record ms."""
    topic = settings.topic("orders.commands")
    encoded = [(o.order_id, o.hub.encode(), codec.encode(topic, o)) for o in orders]  # not on the clock
    producer = clients.plain_producer(settings)
    stamps: dict[str, int] = {}
    began = time.perf_counter()
    for i, (order_id, key, value) in enumerate(encoded):
        if rate is not None:
            wait = began + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)  # the schedule, not synchronisation
        headers: Headers = [("event_type", PlaceOrder.SCHEMA.encode()), ("order_id", order_id.encode())]
        while True:
            try:
                producer.produce(topic, value, key, headers=headers,
                                 on_delivery=functools.partial(_stamp, stamps, order_id))
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    if producer.flush(60) or len(stamps) != len(encoded):
        raise BenchError(f"only {len(stamps)} of {len(encoded)} orders were delivered")
    return stamps


class EndWatcher:
    """Tails the orders topic (read_committed) and keeps each saga's end event and its time."""

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
            name = END_TYPES.get(headers.get("event_type", b""))
            order_id = headers.get("order_id", b"").decode()
            if name is not None and order_id not in self.ended:
                self.ended[order_id] = (name, msg.timestamp()[1])

    def wait_for(self, order_ids: Iterable[str], timeout: float) -> dict[str, tuple[str, int]]:
        wanted = set(order_ids)
        deadline = time.monotonic() + timeout
        while not wanted <= self.ended.keys():
            if time.monotonic() > deadline:
                missing = len(wanted - self.ended.keys())
                raise BenchError(f"{missing} of {len(wanted)} sagas did not end within {timeout:.0f}s")
            self.poll(0.2)
        return {o: self.ended[o] for o in wanted}

    def close(self) -> None:
        self._consumer.close()
