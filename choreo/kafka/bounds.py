"""What a Kafka offset, partition number and record timestamp can hold, checked before Kafka is asked.

Kafka reads a negative timestamp as a special offset, not as a time (in a ListOffsets request
-1 means the end of the partition and -2 its beginning), so a time before 1970 asked of
`offsets_for_times` silently moves to the end, the last record, or fails with "API version not
supported". Offsets are signed 64-bit numbers and partitions signed 32-bit ones: a larger Python
int overflows inside the client. A timestamp is 64-bit too, but no datetime (year 9999 at most)
comes near that, and a time after the last record rightly means the end.
"""

from __future__ import annotations

from datetime import UTC, datetime

from choreo.exceptions import ConfigurationError

MAX_OFFSET = 2**63 - 1
MAX_PARTITION = 2**31 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def kafka_time(moment: datetime, what: str, earliest_hint: str) -> datetime:
    """`moment` (aware) if a Kafka record can carry it, else a ConfigurationError naming `what`
    (the option and the text given, e.g. "--to-datetime '1969-12-31'").

    `earliest_hint` says how to ask for the start of the log instead (e.g. "use --to-earliest").
    """
    if moment < EPOCH:
        raise ConfigurationError(
            f"{what} is before 1970-01-01T00:00:00+00:00, the earliest time a Kafka record can "
            f"carry; {earliest_hint}"
        )
    return moment
