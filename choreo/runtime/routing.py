"""The partitioning contract, checked on every input record before it is decided.

A partition's store holds the state of the keys that murmur2 maps to that partition, so a record
that sits on another partition than its key's is decided against the wrong state: a PlaceOrder
from a producer with librdkafka's default partitioner (`consistent_random`, CRC32) would find no
order in that store and be accepted a second time. Such a record is refused here and
dead-lettered; it is never decided.

The service's own topic needs no check on restore: the worker writes each own event to the
partition number of a checked input, and refuses a decision whose output key belongs elsewhere
(`check_output`), so own records are on the right partition by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from choreo.exceptions import ChoreoError
from choreo.kafka.partitioner import LIBRDKAFKA_PARTITIONER, misplaced

_SHOWN = 80  # how much of a hostile key a reason quotes


class MisroutedRecordError(ChoreoError):
    """An input record without a key, on another partition than its key's, or keyed otherwise
    than its event's partition-key field: deciding it would read and write the wrong state."""


class PartitionRouting:
    """Checks that records sit where the murmur2 partitioner puts their key.

    `partitions`: physical topic (inputs and the own topic) -> its partition count, read once
    when the worker starts. `key_field`: the event field whose value is the record's key (the
    domain's envelope names it); the worker keys its own outputs by the same field.
    """

    def __init__(self, partitions: Mapping[str, int], key_field: str) -> None:
        self.key_field = key_field
        self._counts = dict(partitions)

    def check(self, topic: str, partition: int, key: bytes | None, event: Any) -> None:
        """Raise MisroutedRecordError unless `event`, keyed `key`, belongs on `topic`[`partition`]."""
        if key is None:
            raise MisroutedRecordError(
                f"a record on {topic}[{partition}] has no key: key it by its {self.key_field} "
                f"and produce with partitioner={LIBRDKAFKA_PARTITIONER}"
            )
        value = getattr(event, self.key_field, _ABSENT)
        # surrogatepass: a hostile value must be refused with this reason, not fail to encode.
        if value is not _ABSENT and (
            not isinstance(value, str) or value.encode(errors="surrogatepass") != key
        ):
            raise MisroutedRecordError(
                f"key {_shown(key)} is not the event's {self.key_field} {_shown(value)}: "
                f"key each record by its {self.key_field}"
            )
        expected = misplaced(key, partition, self._counts[topic])
        if expected is not None:
            raise MisroutedRecordError(
                f"key {_shown(key)} belongs to partition {expected} of {topic} "
                f"(murmur2 over {self._counts[topic]} partitions), not {partition}: "
                f"produce with partitioner={LIBRDKAFKA_PARTITIONER}"
            )

    def check_output(self, topic: str, partition: int, key: bytes, event: Any) -> None:
        """Raise MisroutedRecordError if an output keyed `key` does not belong on `partition`,
        the partition of its cause: every reader would refuse it, and the own log of
        `partition` would hold another partition's state."""
        expected = misplaced(key, partition, self._counts[topic])
        if expected is not None:
            raise MisroutedRecordError(
                f"{type(event).__name__} is keyed {_shown(key)}, which belongs to partition "
                f"{expected} of {topic} (murmur2 over {self._counts[topic]} partitions), not "
                f"{partition}, its cause's: an output must keep its cause's {self.key_field}"
            )


_ABSENT = object()


def _shown(value: object) -> str:
    quoted = repr(value.decode(errors="replace") if isinstance(value, bytes) else value)
    return quoted if len(quoted) <= _SHOWN else quoted[:_SHOWN] + "..."
