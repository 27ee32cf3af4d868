"""Which partition a key lands on: Kafka's murmur2, as Java clients and librdkafka's murmur2_random use."""

from __future__ import annotations

# librdkafka's name (`partitioner` property) for the partitioner Java clients use for keyed records;
# its default, `consistent_random` (CRC32), puts keys on other partitions.
LIBRDKAFKA_PARTITIONER = "murmur2_random"

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2(byte[])`: the 32-bit hash as a signed Java int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    full = length - length % 4
    for i in range(0, full, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24  # Java's >>> on an int: a logical shift of the unsigned 32 bits
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    # Java's switch falls through: 3 mixes bytes 2, 1 and 0; 2 mixes 1 and 0.
    if tail >= 3:
        h ^= data[full + 2] << 16
    if tail >= 2:
        h ^= data[full + 1] << 8
    if tail >= 1:
        h ^= data[full]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of a non-null key among `partitions`: `toPositive(murmur2(key)) % partitions`."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# Keys are few (a saga's partition key is a site, a tenant...): a small cache makes the rule one dict
# lookup on a worker's hot path. Emptied when full, so random keys cost a hash each but never
# unbounded memory.
_CACHE_LIMIT = 4096
_expected: dict[int, dict[bytes, int]] = {}  # partition count -> key -> its partition


def misplaced(key: bytes, partition: int, partitions: int) -> int | None:
    """The partitioning contract, for the worker's check and the audit alike: the partition that
    murmur2 puts `key` on among `partitions`, when a record keyed `key` sits on another partition
    than that; None when it sits where it belongs."""
    cache = _expected.get(partitions)
    if cache is None:
        cache = _expected[partitions] = {}
    expected = cache.get(key)
    if expected is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        expected = cache[key] = partition_for(key, partitions)
    return None if expected == partition else expected
