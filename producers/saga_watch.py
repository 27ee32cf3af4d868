"""Following sagas from the outside: which orders ended how, and counts of every event type."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from choreo.exceptions import ChoreoError, RegistryUnavailableError
from choreo.kafka import clients
from choreo.serde.codec import Codec
from choreo.settings import Settings
from consumers.domain import DOMAIN, SAGA_ENDS
from consumers.limits import ID_MAX, clipped

EVENT_TOPICS = tuple(s.own_topic for s in DOMAIN.services)


class SagaWatcher:
    """Tails the event topics (read_committed) and keeps score."""

    def __init__(self, settings: Settings, codec: Codec, topics: tuple[str, ...] = EVENT_TOPICS) -> None:
        self.codec = codec
        self.counts: Counter[str] = Counter()
        self.ended: dict[str, str] = {}
        self.answered: set[str] = set()  # ids of the records that some event answered
        self._consumer = clients.reader_consumer(settings, **{"enable.partition.eof": False})
        names = [settings.topic(t) for t in topics]
        meta = self._consumer.list_topics(timeout=10).topics
        missing = [n for n in names if n not in meta]
        if missing:
            raise ChoreoError(f"topics {missing} do not exist: run `choreo topics create`")
        self._consumer.assign(
            [TopicPartition(n, p, OFFSET_BEGINNING) for n in names for p in meta[n].partitions]
        )

    def poll(self, timeout_s: float = 0.5) -> int:
        msgs = self._consumer.consume(1000, timeout_s)
        later: set[tuple[str, int]] = set()  # partitions to read again from a record not read yet
        for msg in msgs:
            if msg.error() is not None:
                continue
            where = (msg.topic() or "", msg.partition() or 0)
            if where in later:
                continue
            try:
                event: Any = self.codec.decode(msg.value())
            except RegistryUnavailableError:
                # Not read yet, not unreadable: a saga's end must not be missed because the
                # registry was down when it went by. Read again from here on the next poll.
                self._consumer.seek(TopicPartition(*where, msg.offset() or 0))
                later.add(where)
                continue
            except ChoreoError:
                continue
            name = type(event).__name__
            self.counts[name] += 1
            cause = getattr(event, "causation_id", None)  # a TimerFired has none
            if cause:
                self.answered.add(cause)
            order_id = getattr(event, "order_id", None)
            if order_id and type(event) in SAGA_ENDS:
                self.ended[order_id] = SAGA_ENDS[type(event)]
        return len(msgs)

    def wait_answered(self, ids: set[str], timeout_s: float) -> bool:
        """Poll until every record in `ids` (e.g. the seed's commands) has been answered."""
        deadline = time.monotonic() + timeout_s
        while not ids <= self.answered:
            if time.monotonic() > deadline:
                return False
            self.poll(0.25)
        return True

    def wait_ended(self, order_ids: set[str], timeout_s: float) -> dict[str, str]:
        """Poll until every order in `order_ids` has ended; order id -> how it ended."""
        # An over-long order id comes back clipped in its rejection (consumers/limits.py).
        as_reported = {o: clipped(o, ID_MAX) for o in order_ids}
        deadline = time.monotonic() + timeout_s
        while not set(as_reported.values()) <= self.ended.keys():
            if time.monotonic() > deadline:
                missing = sorted(r for r in as_reported.values() if r not in self.ended)
                raise ChoreoError(f"{len(missing)} sagas never ended, e.g. {missing[:3]}")
            self.poll(0.5)
        return {o: self.ended[r] for o, r in as_reported.items()}

    def close(self) -> None:
        self._consumer.close()
