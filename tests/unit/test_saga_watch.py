"""The saga watcher misses no end: a record it cannot decode while the registry is down is read
again once it is back, not dropped (that made a fault scenario report sagas that had ended)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message, TopicPartition

from choreo.exceptions import DecodeError, RegistryUnavailableError
from consumers.orders.events import OrderCompleted
from producers.saga_watch import SagaWatcher

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOPIC = "t.orders"


class Log:
    """A consumer over one partition of records (values are the events themselves)."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.at = 0

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        out = [Message(topic=TOPIC, partition=0, offset=i, value=v)
               for i, v in enumerate(self.values[self.at:self.at + num_messages], self.at)]
        self.at += len(out)
        return out

    def seek(self, tp: TopicPartition) -> None:
        self.at = tp.offset


class Codec:
    """Decodes a record once the registry is up; `junk` is never a record."""

    def __init__(self) -> None:
        self.registry_up = False

    def decode(self, value: Any) -> Any:
        if value == "junk":
            raise DecodeError("not a record")
        if not self.registry_up:
            raise RegistryUnavailableError("schema registry unreachable")
        return value


def _watcher(log: Log, codec: Codec) -> SagaWatcher:
    watcher = SagaWatcher.__new__(SagaWatcher)  # no cluster: the consumer is the log above
    watcher.codec = codec  # type: ignore[assignment]
    watcher.counts, watcher.ended, watcher.answered = Counter(), {}, set()
    watcher._consumer = log  # type: ignore[assignment]
    return watcher


def test_an_end_read_while_the_registry_is_down_is_seen_once_it_is_back() -> None:
    end = OrderCompleted(event_id="e-1", order_id="o-1", hub="hub-north", occurred_at=T0,
                         causation_id="c-1", package_id="p-1", drone_id="d-1")
    codec = Codec()
    watcher = _watcher(Log(["junk", end]), codec)
    watcher.poll(0)
    assert watcher.ended == {}
    codec.registry_up = True
    watcher.poll(0)
    assert watcher.ended == {"o-1": "completed"}
