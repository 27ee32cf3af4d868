"""A service deployed into a running system reads from where its `first_read` says."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from choreo.kafka import clients
from choreo.kafka.group_offsets import committed_offsets
from harness.processes import wait_until
from tests.support.stack_slice import StackSlice
from tests.support.toy_pipeline import ToyPipeline

pytestmark = pytest.mark.integration


class _Late(StackSlice):
    domains = "tests.support.toy:LATE_DOMAIN"


def test_a_service_that_first_reads_latest_never_decides_the_history(toy: ToyPipeline) -> None:
    toy.start("counter")
    history = toy.produce_numbers(20)
    wait_until(lambda: toy.input_committed("counter", "counter.commands"), 120, "the history counted")
    historical = {r.event.event_id for r in toy.counted()}
    assert len(historical) == len(history)

    late = _Late(toy.settings.bootstrap_servers, toy.settings.schema_registry_url,
                 toy.settings.topic_prefix, toy.log_dir.parent / "late")
    late.settings = toy.settings  # the same slice: topics, groups and state folder
    try:
        late.start("doubler")
        # Numbers keep coming (all on hub-0, whose partition holds history too) until the late
        # doubler answers one. Reading from the earliest offset, its first answer on that
        # partition would be to a historical record: a partition is decided in offset order.
        def answered() -> bool:
            toy.produce_numbers(1)
            return bool(toy.doubled())

        wait_until(answered, 120, "the late doubler to answer a new number", interval=0.5)
        late.stop_workers()
        causes = [r.event.causation_id for r in toy.doubled()]
        assert causes and not historical & set(causes), "the late doubler decided the history"
        assert len(causes) == len(set(causes))
        # Every input partition has a position from the first start on, those that never got a
        # record included (and the retry topic's): nothing written while the worker is away is
        # skipped when it comes back, and an aborted batch rewinds to a position, not to 0.
        admin = clients.admin_client(toy.settings)
        inputs = [toy.topic("counter"), toy.topic("doubler.retry")]
        meta = admin.list_topics(timeout=10).topics
        tps = [TopicPartition(t, p) for t in inputs for p in meta[t].partitions]
        assert set(committed_offsets(admin, toy.settings.group("doubler"), tps)) == {
            (tp.topic, tp.partition) for tp in tps}
    finally:
        late.close()
    toy.stop_workers()
