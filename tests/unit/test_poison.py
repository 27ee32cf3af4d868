"""Poison isolation: isolate after repeated aborts, blame a record only for the record's own fault."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from choreo.runtime.poison import PoisonTracker, is_record_error

RECORD = ("orders", 2, 41)
OTHER = ("orders", 2, 42)

# Not the record's fault: the cluster, authorisation, a clock that is off.
NOT_THE_RECORDS_FAULT = [
    KafkaError(KafkaError._TRANSPORT),
    KafkaError(KafkaError.NOT_ENOUGH_REPLICAS),
    KafkaError(KafkaError._MSG_TIMED_OUT),
    KafkaError(KafkaError._ALL_BROKERS_DOWN),
    KafkaError(KafkaError.NOT_COORDINATOR),
    KafkaError(KafkaError.UNKNOWN, retriable=True),  # unclassified, but the client says retry
    KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED),  # an ACL change must not dead-letter input
    KafkaError(KafkaError.INVALID_TIMESTAMP),  # a worker clock that is off
]


def test_classification() -> None:
    assert is_record_error(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    assert is_record_error(KafkaError(KafkaError.INVALID_RECORD))
    for err in NOT_THE_RECORDS_FAULT:
        assert not is_record_error(err), err


def test_isolating_after_three_aborts_in_a_row_reset_by_a_commit() -> None:
    tracker = PoisonTracker(isolate_after=3)
    assert not tracker.isolating
    tracker.aborted(5, None, KafkaError(KafkaError._TRANSPORT))
    tracker.aborted(5, None, None)
    assert not tracker.isolating
    tracker.aborted(5, None, KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    assert tracker.isolating
    tracker.committed()
    assert not tracker.isolating
    tracker.aborted(5, None, None)
    tracker.aborted(5, None, None)
    assert not tracker.isolating  # the count starts again after a commit


@pytest.mark.parametrize(
    "err",
    [KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), KafkaError(KafkaError.INVALID_RECORD)],
    ids=["too-large", "invalid-record"],
)
def test_a_record_failing_alone_with_a_record_error_is_blamed_with_a_reason(err: KafkaError) -> None:
    tracker = PoisonTracker(isolate_after=3)
    for _ in range(3):  # whole batches abort: isolation starts
        tracker.aborted(5, None, err)
    assert tracker.isolating
    assert tracker.reason_for(RECORD) is None
    for _ in range(3):
        tracker.aborted(1, RECORD, err)
        if tracker.reason_for(RECORD) is not None:
            break
    reason = tracker.reason_for(RECORD)
    assert reason is not None  # a record error alone is the record's: blamed at once
    assert err.str() in reason and "alone" in reason
    assert tracker.reason_for(OTHER) is None


def test_a_refusal_naming_one_input_blames_it_at_once() -> None:
    tracker = PoisonTracker(isolate_after=3)
    tracker.aborted(5, None, KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), {RECORD: "MSG_SIZE_TOO_LARGE: big"})
    reason = tracker.reason_for(RECORD)
    assert reason is not None and "MSG_SIZE_TOO_LARGE: big" in reason
    assert tracker.reason_for(OTHER) is None


def test_a_refusal_naming_many_inputs_takes_the_batch_apart_instead_of_blaming() -> None:
    tracker = PoisonTracker(isolate_after=3)
    refused = {RECORD: "too large", OTHER: "too large"}
    tracker.aborted(3, None, KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), refused)
    assert tracker.reason_for(RECORD) is None and tracker.reason_for(OTHER) is None
    assert tracker.isolating  # at once, not after three aborts
    for _ in range(3):  # one record per batch for as many batches as the batch held
        assert tracker.isolating
        tracker.committed()
    assert not tracker.isolating


@pytest.mark.parametrize("err", NOT_THE_RECORDS_FAULT, ids=lambda e: e.name())
def test_a_record_failing_alone_for_another_reason_is_never_blamed(err: KafkaError) -> None:
    tracker = PoisonTracker(isolate_after=3)
    for _ in range(20):
        tracker.aborted(1, RECORD, err)
    assert tracker.isolating  # the batches still count as aborted
    assert tracker.reason_for(RECORD) is None


def test_a_failure_without_an_error_is_not_blamed() -> None:
    tracker = PoisonTracker(isolate_after=3)
    for _ in range(10):
        tracker.aborted(1, RECORD, None)
    assert tracker.reason_for(RECORD) is None


def test_blame_outlives_a_commit() -> None:
    tracker = PoisonTracker(isolate_after=3)
    tracker.aborted(1, RECORD, KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    tracker.committed()
    assert tracker.reason_for(RECORD) is not None


def test_blame_then_reason_for() -> None:
    tracker = PoisonTracker()
    assert tracker.reason_for(RECORD) is None
    tracker.blame(RECORD, "output too large for any topic")
    assert tracker.reason_for(RECORD) == "output too large for any topic"
    assert tracker.reason_for(("orders", 3, 41)) is None  # other partition, same offset
    tracker.blame(RECORD, "a newer reason")
    assert tracker.reason_for(RECORD) == "a newer reason"
