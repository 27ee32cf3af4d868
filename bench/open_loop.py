"""Sending orders into the saga on a fixed schedule (harness.watch.EndWatcher sees them end).

Open loop: order i is sent at start + i / rate whether or not earlier sagas have ended, so a
slow pipeline shows up as latency instead of slowing the generator down. Start and end times
are Kafka record timestamps: the PlaceOrder record's (set when the edge produced it) and the
end event's on the orders topic (set when the orders worker produced it, just before its commit).
"""

from __future__ import annotations

import functools
import time

from confluent_kafka import KafkaError, Message

from bench.kafka_io import BenchError, Headers
from choreo.kafka import clients
from choreo.serde.codec import Codec
from choreo.settings import Settings
from consumers.orders.events import PlaceOrder


def _stamp(stamps: dict[str, int], order_id: str, err: KafkaError | None, msg: Message) -> None:
    if err is None:
        stamps[order_id] = msg.timestamp()[1]


class OrderSender:
    """One idempotent producer for every run of a deployment, so no run pays for a producer's
    start (connections, metadata, its producer id): orders sent before it has a producer id
    wait for one, and would show hundreds of ms of latency that no saga caused."""

    def __init__(self, settings: Settings, codec: Codec) -> None:
        self.settings, self.codec = settings, codec
        self.topic = settings.topic("orders.commands")
        self.producer = clients.plain_producer(settings)

    def send(self, orders: list[PlaceOrder], rate: float | None) -> dict[str, int]:
        """Send `orders` at `rate` per second (None: as fast as possible); order id -> record ms."""
        topic, producer = self.topic, self.producer
        # Encoded before the clock starts.
        encoded = [(o.order_id, o.hub.encode(), self.codec.encode(topic, o)) for o in orders]
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
