"""Read a whole topic back (read_committed) for assertions, through the operators' log reader."""

from __future__ import annotations

from choreo.ops.log_reader import LogRecord, read_log
from choreo.serde.codec import Codec
from choreo.settings import Settings

ReadRecord = LogRecord


def read_topic(
    settings: Settings, topic: str, codec: Codec | None = None, committed_only: bool = True
) -> list[LogRecord]:
    """Every record of `topic` (physical name) now visible, in partition then offset order."""
    records = read_log(settings, [topic], codec, committed_only=committed_only)
    return sorted(records, key=lambda r: (r.partition, r.offset))
