"""Reading topics back from the log for operators: replay, trace, audit, DLQ listing.

Reads with manual assignment (no consumer group, nothing committed) from the beginning, an
offset or a time, up to the end as it was when reading started, or on and on with `follow`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from choreo.exceptions import ChoreoError, ConfigurationError, RegistryUnavailableError
from choreo.kafka import clients
from choreo.kafka.messages import EVENT_TYPE_HEADER
from choreo.serde.codec import Codec
from choreo.settings import Settings


def to_millis(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, in integer arithmetic (floats can be 1 ms off)."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    event: Any = None
    decode_error: str | None = None

    @property
    def event_type(self) -> str:
        """The record's type: the decoded event's, else (undecodable) what its header claims.

        The worker acts on the decoded record, never on the header, so the tools show that too.
        """
        if self.event is not None:
            return str(type(self.event).SCHEMA)
        return self.header_type or "?"

    @property
    def header_type(self) -> str | None:
        """What the `event_type` header says, as written by whoever produced the record."""
        raw = self.headers.get(EVENT_TYPE_HEADER)
        return raw.decode(errors="replace") if raw else None

    @property
    def header_lies(self) -> bool:
        """Whether the header names another type than the decoded record is (full or short name)."""
        claimed = self.header_type
        if self.event is None or claimed is None:
            return False
        actual = self.event_type
        return claimed not in (actual, actual.rsplit(".", 1)[-1])

    @property
    def type_label(self) -> str:
        """The short type for tables, e.g. `PlaceOrder (header says CancelOrder)` for a lying header."""
        short = self.event_type.rsplit(".", 1)[-1]
        if self.header_lies:
            return f"{short} (header says {str(self.header_type).rsplit('.', 1)[-1]})"
        return short


@dataclass(frozen=True)
class StartAt:
    """Where to start reading: the beginning (default), an offset, or a time."""

    offset: int | None = None
    time: datetime | None = None


def read_log(
    settings: Settings,
    topics: Iterable[str],
    codec: Codec | None = None,
    *,
    start: StartAt = StartAt(),
    partitions: Iterable[int] | None = None,
    follow: bool = False,
    committed_only: bool = True,
    idle_timeout_s: float = 60.0,
    stop_at: Mapping[tuple[str, int], int] | None = None,
) -> Iterator[LogRecord]:
    """Records of the physical `topics`, per partition in offset order (not merged by time).

    `stop_at` ((topic, partition) -> offset) stops a partition before that offset, e.g. at the
    end it had when a reading of several topics began, however much is written meanwhile.
    """
    stop_at = stop_at or {}
    consumer = clients.reader_consumer(settings, committed_only=committed_only)
    try:
        meta = consumer.list_topics(timeout=10).topics
        wanted: list[TopicPartition] = []
        for topic in topics:
            if topic not in meta or meta[topic].error is not None:
                raise ConfigurationError(f"topic {topic} does not exist")
            parts = sorted(meta[topic].partitions)
            chosen = parts if partitions is None else [p for p in partitions if p in parts]
            wanted.extend(TopicPartition(topic, p) for p in chosen)
        starts = _start_offsets(consumer, wanted, start)
        ends = {}
        for tp in starts:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            ends[(tp.topic, tp.partition)] = high
            if (tp.topic, tp.partition) in stop_at:
                ends[(tp.topic, tp.partition)] = min(high, stop_at[(tp.topic, tp.partition)])
        todo = {
            (tp.topic, tp.partition) for tp in starts
            if follow or ends[(tp.topic, tp.partition)] > max(tp.offset, 0)
        }
        if not todo:
            return
        consumer.assign([tp for tp in starts if (tp.topic, tp.partition) in todo])
        last_progress = time.monotonic()
        while follow or todo:
            msgs = consumer.consume(500, 0.05)  # short: consume() waits for a full batch
            if msgs:
                last_progress = time.monotonic()
            elif not follow and time.monotonic() - last_progress > idle_timeout_s:
                raise ChoreoError(f"reading stalled before the end of {sorted(todo)}")
            for msg in msgs:
                err = msg.error()
                key = (str(msg.topic()), int(msg.partition() or 0))
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        todo.discard(key)
                        continue
                    raise ChoreoError(f"reading {key[0]}[{key[1]}] failed: {err.str()}")
                if key in stop_at and (msg.offset() or 0) >= stop_at[key]:
                    todo.discard(key)
                    continue
                yield _record(msg, codec)
    finally:
        consumer.close()


def _start_offsets(consumer: Any, wanted: list[TopicPartition], start: StartAt) -> list[TopicPartition]:
    if start.time is not None:
        ms = to_millis(start.time)
        found = consumer.offsets_for_times([TopicPartition(t.topic, t.partition, ms) for t in wanted], 10)
        out = []
        for tp in found:
            if tp.offset < 0:  # nothing at or after that time: start at the end
                _low, high = consumer.get_watermark_offsets(tp, timeout=10)
                tp = TopicPartition(tp.topic, tp.partition, high)
            out.append(tp)
        return out
    if start.offset is not None:
        return [TopicPartition(t.topic, t.partition, start.offset) for t in wanted]
    return [TopicPartition(t.topic, t.partition, OFFSET_BEGINNING) for t in wanted]


def _record(msg: Any, codec: Codec | None) -> LogRecord:
    headers = {k: v or b"" for k, v in (msg.headers() or [])}
    event, error = None, None
    if codec is not None:
        try:
            event = codec.decode(msg.value())
        except RegistryUnavailableError:
            # Not the record's fault: calling it undecodable would let a reader skip the whole log
            # (each record waiting for the registry's retries first). The reading stops instead.
            raise
        except ChoreoError as e:
            error = str(e)
    _kind, ts = msg.timestamp()
    return LogRecord(
        str(msg.topic()), int(msg.partition()), int(msg.offset()), int(ts), msg.key(),
        msg.value(), headers, event, error,
    )


