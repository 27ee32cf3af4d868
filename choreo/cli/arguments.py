"""The numbers and times the commands take, range-checked where they are parsed: one sentence each.

Ports, partitions, offsets and times all end up in a socket or a Kafka request, where a value out
of range is an OverflowError, or worse a special value (a time before 1970 is Kafka's "end" or
"beginning"). Typer callbacks (`port_option`, ...) check an option as it is parsed; the parsers
(`kafka_time`, `start_position`) are called by the commands that parse text themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from choreo.cli.errors import option_check
from choreo.exceptions import ConfigurationError
from choreo.kafka import bounds

if TYPE_CHECKING:  # the parsers import the log reader only when a command needs them
    from choreo.ops.log_reader import StartAt

MAX_PORT = 65_535


def check_ports(first: int, count: int, option: str) -> int:
    """`first` when `first` .. `first + count - 1` are all ports (e.g. one per broker)."""
    last = first + count - 1
    if not 1 <= first <= MAX_PORT:
        raise ConfigurationError(f"{option} must be a port from 1 to {MAX_PORT}, got {first}")
    if last > MAX_PORT:
        raise ConfigurationError(
            f"{option} {first} with {count} nodes needs ports {first} to {last}, past {MAX_PORT}; "
            f"choose {option} {MAX_PORT - count + 1} or lower"
        )
    return first


def port_option(option: str) -> Callable[[Any], Any]:
    return option_check(lambda value: check_ports(value, 1, option))


def _check_number(value: int, option: str, what: str, most: int) -> int:
    if not 0 <= value <= most:
        raise ConfigurationError(f"{option} must be {what} from 0 to {most}, got {value}")
    return value


def partition_option(option: str = "--partition") -> Callable[[Any], Any]:
    """For an int option or a repeatable one (a list of ints)."""

    def check(value: int | list[int]) -> int | list[int]:
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            _check_number(v, option, "a partition number", bounds.MAX_PARTITION)
        return value

    return option_check(check)


def offset_option(option: str = "--offset") -> Callable[[Any], Any]:
    return option_check(lambda value: _check_number(value, option, "an offset", bounds.MAX_OFFSET))


def kafka_time(text: str, option: str, earliest_hint: str) -> datetime:
    """An ISO time (naive means UTC) a Kafka record can carry, or one sentence naming `option`."""
    from choreo.ops.records import parse_time

    return bounds.kafka_time(parse_time(text, option), f"{option} {text!r}", earliest_hint)


def start_position(text: str | None, option: str = "--from") -> StartAt:
    """`--from`: `beginning` (or nothing), an offset or a time, each within what Kafka can hold."""
    from choreo.ops.records import parse_start

    start = parse_start(text)
    if start.offset is not None:
        _check_number(start.offset, option, "an offset", bounds.MAX_OFFSET)
    if start.time is not None:
        bounds.kafka_time(start.time, f"{option} {text!r}", f"use {option} beginning")
    return start
