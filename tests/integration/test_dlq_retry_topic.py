"""`choreo dlq retry` re-delivers to the service that dead-lettered a record, never into the log of
the service that owns the record's topic, also on a deployment made before
retry topics existed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from choreo import provision
from choreo.kafka import clients
from choreo.kafka.partitioner import partition_for
from choreo.kafka.topics import logical_topics
from choreo.runtime.retried import RETRIED_AS
from harness.processes import wait_until
from harness.stack import StackEndpoints
from tests.support import toy as toy_services
from tests.support.topic_reader import read_topic
from tests.support.toy_pipeline import ToyPipeline

pytestmark = pytest.mark.integration


@pytest.fixture()
def old_toy(
    stack: StackEndpoints, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ToyPipeline]:
    """The toy pipeline deployed as before retry topics existed: every topic but those."""
    monkeypatch.setattr(provision, "logical_topics", lambda services: [
        t for t in logical_topics(services) if t not in {s.retry_topic for s in services}
    ])
    pipe = ToyPipeline(stack.bootstrap_servers, stack.schema_registry_url, topic_prefix, tmp_path)
    yield pipe
    pipe.close()


def _exists(toy: ToyPipeline, logical: str) -> bool:
    return toy.topic(logical) in clients.admin_client(toy.settings).list_topics(timeout=10).topics


def _ends(toy: ToyPipeline, logical: str) -> list[int]:
    reader = clients.reader_consumer(toy.settings)
    try:
        return [reader.get_watermark_offsets(TopicPartition(toy.topic(logical), p), timeout=10)[1]
                for p in range(toy.settings.partitions)]
    finally:
        reader.close()


def _dead_letter_of_doubler(toy: ToyPipeline, event: toy_services.NumberCounted) -> tuple[int, int]:
    """A NumberCounted from counter's topic in doubler's DLQ, as doubler's worker writes one."""
    p = partition_for(event.hub.encode(), toy.settings.partitions)
    producer = clients.plain_producer(toy.settings)
    where: list[tuple[int, int]] = []

    def delivered(err: Any, msg: Any) -> None:
        where.append((msg.partition(), msg.offset()))

    producer.produce(
        toy.topic("doubler.dlq"), key=event.hub.encode(), partition=p,
        value=toy.codec.encode(toy.topic("counter"), event),
        headers=[("event_type", event.SCHEMA.encode()), ("dlq.error.class", b"RuntimeError"),
                 ("dlq.error.message", b"a bug, since fixed"),
                 ("dlq.source.topic", toy.topic("counter").encode()),
                 ("dlq.source.partition", str(p).encode()), ("dlq.source.offset", b"0")],
        on_delivery=delivered,
    )
    assert producer.flush(30) == 0
    return where[0]


def test_a_retried_letter_from_an_event_topic_reaches_only_the_service_that_dead_lettered_it(
    old_toy: ToyPipeline,
) -> None:
    toy = old_toy
    event = toy_services.NumberCounted(str(uuid.uuid4()), "hub-3", datetime.now(UTC), None, 2, 21)
    p, o = _dead_letter_of_doubler(toy, event)
    assert not _exists(toy, "doubler.retry")

    # No worker of this version has run: nobody would read a retried letter, so none is sent.
    early = toy.choreo("dlq", "retry", "doubler", "--partition", str(p), "--offset", str(o))
    assert early.returncode == 1 and "Traceback" not in early.stderr
    assert early.stderr.strip().splitlines() == [early.stderr.strip()]
    assert "doubler.retry does not exist" in early.stderr

    worker = toy.start("doubler", "a")
    try:
        wait_until(lambda: _exists(toy, "doubler.retry"), 60, "the worker to create its retry topic")
        counter_ends = _ends(toy, "counter")
        sent = toy.choreo("dlq", "retry", "doubler", "--partition", str(p), "--offset", str(o))
        assert sent.returncode == 0, sent.stderr
        assert "1 sent, 0 already retried" in sent.stdout, sent.stdout

        def doubled() -> list[Any]:
            return [r for r in toy.doubled() if r.event.causation_id == event.event_id]

        wait_until(lambda: doubled(), 90, "doubler to decide the retried letter")
        assert [(r.partition, r.event.doubled) for r in doubled()] == [(p, 42)]
        assert worker.alive()
    finally:
        assert worker.stop() == 0
    # counter's log, which doubler and any other reader of it consume, was not written to.
    assert _ends(toy, "counter") == counter_ends
    retried = [r for r in toy.doubled() if r.event.causation_id == event.event_id]
    assert len(retried) == 1  # decided once
    copies = read_topic(toy.settings, toy.topic("doubler.retry"))
    assert [(c.partition, c.key, c.headers[RETRIED_AS]) for c in copies] == [(p, b"hub-3", b"counter")]
    assert len(read_topic(toy.settings, toy.topic("doubler.dlq"))) == 1  # it did not fail again
