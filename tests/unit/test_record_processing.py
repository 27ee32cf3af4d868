"""One record through the RecordProcessor, without Kafka: what is decided as which input, and which
outputs are produced or dead-lettered (the routing checks on the hot path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from confluent_kafka import Message

from choreo.contract import Service, State, StateView
from choreo.kafka.messages import Consumed
from choreo.kafka.partitioner import partition_for
from choreo.runtime.batch import Batch
from choreo.runtime.poison import PoisonTracker
from choreo.runtime.processing import RecordProcessor
from choreo.runtime.retried import RETRIED_AS
from choreo.runtime.routing import PartitionRouting
from choreo.testing import MemoryState

PARTITIONS = 6
INPUT, OTHER, RETRY, OWN, DLQ = "p.in", "p.other", "p.svc.retry", "p.svc", "p.svc.dlq"


@dataclass(frozen=True)
class Ask:
    SCHEMA: ClassVar[str] = "test.Ask"
    hub: str
    answer_hub: str


@dataclass(frozen=True)
class Answered:
    SCHEMA: ClassVar[str] = "test.Answered"
    hub: str


def _decide(state: StateView, event: Ask) -> Sequence[Any]:
    return [Answered(event.answer_hub)]


def _evolve(state: State, event: Answered) -> None:
    state.put("answers", event.hub, {"n": 1})


SERVICE = Service("svc", {"in": (Ask,), "other": ()}, (Answered,), _decide, _evolve)


class _Codec:
    """Values are the events themselves, by index: enough to drive the processor."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def value_of(self, event: Any) -> bytes:
        self.events.append(event)
        return str(len(self.events) - 1).encode()

    def decode(self, value: bytes) -> Any:
        return self.events[int(value)]

    def encode(self, topic: str, event: Any) -> bytes:
        return repr(event).encode()


class _Output:
    def __init__(self) -> None:
        self.produced: list[tuple[str, int, bytes | None]] = []

    def produce(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                headers: Any, batch: Batch | None, cause: Any = None) -> None:
        self.produced.append((topic, partition, key))


def _run(topic: str, event: Ask, headers: list[tuple[str, str | bytes | None]] | None = None) -> _Output:
    codec, output = _Codec(), _Output()
    processor = RecordProcessor(
        SERVICE, codec, output, PoisonTracker(), own_topic=OWN, dlq_topic=DLQ,  # type: ignore[arg-type]
        logical_topics={INPUT: "in", OTHER: "other", RETRY: "svc.retry"}, saga_field="saga_id",
        routing=PartitionRouting({t: PARTITIONS for t in (INPUT, OTHER, RETRY, OWN)}, "hub"),
    )
    p = partition_for(event.hub.encode(), PARTITIONS)
    msg = Consumed.of(Message(topic=topic, partition=p, offset=7, key=event.hub.encode(),
                              value=codec.value_of(event), headers=headers or []))
    store = MemoryState()
    store.begin()
    processor.process(msg, store, Batch())  # type: ignore[arg-type]
    return output


def _hub_elsewhere(hub: str) -> str:
    home = partition_for(hub.encode(), PARTITIONS)
    return next(h for h in (f"hub-{i}" for i in range(50))
                if partition_for(h.encode(), PARTITIONS) != home)


def test_a_retried_record_is_decided_as_the_input_it_names() -> None:
    ask = Ask("hub-north", "hub-north")
    out = _run(RETRY, ask, [(RETRIED_AS, b"in")])
    assert out.produced == [(OWN, partition_for(b"hub-north", PARTITIONS), b"hub-north")]


def test_a_retried_record_naming_no_input_is_dead_lettered() -> None:
    out = _run(RETRY, Ask("hub-north", "hub-north"), [(RETRIED_AS, b"svc")])
    assert [topic for topic, _p, _k in out.produced] == [DLQ]


def test_a_record_of_an_input_is_decided_as_that_input_whatever_its_headers_claim() -> None:
    # Decided as `other`, which takes no Ask, even though the header names `in`.
    out = _run(OTHER, Ask("hub-north", "hub-north"), [(RETRIED_AS, b"in")])
    assert [topic for topic, _p, _k in out.produced] == [DLQ]
    assert _run(INPUT, Ask("hub-north", "hub-north"), [(RETRIED_AS, b"other")]).produced[0][0] == OWN


def test_an_output_keyed_like_its_cause_is_produced_and_one_keyed_elsewhere_is_dead_lettered() -> None:
    assert [t for t, _p, _k in _run(INPUT, Ask("hub-north", "hub-north")).produced] == [OWN]
    elsewhere = _hub_elsewhere("hub-north")
    assert [t for t, _p, _k in _run(INPUT, Ask("hub-north", elsewhere)).produced] == [DLQ]
