"""A broker dropping out of the cluster metadata has every service renew its producers."""

from __future__ import annotations

from choreo.runtime.broker_watch import BrokerWatch


def _watch() -> tuple[BrokerWatch, list[str]]:
    told: list[str] = []
    return BrokerWatch(admin=None, topic="own", left=told.append), told  # type: ignore[arg-type]


def test_a_broker_that_leaves_is_told_once() -> None:
    watch, told = _watch()
    watch.saw({1, 2, 3})
    watch.saw({1, 3})
    watch.saw({1, 3})
    assert told == ["broker 2 left the cluster"]


def test_a_broker_that_joins_or_comes_back_is_no_reason_to_renew() -> None:
    watch, told = _watch()
    watch.saw({1, 3})  # the first answer only sets what is known
    watch.saw({1, 2, 3})
    assert told == []
    watch.saw({1, 3})
    assert told == ["broker 2 left the cluster"]


def test_an_answer_without_brokers_says_nothing() -> None:
    watch, told = _watch()
    watch.saw({1, 2})
    watch.saw(set())
    watch.saw({1, 2})
    assert told == []
