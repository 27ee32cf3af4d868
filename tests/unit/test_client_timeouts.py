"""How long clients wait on a broker: every client gives up after REQUEST_TIMEOUT_MS unless an
operator's CHOREO_KAFKA_* setting says otherwise; the broker watch's own client after one second
(its question is asked again a second later, so a miss costs nothing)."""

from __future__ import annotations

import pytest

from choreo.kafka import clients
from choreo.runtime import broker_watch
from choreo.settings import Settings, load_settings


def test_every_client_gives_up_on_a_silent_broker_within_seconds() -> None:
    config = clients.base_config(Settings())
    # librdkafka's default is 60 s: a paused broker would hold a metadata request that long.
    assert config["socket.timeout.ms"] == clients.REQUEST_TIMEOUT_MS <= 10_000


def test_an_operators_request_timeout_wins() -> None:
    settings = load_settings({"CHOREO_KAFKA_SOCKET_TIMEOUT_MS": "60000"})
    assert clients.base_config(settings)["socket.timeout.ms"] == "60000"


def test_the_broker_watch_asks_the_next_broker_after_its_own_query_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: dict[str, object] = {}
    monkeypatch.setattr(clients, "_built", lambda kind, config, settings: built.update(config))
    broker_watch.watch_client(Settings())
    assert built["socket.timeout.ms"] == int(broker_watch.QUERY_S * 1000)
    assert broker_watch.QUERY_S * 1000 < clients.REQUEST_TIMEOUT_MS
