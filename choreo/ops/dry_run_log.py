"""Read what a dry run needs from the log, read-only: the own events, the inputs, the dead letters.

Every topic is read by manual assignment (no consumer group joined, nothing committed), committed
records only, and only up to the end each partition had when the dry run began: the workers may
go on writing meanwhile, and the dry run compares one consistent moment of the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import TopicPartition

from choreo.contract import Service
from choreo.exceptions import ConfigurationError
from choreo.kafka import clients
from choreo.ops.dry_run import Coords, DryRunReport, Recorded, dry_run_partition
from choreo.ops.log_reader import LogRecord, StartAt, read_log
from choreo.runtime.dead_letters import SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from choreo.serde.codec import Codec
from choreo.settings import Settings
from choreo.timers import TimerFired


@dataclass(frozen=True)
class History:
    """One partition's recorded own events and inputs (from the starting point)."""

    own: list[Recorded]
    inputs: dict[str, list[Recorded]]  # logical topic -> records in offset order


def dry_run(
    settings: Settings,
    version: Service,
    codec: Codec,
    *,
    code: str,
    start: datetime | None = None,
    partitions: Iterable[int] | None = None,
) -> DryRunReport:
    """Decide the recorded inputs of `version`'s service again and compare with the log."""
    histories, dead = read_history(settings, version, codec, start, partitions)
    results = tuple(
        dry_run_partition(version, p, h.own, h.inputs, dead) for p, h in sorted(histories.items())
    )
    return DryRunReport(version.name, code, None if start is None else start.isoformat(), results)


def read_history(
    settings: Settings,
    service: Service,
    codec: Codec,
    start: datetime | None,
    partitions: Iterable[int] | None,
) -> tuple[dict[int, History], set[Coords]]:
    """Per partition the own events (all of them) and the inputs from `start`, plus the
    coordinates of every input the worker dead-lettered."""
    logical = {settings.topic(t): t for t in service.inputs}
    own, dlq = settings.topic(service.own_topic), settings.topic(service.dlq_topic)
    ends, chosen = _ends(settings, [own, *logical], dlq, partitions)
    histories = {p: History([], {t: [] for t in service.inputs}) for p in chosen}
    since_ms = None if start is None else int(start.timestamp() * 1000)
    for record in read_log(settings, [own], codec, partitions=chosen, stop_at=ends):
        recorded = _recorded(service.own_topic, record)
        histories[record.partition].own.append(recorded)
        if isinstance(record.event, TimerFired) and (since_ms is None or record.timestamp_ms >= since_ms):
            # A firing is an input too: the log holds everything decide was given (dry_run.py).
            histories[record.partition].inputs.setdefault(service.own_topic, []).append(recorded)
    at = StartAt() if start is None else StartAt(time=start)
    for physical, name in logical.items():
        for record in read_log(settings, [physical], codec, start=at, partitions=chosen, stop_at=ends):
            histories[record.partition].inputs[name].append(_recorded(name, record))
    dead: set[Coords] = set()
    if any(topic == dlq for topic, _p in ends):
        for letter in read_log(settings, [dlq], None, partitions=chosen, stop_at=ends):
            coords = _source(letter, logical)
            if coords is not None:
                dead.add(coords)
    return histories, dead


def _ends(
    settings: Settings, topics: list[str], dlq: str, partitions: Iterable[int] | None
) -> tuple[dict[tuple[str, int], int], list[int]]:
    """The end of every partition to read, taken once before any reading, and the partitions."""
    consumer = clients.reader_consumer(settings)
    try:
        meta = consumer.list_topics(timeout=10).topics
        for topic in topics:
            if topic not in meta or meta[topic].error is not None:
                raise ConfigurationError(f"topic {topic} does not exist")
        count = len(meta[topics[0]].partitions)
        wanted = sorted(set(partitions)) if partitions is not None else list(range(count))
        outside = [p for p in wanted if not 0 <= p < count]
        if outside:
            raise ConfigurationError(
                f"{topics[0]} has partitions 0 to {count - 1}, not {', '.join(map(str, outside))}"
            )
        # A service that never dead-lettered anything may have no DLQ topic yet.
        present = [*topics, *([dlq] if dlq in meta and meta[dlq].error is None else [])]
        ends = {}
        for topic in present:
            for p in wanted:
                if p in meta[topic].partitions:
                    _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    ends[(topic, p)] = int(high)
        return ends, wanted
    finally:
        consumer.close()


def _recorded(logical: str, record: LogRecord) -> Recorded:
    return Recorded(logical, record.partition, record.offset, record.timestamp_ms, record.event,
                    record.decode_error)


def _source(letter: LogRecord, logical: dict[str, str]) -> Coords | None:
    """The input a dead letter stands for, from its headers (None for one from another topic)."""
    try:
        topic = letter.headers[SOURCE_TOPIC].decode()
        partition = int(letter.headers[SOURCE_PARTITION])
        offset = int(letter.headers[SOURCE_OFFSET])
    except (KeyError, ValueError):
        return None
    name = logical.get(topic)
    return None if name is None else (name, partition, offset)

