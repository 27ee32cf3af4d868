"""Reading a batch from the group consumer, and taking batches apart while isolating poison."""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, TopicPartition

from choreo.kafka.messages import Consumed, consumed
from choreo.runtime.watchdog import Watchdog

log = logging.getLogger(__name__)


def next_batch(consumer: Consumer, watchdog: Watchdog, size: int, wait_s: float) -> list[Consumed]:
    """Up to `size` records, each read into its `Consumed` value (the worker's one intake): wait up to
    `wait_s` (the commit interval) for the first, then take only what has already arrived.

    Waiting for a full batch would add the whole commit interval to every hop of a saga at low
    load; under load the fetch queue is full and batches come out large anyway.
    """
    with watchdog.guard("consume", wait_s):
        msgs = consumer.consume(size, 0)
        if not msgs:
            msgs = consumer.consume(1, wait_s)
            if msgs and size > 1:
                msgs += consumer.consume(size - 1, 0)
    return consumed(msgs)


def keep_first(consumer: Consumer, msgs: list[Consumed]) -> list[Consumed]:
    """Isolation: one record per batch; the consumer is rewound so the others are read again."""
    rewind: dict[tuple[str, int], int] = {}
    for msg in msgs[1:]:
        if msg.error is None:
            at = (msg.topic, msg.partition)
            rewind[at] = min(msg.offset, rewind.get(at, msg.offset))
    for (topic, p), offset in rewind.items():
        consumer.seek(TopicPartition(topic, p, offset))
    log.debug("isolating: one record per batch")
    return msgs[:1]
