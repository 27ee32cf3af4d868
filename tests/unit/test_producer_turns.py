"""Transactional producers taking turns: each transaction, whole, on one producer; the next on
the other; ids stable so a restarted worker fences every turn of its predecessor."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from choreo.exceptions import ConfigurationError
from choreo.kafka.turns import TakingTurns, turn_ids
from choreo.settings import load_settings


class RecordingProducer:
    """Stands in for one confluent_kafka.Producer: records which calls reached it."""

    def __init__(self, name: str, log: list[tuple[str, str]]) -> None:
        self.name, self.log = name, log

    def _record(self, call: str) -> None:
        self.log.append((self.name, call))

    def init_transactions(self, timeout: float) -> None:
        self._record("init")

    def begin_transaction(self) -> None:
        self._record("begin")

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None:
        self._record(f"produce {topic}")

    def poll(self, timeout: float) -> int:
        self._record("poll")
        return 0

    def flush(self, timeout: float) -> int:
        self._record("flush")
        return 0

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, timeout: float) -> None:
        self._record("send_offsets")

    def commit_transaction(self, timeout: float) -> None:
        self._record("commit")

    def abort_transaction(self, timeout: float) -> None:
        self._record("abort")


def turns(n: int) -> tuple[TakingTurns, list[tuple[str, str]]]:
    log: list[tuple[str, str]] = []
    producers = [RecordingProducer(chr(ord("a") + i), log) for i in range(n)]
    return TakingTurns(producers), log  # type: ignore[arg-type]  # duck-typed stand-ins


def one_batch(producer: TakingTurns, *, commit: bool = True) -> None:
    producer.begin_transaction()
    producer.produce("own")
    producer.poll(0)
    producer.flush(1)
    producer.send_offsets_to_transaction([], None, 1)
    if commit:
        producer.commit_transaction(1)
    else:
        producer.abort_transaction(1)


def test_each_transaction_runs_whole_on_one_producer_and_the_next_on_the_other() -> None:
    producer, log = turns(2)
    for _ in range(3):
        one_batch(producer)
    calls = ["begin", "produce own", "poll", "flush", "send_offsets", "commit"]
    assert log == [("a", c) for c in calls] + [("b", c) for c in calls] + [("a", c) for c in calls]


def test_an_aborted_transaction_passes_the_turn_on_like_a_committed_one() -> None:
    producer, log = turns(2)
    one_batch(producer, commit=False)
    one_batch(producer)
    assert ("a", "abort") in log
    assert [name for name, call in log if call == "begin"] == ["a", "b"]
    assert [name for name, call in log if call == "commit"] == ["b"]


def test_a_retried_commit_stays_on_the_producer_of_its_transaction() -> None:
    producer, log = turns(2)
    producer.begin_transaction()
    producer.commit_transaction(1)
    producer.commit_transaction(1)  # what guarded_call does after a retriable error
    assert log == [("a", "begin"), ("a", "commit"), ("a", "commit")]


def test_one_producer_takes_every_turn() -> None:
    producer, log = turns(1)
    one_batch(producer)
    one_batch(producer)
    assert {name for name, _ in log} == {"a"}


def test_every_producer_is_initialised_and_flushed_on_close() -> None:
    producer, log = turns(2)
    producer.init_transactions(1)
    producer.flush_all(1)
    assert sorted(log[:2]) == [("a", "init"), ("b", "init")]  # side by side: either first
    assert log[2:] == [("a", "flush"), ("b", "flush")]


def test_no_producers_is_refused() -> None:
    with pytest.raises(ValueError):
        TakingTurns([])


def test_the_first_turn_keeps_the_workers_id() -> None:
    assert turn_ids("packaging-0", 1) == ["packaging-0"]
    assert turn_ids("packaging-0", 2) == ["packaging-0", "packaging-0.turn2"]


def test_txn_producers_defaults_to_two_and_is_bounded() -> None:
    assert load_settings({}).txn_producers == 2
    assert load_settings({"CHOREO_TXN_PRODUCERS": "1"}).txn_producers == 1
    with pytest.raises(ConfigurationError, match="CHOREO_TXN_PRODUCERS"):
        load_settings({"CHOREO_TXN_PRODUCERS": "3"})


def test_a_failed_initialisation_is_raised_once_every_producer_has_returned() -> None:
    log: list[tuple[str, str]] = []

    class Refused(RecordingProducer):
        def init_transactions(self, timeout: float) -> None:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT))

    producer = TakingTurns([Refused("a", log), RecordingProducer("b", log)])  # type: ignore[list-item]
    with pytest.raises(KafkaException):
        producer.init_transactions(1)
    assert log == [("b", "init")]


def test_replaced_producers_take_the_turns_from_the_first_and_the_old_are_handed_back() -> None:
    producer, log = turns(2)
    one_batch(producer)  # "a" had the last turn
    fresh = [RecordingProducer("c", log), RecordingProducer("d", log)]
    old = producer.replace(fresh)  # type: ignore[arg-type]
    one_batch(producer)
    one_batch(producer)
    assert [p.name for p in old] == ["a", "b"]  # type: ignore[attr-defined]
    assert [name for name, call in log if call == "begin"] == ["a", "c", "d"]
    with pytest.raises(ValueError, match="one producer per turn"):
        producer.replace(fresh[:1])  # type: ignore[arg-type]


def test_client_errors_are_logged_then_handed_on(caplog: pytest.LogCaptureFixture) -> None:
    from confluent_kafka import KafkaError

    from choreo.kafka.clients import logged_errors

    seen: list[int] = []
    on_error = logged_errors(lambda err: seen.append(err.code()))
    with caplog.at_level("WARNING", logger="choreo.kafka"):
        on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "3/3 brokers are down"))
    assert seen == [KafkaError._ALL_BROKERS_DOWN]
    assert "client error: _ALL_BROKERS_DOWN: 3/3 brokers are down" in caplog.text
