"""A dead letter keeps the original and says why; one too large for a record is truncated to fit."""

from __future__ import annotations

from confluent_kafka import Message

from choreo.exceptions import DecodeError
from choreo.kafka.messages import Consumed
from choreo.runtime import dead_letters as dl
from choreo.runtime.dead_letters import dead_letter, record_size

MAX_BYTES = 1_000_000


def _msg(
    key: bytes | None = b"order-17",
    value: bytes | None = b'{"event":"OrderPlaced"}',
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> Consumed:
    return Consumed.of(Message(
        topic="orders.events",
        partition=4,
        offset=123456,
        key=key,
        value=value,
        headers=headers if headers is not None else [("trace-id", b"abc"), ("empty", None)],
    ))


def _headers(letter: dl.DeadLetter) -> dict[str, bytes]:
    return dict(letter.headers)


def test_record_size_counts_key_value_and_headers() -> None:
    assert record_size(None, None, []) == 0
    framing = 2 * dl.HEADER_FRAMING_BYTES  # each header's varint lengths
    assert record_size(b"ab", b"cde", [("h", b"12"), ("xy", b"")]) == 2 + 3 + 3 + 2 + framing


def test_a_normal_record_keeps_key_value_headers_and_adds_the_reason() -> None:
    msg = _msg()
    letter = dead_letter(msg, DecodeError("unknown event type 'Nope'"), MAX_BYTES)
    assert letter.key == b"order-17"
    assert letter.value == b'{"event":"OrderPlaced"}'
    assert letter.headers[:2] == [("trace-id", b"abc"), ("empty", b"")]  # originals first, in order
    headers = _headers(letter)
    assert headers[dl.ERROR_CLASS] == b"DecodeError"
    assert headers[dl.ERROR_MESSAGE] == b"unknown event type 'Nope'"
    assert headers[dl.SOURCE_TOPIC] == b"orders.events"
    assert headers[dl.SOURCE_PARTITION] == b"4"
    assert headers[dl.SOURCE_OFFSET] == b"123456"
    assert dl.TRUNCATED not in headers and dl.ORIGINAL_SIZE not in headers


def test_a_record_without_key_or_headers() -> None:
    letter = dead_letter(_msg(key=None, headers=[]), ValueError("bad"), MAX_BYTES)
    assert letter.key is None
    assert [name for name, _ in letter.headers] == [
        dl.ERROR_CLASS, dl.ERROR_MESSAGE, dl.SOURCE_TOPIC, dl.SOURCE_PARTITION, dl.SOURCE_OFFSET,
    ]


def test_a_long_error_message_is_clipped() -> None:
    letter = dead_letter(_msg(), ValueError("x" * 50_000), MAX_BYTES)
    assert len(_headers(letter)[dl.ERROR_MESSAGE]) == 2000


def test_a_2mb_value_gives_a_truncated_copy_that_fits() -> None:
    value = bytes(range(256)) * (2 * 1024 * 1024 // 256)
    key = b"k" * 5000
    original_headers: list[tuple[str, str | bytes | None]] = [("trace-id", b"abc"), ("huge", b"h" * 100_000)]
    msg = _msg(key=key, value=value, headers=original_headers)
    original_size = (
        len(key) + len(value) + len("trace-id") + 3 + len("huge") + 100_000
        + 2 * dl.HEADER_FRAMING_BYTES
    )
    letter = dead_letter(msg, DecodeError("too big to decode"), MAX_BYTES)

    assert record_size(letter.key, letter.value, letter.headers) <= MAX_BYTES
    assert letter.value is not None and value.startswith(letter.value) and len(letter.value) < len(value)
    assert letter.key is not None and key.startswith(letter.key) and len(letter.key) < len(key)
    headers = _headers(letter)
    assert headers[dl.TRUNCATED] == b"true"
    assert int(headers[dl.ORIGINAL_SIZE]) == original_size
    assert headers[dl.SOURCE_TOPIC] == b"orders.events"
    assert headers[dl.SOURCE_PARTITION] == b"4"
    assert headers[dl.SOURCE_OFFSET] == b"123456"
    assert headers[dl.ERROR_CLASS] == b"DecodeError"
    assert headers[dl.ERROR_MESSAGE] == b"too big to decode"
    assert headers["trace-id"] == b"abc"  # small headers survive
    assert "huge" not in headers  # a header over the budget does not


def test_a_record_just_over_the_limit_is_truncated_and_one_at_it_is_not() -> None:
    error = ValueError("e")
    base = dead_letter(_msg(value=b""), error, MAX_BYTES)
    overhead = record_size(base.key, base.value, base.headers)
    fits = dead_letter(_msg(value=b"v" * (MAX_BYTES - overhead)), error, MAX_BYTES)
    assert _headers(fits).get(dl.TRUNCATED) is None
    assert record_size(fits.key, fits.value, fits.headers) == MAX_BYTES
    over = dead_letter(_msg(value=b"v" * (MAX_BYTES - overhead + 1)), error, MAX_BYTES)
    assert _headers(over)[dl.TRUNCATED] == b"true"
    assert record_size(over.key, over.value, over.headers) <= MAX_BYTES
