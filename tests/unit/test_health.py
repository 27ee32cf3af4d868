"""Progress tells idle from stuck; the endpoints serve it next to the metrics."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from choreo.runtime.health import Progress, serve_endpoints
from tests.support.fake_clock import FakeClock


def _progress(clock: FakeClock, stall_s: float = 60.0) -> Progress:
    return Progress(stall_s=stall_s, clock=clock, wall=lambda: 1_700_000_000.0)


def test_a_fresh_idle_worker_is_live() -> None:
    clock = FakeClock()
    progress = _progress(clock)
    assert progress.problem() is None
    for _ in range(10):  # polls every 30 s, never commits anything: idle, not stuck
        clock.advance(30)
        progress.polled()
    assert progress.problem() is None
    report = progress.report()
    assert report["live"] is True and report["problem"] is None
    assert report["last_commit_at"] is None and report["failing_for_s"] == 0.0


def test_no_poll_for_longer_than_stall_is_not_live() -> None:
    clock = FakeClock()
    progress = _progress(clock, stall_s=60)
    progress.ready = True
    clock.advance(60)
    assert progress.problem() is None
    clock.advance(1)
    problem = progress.problem()
    assert problem is not None and "has not turned" in problem
    assert progress.report()["live"] is False
    progress.polled()
    assert progress.problem() is None


def test_failing_batches_for_longer_than_stall_is_not_live_although_polling() -> None:
    clock = FakeClock()
    progress = _progress(clock, stall_s=60)
    progress.failed()
    for _ in range(6):
        clock.advance(10)
        progress.polled()
        progress.failed()  # later failures do not move the start of the streak
    assert progress.failing_for() == 60
    assert progress.problem() is None
    clock.advance(5)
    progress.polled()
    problem = progress.problem()
    assert problem is not None and "failed" in problem
    assert progress.report()["live"] is False


def test_a_commit_resets_the_failing_streak() -> None:
    clock = FakeClock()
    progress = _progress(clock, stall_s=60)
    progress.failed()
    clock.advance(50)
    progress.polled()
    progress.committed()
    assert progress.failing_for() == 0.0
    assert progress.report()["last_commit_at"] == 1_700_000_000.0
    progress.failed()  # a new streak starts now, not 50 s ago
    clock.advance(50)
    progress.polled()
    assert progress.problem() is None
    clock.advance(11)
    progress.polled()
    assert progress.problem() is not None


# -- the HTTP endpoints ------------------------------------------------------------------------


def _get(port: int, path: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


@pytest.fixture()
def served() -> Iterator[tuple[int, Progress, FakeClock]]:
    registry = CollectorRegistry()
    counter = Counter("choreo_test_batches", "Batches seen by the test", registry=registry)
    counter.inc(7)
    clock = FakeClock()
    progress = _progress(clock, stall_s=60)
    server = serve_endpoints(registry, progress, port=0)
    try:
        yield server.server_port, progress, clock
    finally:
        server.shutdown()
        server.server_close()


def _json(body: bytes) -> dict[str, Any]:
    data = json.loads(body)
    assert isinstance(data, dict)
    return data


def test_healthz_turns_503_when_progress_goes_stale(served: tuple[int, Progress, FakeClock]) -> None:
    port, progress, clock = served
    progress.ready = True
    status, body, ctype = _get(port, "/healthz")
    assert status == 200 and ctype == "application/json"
    assert _json(body)["live"] is True
    clock.advance(61)
    status, body, _ = _get(port, "/healthz")
    report = _json(body)
    assert status == 503
    assert report["live"] is False and "has not turned" in report["problem"]
    progress.polled()
    assert _get(port, "/healthz")[0] == 200


def test_readyz_is_503_until_ready_and_while_not_live(served: tuple[int, Progress, FakeClock]) -> None:
    port, progress, clock = served
    status, body, _ = _get(port, "/readyz")
    assert status == 503 and _json(body)["ready"] is False
    progress.ready = True
    status, body, _ = _get(port, "/readyz?probe=1")  # a query string does not change the route
    assert status == 200 and _json(body)["ready"] is True
    clock.advance(61)  # ready once, but stuck now
    assert _get(port, "/readyz")[0] == 503


def test_readyz_is_503_while_a_partition_is_held_back_and_says_which(
    served: tuple[int, Progress, FakeClock],
) -> None:
    port, progress, _ = served
    progress.ready = True
    progress.held_back[2] = "evolve raised on orders[2]@7"
    status, body, _ = _get(port, "/readyz")
    report = _json(body)
    assert status == 503 and report["held_back_partitions"] == {"2": "evolve raised on orders[2]@7"}
    assert _get(port, "/healthz")[0] == 200  # live: the other partitions go on, a restart fixes nothing
    del progress.held_back[2]
    assert _get(port, "/readyz")[0] == 200


def test_metrics_serves_the_registry_text(served: tuple[int, Progress, FakeClock]) -> None:
    port, _, _ = served
    status, body, ctype = _get(port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    assert "choreo_test_batches_total 7.0" in body.decode()


def test_unknown_path_is_404(served: tuple[int, Progress, FakeClock]) -> None:
    port, _, _ = served
    assert _get(port, "/nope")[0] == 404


def test_a_restore_is_not_a_stall_and_idle_after_a_failure_is_idle() -> None:
    clock = FakeClock()
    progress = _progress(clock, stall_s=60)
    progress.ready = False  # restoring: the loop is inside a poll for as long as it takes
    clock.advance(600)
    assert progress.problem() is None
    progress.ready = True
    progress.polled()
    progress.failed()
    clock.advance(61)
    progress.polled()
    progress.idle()  # the failed batch's records are gone (revoked): nothing is failing now
    assert progress.problem() is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0.0.0.0", "::1"])
def test_the_endpoints_listen_on_the_host_they_are_given(host: str) -> None:
    if ":" in host and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    registry = CollectorRegistry()
    server = serve_endpoints(registry, _progress(FakeClock()), port=0, host=host)
    try:
        assert server.server_address[0] in (host, "127.0.0.1")  # a name is bound as its address
        shown = f"[{host}]" if ":" in host else ("127.0.0.1" if host == "0.0.0.0" else host)
        with urllib.request.urlopen(f"http://{shown}:{server.server_port}/healthz", timeout=5) as r:
            assert r.status == 200
    finally:
        server.shutdown()
        server.server_close()
