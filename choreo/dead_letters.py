"""What a dead letter carries: the original key, value and headers, plus why it was rejected."""

from __future__ import annotations

from confluent_kafka import Message

from choreo.messages import header_pairs

ERROR_CLASS = "dlq.error.class"
ERROR_MESSAGE = "dlq.error.message"
SOURCE_TOPIC = "dlq.source.topic"
SOURCE_PARTITION = "dlq.source.partition"
SOURCE_OFFSET = "dlq.source.offset"


def dead_letter_headers(msg: Message, error: BaseException) -> list[tuple[str, bytes]]:
    original = header_pairs(msg)
    return [
        *original,
        (ERROR_CLASS, type(error).__name__.encode()),
        (ERROR_MESSAGE, str(error)[:2000].encode()),
        (SOURCE_TOPIC, str(msg.topic()).encode()),
        (SOURCE_PARTITION, str(msg.partition()).encode()),
        (SOURCE_OFFSET, str(msg.offset()).encode()),
    ]
