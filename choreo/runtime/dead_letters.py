"""What a dead letter carries: the original key, value and headers, plus why it was rejected.

A dead letter must always fit in a Kafka record, or the record that caused it would stop its
partition after all. When the original (key, value, headers and the reason) would not fit, the
dead letter holds a truncated copy and says so: `dlq.truncated`, `dlq.original.size` (bytes of
key + value + headers) and the coordinates, which still lead to the full record in its topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from choreo.kafka.messages import Consumed

ERROR_CLASS = "dlq.error.class"
ERROR_MESSAGE = "dlq.error.message"
SOURCE_TOPIC = "dlq.source.topic"
SOURCE_PARTITION = "dlq.source.partition"
SOURCE_OFFSET = "dlq.source.offset"
TRUNCATED = "dlq.truncated"
ORIGINAL_SIZE = "dlq.original.size"

# What a truncated copy keeps: enough to recognise the record, far below any record limit.
KEPT_VALUE_BYTES = 64 * 1024
KEPT_KEY_BYTES = 1024
KEPT_HEADER_BYTES = 4 * 1024
_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


# What Kafka's record format adds per header (varint lengths of its name and value), at most.
HEADER_FRAMING_BYTES = 10


def record_size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """Bytes a record's key, value and headers take, with each header's framing (the record's
    own framing is the caller's margin)."""
    return len(key or b"") + len(value or b"") + sum(
        len(k) + len(v) + HEADER_FRAMING_BYTES for k, v in headers
    )


def dead_letter(msg: Consumed, error: BaseException, max_bytes: int) -> DeadLetter:
    """The dead letter of `msg`: the original with the reason, or a truncated copy that fits."""
    key, value, original = msg.key, msg.value, msg.headers
    reason = [
        (ERROR_CLASS, type(error).__name__.encode()),
        (ERROR_MESSAGE, str(error)[:_MESSAGE_CHARS].encode()),
        (SOURCE_TOPIC, msg.topic.encode()),
        (SOURCE_PARTITION, str(msg.partition).encode()),
        (SOURCE_OFFSET, str(msg.offset).encode()),
    ]
    full = DeadLetter(key, value, [*original, *reason])
    if record_size(full.key, full.value, full.headers) <= max_bytes:
        return full
    kept_headers, budget = [], KEPT_HEADER_BYTES
    for name, data in original:
        size = len(name) + len(data) + HEADER_FRAMING_BYTES
        if size <= budget:
            kept_headers.append((name, data))
            budget -= size
    return DeadLetter(
        None if key is None else key[:KEPT_KEY_BYTES],
        None if value is None else value[:KEPT_VALUE_BYTES],
        [
            *kept_headers,
            *reason,
            (TRUNCATED, b"true"),
            (ORIGINAL_SIZE, str(record_size(key, value, original)).encode()),
        ],
    )
