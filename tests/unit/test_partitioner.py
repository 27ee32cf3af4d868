"""The Python murmur2 agrees with Kafka's Java implementation (its own test vectors)."""

from __future__ import annotations

import pytest

from choreo.kafka.partitioner import murmur2, partition_for

# org.apache.kafka.common.utils.UtilsTest#testMurmur2, verbatim.
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), KAFKA_VECTORS.items())
def test_murmur2_matches_kafkas_java_values(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_partition_is_the_positive_hash_modulo_the_partition_count() -> None:
    # -973932308 & 0x7fffffff = 1173551340; that % 6 = 0, % 4 = 0, % 7 = 3.
    assert [partition_for(b"21", n) for n in (6, 4, 7)] == [0, 0, 3]
    assert all(0 <= partition_for(bytes([i]) * i, 6) < 6 for i in range(40))


def test_no_partitions_is_refused() -> None:
    with pytest.raises(ValueError):
        partition_for(b"hub-north", 0)
