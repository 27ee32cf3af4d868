"""The partitioning contract: a record must sit on the partition murmur2 gives its key."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import pytest

from choreo.kafka import partitioner
from choreo.kafka.partitioner import misplaced, partition_for
from choreo.ops.log_reader import LogRecord
from choreo.runtime.routing import MisroutedRecordError, PartitionRouting
from producers.audit_log import misrouted

TOPIC = "p1.orders.commands"
OWN = "p1.orders"


@dataclass(frozen=True)
class Keyed:
    hub: str


@dataclass(frozen=True)
class Unkeyed:
    sku: str


def _routing() -> PartitionRouting:
    return PartitionRouting({TOPIC: 6, OWN: 6}, "hub")


def test_the_murmur2_partition_passes() -> None:
    right = partition_for(b"hub-north", 6)
    _routing().check(TOPIC, right, b"hub-north", Keyed("hub-north"))


def test_the_crc32_partition_is_refused_with_the_expected_one() -> None:
    # librdkafka's default (consistent_random) puts hub-north elsewhere: before the check, the
    # order was accepted twice.
    right, crc = partition_for(b"hub-north", 6), zlib.crc32(b"hub-north") % 6
    assert right != crc
    with pytest.raises(MisroutedRecordError) as e:
        _routing().check(TOPIC, crc, b"hub-north", Keyed("hub-north"))
    assert str(e.value) == (
        f"key 'hub-north' belongs to partition {right} of {TOPIC} (murmur2 over 6 partitions), "
        f"not {crc}: produce with partitioner=murmur2_random"
    )


def test_a_record_without_a_key_is_refused() -> None:
    with pytest.raises(MisroutedRecordError, match=r"on p1\.orders\.commands\[2\] has no key"):
        _routing().check(TOPIC, 2, None, Keyed("hub-north"))


def test_a_key_that_is_not_the_events_field_is_refused() -> None:
    # On the key's own partition, so only the disagreement with the event can refuse it.
    p = partition_for(b"hub-south", 6)
    with pytest.raises(MisroutedRecordError) as e:
        _routing().check(TOPIC, p, b"hub-south", Keyed("hub-north"))
    assert str(e.value) == (
        "key 'hub-south' is not the event's hub 'hub-north': key each record by its hub"
    )


def test_an_event_without_the_field_is_checked_on_its_key_alone() -> None:
    p = partition_for(b"anything", 6)
    _routing().check(TOPIC, p, b"anything", Unkeyed("SKU-0001"))
    with pytest.raises(MisroutedRecordError, match="belongs to partition"):
        _routing().check(TOPIC, (p + 1) % 6, b"anything", Unkeyed("SKU-0001"))


def test_a_hostile_key_is_quoted_short() -> None:
    key = b"\x00" * 10_000
    wrong = (partition_for(key, 6) + 1) % 6
    with pytest.raises(MisroutedRecordError) as e:
        _routing().check(TOPIC, wrong, key, Unkeyed("x"))
    assert len(str(e.value)) < 400


def test_an_output_keyed_for_another_partition_is_refused() -> None:
    p = partition_for(b"hub-north", 6)
    _routing().check_output(OWN, p, b"hub-north", Keyed("hub-north"))
    other = next(h for h in ("hub-a", "hub-b", "hub-c", "hub-d") if partition_for(h.encode(), 6) != p)
    with pytest.raises(MisroutedRecordError, match=f"Keyed is keyed '{other}', which belongs"):
        _routing().check_output(OWN, p, other.encode(), Keyed(other))


def test_partitions_are_cached_per_key_and_the_cache_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []

    def counted(key: bytes, partitions: int) -> int:
        calls.append(key)
        return partition_for(key, partitions)

    monkeypatch.setattr(partitioner, "partition_for", counted)
    monkeypatch.setattr(partitioner, "_CACHE_LIMIT", 3)
    monkeypatch.setattr(partitioner, "_expected", {})
    r = _routing()
    home = partition_for(b"hub-north", 6)
    for _ in range(5):
        r.check(TOPIC, home, b"hub-north", Keyed("hub-north"))
    assert calls == [b"hub-north"]
    for key in (b"a", b"b", b"c", b"d"):
        r.check(TOPIC, partition_for(key, 6), key, Unkeyed("x"))
    r.check_output(OWN, partition_for(b"d", 6), b"d", Keyed("d"))  # same count: same cache
    assert len(calls) == 5
    assert max(len(c) for c in partitioner._expected.values()) <= 3


@pytest.mark.parametrize("key", [b"hub-north", b"hub-south", b"", b"\xff" * 9, "h\u00fcb/1".encode()])
def test_the_worker_and_the_audit_apply_one_rule(key: bytes) -> None:
    # The worker refuses exactly what the audit reports as misrouted, on every partition.
    for p in range(6):
        audit = misrouted(LogRecord(TOPIC, p, 0, 0, key, b"", {}), 6)
        try:
            _routing().check(TOPIC, p, key, Unkeyed("x"))
            refused = False
        except MisroutedRecordError:
            refused = True
        assert refused == (audit is not None)
        assert misplaced(key, p, 6) == (None if p == partition_for(key, 6) else partition_for(key, 6))
