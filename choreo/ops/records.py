"""Decoded records of a topic for operators: where to start, which to keep, and how to print them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from choreo.domain import installation
from choreo.exceptions import ConfigurationError
from choreo.kafka.partitioner import partition_for
from choreo.ops.log_reader import LogRecord, StartAt, read_log
from choreo.serde.codec import Codec
from choreo.serde.schemas import to_record
from choreo.settings import Settings


def parse_start(text: str | None) -> StartAt:
    """`--from`: absent or `beginning`, an offset (`1200`), or an ISO time (naive means UTC)."""
    if text is None or text == "beginning":
        return StartAt()
    if text.isascii() and text.isdigit():
        return StartAt(offset=int(text))
    try:
        return StartAt(time=parse_time(text))
    except ConfigurationError as e:
        raise ConfigurationError(
            f"--from {text!r} is neither an offset nor an ISO time such as 2026-11-21T10:00"
        ) from e


def parse_time(text: str, option: str = "--to-datetime") -> datetime:
    """An ISO time (naive means UTC); a ConfigurationError naming `option` if `text` is not one."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError as e:
        raise ConfigurationError(f"{option} {text!r} is not an ISO time such as 2026-11-21T10:00") from e
    # Operators compare with broker timestamps, which are UTC; a local default would shift by hours.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RecordFilter:
    """Keep a record when it matches every given criterion."""

    saga_id: str | None = None
    key: str | None = None  # the value of the domain's partition key field
    event_type: str | None = None

    def matches(self, record: LogRecord) -> bool:
        if self.event_type is not None and not _type_matches(record.event_type, self.event_type):
            return False
        if self.saga_id is not None and saga_id_of(record) != self.saga_id:
            return False
        return self.key is None or key_of(record) == self.key


def _type_matches(full_name: str, wanted: str) -> bool:
    # Both `OrderPlaced` and `delivery.orders.OrderPlaced` name the same type.
    return full_name == wanted or full_name.rsplit(".", 1)[-1] == wanted


def saga_id_of(record: LogRecord, field: str | None = None) -> str | None:
    """The saga the record belongs to: the domain's saga id `field`, else the worker's header of
    that name. A caller reading many records passes `field` once looked up."""
    # The header lets undecodable records (dead letters) be found by saga too.
    name = field or installation().envelope.saga_field
    value = getattr(record.event, name, None)
    if value is None and record.headers.get(name):
        value = record.headers[name].decode(errors="replace")
    return str(value) if value else None


def key_of(record: LogRecord, field: str | None = None) -> str | None:
    """The record's partition key: the domain's key `field` of its event, else the record's key
    (every record is keyed by it; a dead letter or a timer's firing has no such field)."""
    value = getattr(record.event, field or installation().envelope.key_field, None)
    if not isinstance(value, str) and record.key is not None:
        value = record.key.decode(errors="replace")
    return value if isinstance(value, str) else None


def replay(
    settings: Settings,
    physical: str,
    partitions: int,
    codec: Codec,
    *,
    start: StartAt,
    where: RecordFilter,
    only_partitions: Iterable[int] | None = None,
    follow: bool = False,
    committed_only: bool = True,
) -> Iterator[LogRecord]:
    """Matching records of `physical`, each partition in offset order, partitions in ascending order.

    With a key filter only the key's partition is read. Without `follow`, partitions are read one
    after another so that the output is stable and diffable; with `follow` they interleave as
    records arrive.
    """
    chosen = sorted(set(only_partitions)) if only_partitions else list(range(partitions))
    if where.key is not None:
        keys_partition = partition_for(where.key.encode(errors="surrogatepass"), partitions)
        chosen = [p for p in chosen if p == keys_partition]
    groups = [chosen] if follow else [[p] for p in chosen]
    for group in groups:
        for record in read_log(
            settings, [physical], codec, start=start, partitions=group,
            follow=follow, committed_only=committed_only,
        ):
            if where.matches(record):
                yield record


def as_json(record: LogRecord, logical_topic: str) -> dict[str, Any]:
    """One record as the `--json` line: stable keys, the decoded body under `event`."""
    return {
        "topic": logical_topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": iso_millis(record.timestamp_ms),
        "type": record.event_type,
        # The `event_type` header when it names another type than the record holds (else null).
        "header_says": record.header_type if record.header_lies else None,
        "key": None if record.key is None else record.key.decode(errors="replace"),
        "headers": {k: v.decode(errors="replace") for k, v in record.headers.items()},
        "event": event_body(record.event),
        "error": record.decode_error,
    }


def event_body(event: Any) -> dict[str, Any] | None:
    if event is None:
        return None
    return {k: jsonable(v) for k, v in to_record(event).items()}


def jsonable(value: Any) -> Any:
    """A field value as JSON can hold it: times as ISO-8601 with milliseconds."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    return value


def iso_millis(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")


def short_time(timestamp_ms: int) -> str:
    """`2026-11-21 10:00:00.123`: the UTC time for table columns."""
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def json_line(record: LogRecord, logical_topic: str) -> str:
    return json.dumps(as_json(record, logical_topic), ensure_ascii=False, sort_keys=False)


def summary(event: Any, limit: int = 90) -> str:
    """The event's fields except the ones every saga event shares, as `k=v` pairs."""
    body = event_body(event)
    if body is None:
        return ""
    common = set(installation().envelope.fields)
    text = " ".join(f"{k}={v}" for k, v in body.items() if k not in common)
    return text if len(text) <= limit else text[: limit - 1] + "…"
