"""Where a service deployed into a running system starts: `Service.first_read`.

For "latest", `auto.offset.reset` alone is not enough: a partition the new group has no offset
for is read from its end *each time* it is assigned (a partition that got no record before a
restart or a rebalance would lose what was written meanwhile), and an aborted first batch would
rewind to the beginning. So on the group's first start the worker commits the current end of
every input partition (the retry topic's too): from then on every partition has a position, and
the group goes on from where it is like any other.
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from choreo.kafka.group_offsets import committed_offsets, set_offsets

log = logging.getLogger(__name__)
_TIMEOUT_S = 10.0


def start_at_the_end(admin: AdminClient, reader: Consumer, group: str, topics: list[str]) -> bool:
    """Commit the end of every partition of `topics` for `group` when it has committed none of
    them yet (its first start); True if it did. `reader` reads committed records only, so the
    end is the last stable offset: a transaction still open then is read when it commits."""
    meta = admin.list_topics(timeout=_TIMEOUT_S).topics
    tps = [TopicPartition(t, p) for t in topics for p in sorted(meta[t].partitions)]
    if committed_offsets(admin, group, tps):
        return False  # not its first start: it goes on from its positions
    ends = [TopicPartition(tp.topic, tp.partition, reader.get_watermark_offsets(tp, timeout=_TIMEOUT_S)[1])
            for tp in tps]
    try:
        set_offsets(admin, group, ends)
    except KafkaException as e:
        # Another instance joined first (the broker refuses while the group has members): that
        # one set them.
        log.info("group %s: not setting its first positions (%s)", group, e.args[0].str())
        return False
    log.info("group %s starts at the end of its %d input partition(s) (first_read=latest)",
             group, len(ends))
    return True
