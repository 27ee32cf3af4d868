"""Where a saga's time goes: the latency of each hop, from record timestamps on every topic.

A hop is one event to the next event of the same saga, in time order: `OrderPlaced ->
PackagePrepared` is the time from the orders worker producing OrderPlaced to the packaging
worker producing PackagePrepared. It covers the rest of the upstream batch (flush, offsets,
commit), the commit markers, the downstream fetch, the downstream worker's wait for its batch
in progress, and its own decision. Timestamps are CreateTime, set by each producer.
"""

from __future__ import annotations

import time
from collections import defaultdict

from confluent_kafka import TopicPartition

from choreo.kafka import clients
from choreo.kafka.messages import header_pairs
from choreo.settings import Settings
from harness.offsets import ends_of

_READ_TIMEOUT_S = 60.0
MAIN_PATH_SHARE = 0.9


def positions(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> end offset now: where a later `hop_waits` starts reading."""
    return ends_of(settings, topics)


def hop_waits(
    settings: Settings, start: dict[tuple[str, int], int], saga_field: str, placed: dict[str, int]
) -> dict[str, list[float]]:
    """`A -> B` -> the ms between consecutive events of each saga in `placed` (saga id -> the
    command's timestamp, the first event), reading every topic of `start` from there to its end."""
    ends = positions(settings, sorted({t for t, _ in start}))
    todo = {tp: end for tp, end in ends.items() if end > start.get(tp, 0)}
    events: dict[str, list[tuple[int, str]]] = defaultdict(list)
    reader = clients.reader_consumer(settings, committed_only=True)
    try:
        reader.assign([TopicPartition(t, p, start.get((t, p), 0)) for t, p in todo])
        deadline = time.monotonic() + _READ_TIMEOUT_S
        while todo and time.monotonic() < deadline:
            for msg in reader.consume(1000, 1.0):
                tp = (msg.topic() or "", msg.partition() or 0)
                if msg.error() is not None:  # end of partition (or an error): that one is done
                    todo.pop(tp, None)
                    continue
                if (msg.offset() or 0) + 1 >= todo.get(tp, 0):
                    todo.pop(tp, None)
                headers = dict(header_pairs(msg))
                saga = headers.get(saga_field, b"").decode()
                if saga in placed:
                    events[saga].append((msg.timestamp()[1], headers.get("event_type", b"?").decode()))
    finally:
        reader.close()
    waits: dict[str, list[float]] = defaultdict(list)
    for saga, seen in events.items():
        before, at = "command", placed[saga]
        for ms, event_type in sorted(seen):
            name = event_type.rsplit(".", 1)[-1]
            waits[f"{before} -> {name}"].append(float(ms - at))
            before, at = name, ms
    return dict(waits)


def main_path(waits: dict[str, list[float]], sagas: int) -> list[str]:
    """The hops that nearly every saga took, in the order of the first saga's events: the path
    before any fan-out (after DeliveryCompleted three services answer at once, in any order)."""
    return [hop for hop, v in waits.items() if len(v) >= MAIN_PATH_SHARE * sagas]
