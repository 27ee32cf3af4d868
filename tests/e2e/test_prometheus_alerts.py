"""The shipped alert rules, fired for real: Debian's `prometheus` on loopback scrapes a running
`choreo run`, loads deploy/helm/choreo/files/choreo-alerts.yaml as it is, and raises
ChoreoWorkerDown when the worker is wedged (SIGSTOP: the process is there, its port accepts, it
answers nothing), then clears it when the worker comes back (SIGCONT: it resumes, or its
watchdog ends it and `choreo run` starts another; either way /metrics answers again). Then a
rule on the worker's own counters: a record that is not Avro, written to the orders' command
topic, is dead-lettered and ChoreoDeadLetters fires at the next evaluation.

Only the scrape and evaluation cadence are the test's own (1 s, so the minute of `for` is the
wait); the rules, the worker and its settings are the shipped ones, the Helm chart's JSON log
lines included: every line `choreo run` wrote is one JSON object naming service and instance.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from confluent_kafka import Producer

from choreo.stack.ports import free_ports
from harness.paths import REPO
from harness.processes import start_run, wait_until, worker_children
from producers import commands, seed
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.e2e

RULES = REPO / "deploy" / "helm" / "choreo" / "files" / "choreo-alerts.yaml"


class Prometheus:
    """A real Prometheus on 127.0.0.1, its data in a temp folder, stopped by `close`."""

    def __init__(self, folder: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed: `make tools` installs Debian's prometheus package"
        (self.port,) = free_ports(1)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "choreo", "static_configs": [{"targets": [target]}]}],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = folder / "prometheus.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={folder / 'prometheus.yml'}",
                 f"--storage.tsdb.path={folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/{path}", params=params, timeout=5)
        response.raise_for_status()
        return response.json()["data"]

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """The alerts named `name`, pending or firing (an unreachable API: none known yet)."""
        try:
            found = self.api("alerts")["alerts"]
        except httpx.HTTPError:
            return []
        return [a for a in found if a["labels"]["alertname"] == name]

    def value(self, query: str) -> float | None:
        """The one sample `query` gives now (None: no sample yet, or the API not answering)."""
        try:
            result = self.api("query", query=query)["result"]
        except httpx.HTTPError:
            return None
        return float(result[0]["value"][1]) if result else None

    def up(self) -> float | None:
        return self.value('up{job="choreo"}')

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def test_a_wedged_worker_fires_the_down_alert_and_its_return_clears_it(
    saga: SagaRun, tmp_path: Path
) -> None:
    (metrics_port,) = free_ports(1)
    log_path = tmp_path / "run.log"
    # Instance 0 of the first (only) service listens on CHOREO_METRICS_PORT itself.
    run = start_run(saga.settings, log_path, args=["--service", "orders"],
                    CHOREO_METRICS_PORT=str(metrics_port), CHOREO_LOG_FORMAT="json")
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{metrics_port}")
    stopped: int | None = None
    try:
        wait_until(lambda: prometheus.up() == 1.0, 120, "Prometheus scraping the orders worker")
        assert prometheus.alerts("ChoreoWorkerDown") == []
        # The rules that read the worker's own metrics see them, and none fires on a healthy worker.
        names = {r["name"] for g in prometheus.api("rules")["groups"] for r in g["rules"]}
        assert {"ChoreoWorkerDown", "ChoreoNotCommitting", "ChoreoSagaStuck"} <= names
        firing = [a for a in prometheus.api("alerts")["alerts"] if a["state"] == "firing"]
        assert firing == []

        stopped = worker_children(run.pid)["orders"]
        os.kill(stopped, signal.SIGSTOP)
        wedged_at = time.monotonic()
        wait_until(lambda: [a["state"] for a in prometheus.alerts("ChoreoWorkerDown")] == ["pending"],
                   30, "ChoreoWorkerDown pending once the scrapes fail")
        wait_until(lambda: [a["state"] for a in prometheus.alerts("ChoreoWorkerDown")] == ["firing"],
                   120, "ChoreoWorkerDown firing after its minute")
        # Not before its `for` of a minute (less the scrape that first failed).
        assert time.monotonic() - wedged_at >= 55
        [alert] = prometheus.alerts("ChoreoWorkerDown")
        assert alert["labels"] == {"alertname": "ChoreoWorkerDown", "instance": f"127.0.0.1:{metrics_port}",
                                   "job": "choreo", "severity": "critical"}

        os.kill(stopped, signal.SIGCONT)
        stopped = None
        wait_until(lambda: prometheus.up() == 1.0, 120, "the worker answering its scrape again")
        wait_until(lambda: prometheus.alerts("ChoreoWorkerDown") == [], 30, "ChoreoWorkerDown cleared")

        # A counter alert needs the series before the increase: one good order first, committed.
        order = commands.place_order("hub-north", seed.stocked_skus("hub-north")[0], 1,
                                     seed.deliverable_addresses("hub-north")[0], datetime.now(UTC))
        saga.send([order])
        wait_until(lambda: prometheus.value('choreo_records_dead_lettered_total{service="orders"}') == 0.0,
                   60, "the orders worker's dead-letter counter scraped at 0")
        junk = Producer({"bootstrap.servers": saga.settings.bootstrap_servers})
        junk.produce(saga.topic("orders.commands"), key=b"hub-north", value=b"not an order")
        assert junk.flush(30) == 0
        wait_until(lambda: [a["state"] for a in prometheus.alerts("ChoreoDeadLetters")] == ["firing"],
                   60, "ChoreoDeadLetters firing for the record that is not Avro")
        [alert] = prometheus.alerts("ChoreoDeadLetters")
        assert alert["labels"]["service"] == "orders" and alert["labels"]["severity"] == "warning"
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- run.log\n{log_path.read_text()[-3000:]}\n--- prometheus.log\n"
                             f"{prometheus.log.read_text()[-3000:]}") from None
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        prometheus.close()
        assert run.stop(90) == 0
        run.close()
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    worker_lines = [line for line in lines if line["logger"].startswith("choreo.runtime")]
    assert worker_lines, "the worker logged through choreo.runtime"
    assert {(line["service"], line["instance"]) for line in worker_lines} == {("orders", "0")}
