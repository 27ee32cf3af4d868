"""A running worker serves Prometheus metrics that count what it did, and its health."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from choreo.stack.ports import free_port
from harness.processes import wait_until
from tests.support.toy_pipeline import ToyPipeline

pytestmark = pytest.mark.integration


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def test_metrics_count_processed_records_and_dead_letters(toy: ToyPipeline) -> None:
    port = free_port()
    toy.produce_numbers(120)
    toy.produce_raw(b"not avro")
    worker = toy.start("counter", "a", CHOREO_METRICS_PORT=str(port))
    wait_until(
        lambda: _metric(_scrape(port), "choreo_records_processed_total") >= 121, 120,
        "121 processed records in the metrics",
    )
    text = _scrape(port)
    assert _metric(text, "choreo_events_emitted_total") == 120
    assert _metric(text, "choreo_records_dead_lettered_total") == 1
    assert _metric(text, "choreo_commit_seconds_count") >= 1
    # Lag is sampled every few seconds from the consumer's cached watermarks; caught up = 0.
    wait_until(lambda: "choreo_consumer_lag{" in _scrape(port), 30, "a consumer lag sample")
    assert _metric(_scrape(port), "choreo_consumer_lag") == 0
    # Idle is not stuck: live and ready, with the time of its last commit.
    status, report = _health(port, "/healthz")
    assert status == 200 and report["live"] and report["ready"], report
    assert abs(_metric(_scrape(port), "choreo_last_commit_timestamp_seconds") - time.time()) < 300
    assert worker.stop() == 0


def _health(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
