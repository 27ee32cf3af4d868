"""`make bench QUICK=1` end to end, so the harness cannot rot: every row, positive figures.

Nothing here asserts a time or a rate: the quick sizes measure nothing, they prove that every
measurement still runs against the real stack and lands in the table, the Markdown and the JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import QUICK
from harness.env import python_env
from harness.paths import REPO

pytestmark = pytest.mark.integration

EXPECTED_ROWS = {
    "ceiling.copy", "ceiling.copy_one_producer", "ceiling.consume",
    "codec.encode", "codec.decode",
    "stage.project", "stage.quix", "stage.ceiling",
    "stage.project_over_quix", "stage.project_over_ceiling",
    "saga.saturation",
    "turns.1.p50", "turns.1.p99", "turns.2.p50", "turns.2.p99", "turns.p50_two_over_one",
    "scale.instances.1", "scale.instances.2", "scale.per_core.1", "scale.per_core.2", "scale.speedup",
    *(f"saga.latency.{load}.{p}" for load in (25, 50, 75) for p in ("p50", "p99", "p99.9")),
    "saga.cpu.25.workers", "saga.cpu.25.machine",
    "rebuild.replay", "rebuild.consume", "rebuild.ratio", "rebuild.over_decode",
    "recovery.seconds",
    *(f"memory.rss.{i}" for i in range(len(QUICK.memory_keys))),
}


def test_quick_bench_prints_and_writes_every_row(stack: object, tmp_path: Path) -> None:
    # The stack fixture exported KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL: the bench uses them.
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO, env=python_env(),
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"

    [json_file] = tmp_path.glob("*-quick.json")
    [md_file] = tmp_path.glob("*-quick.md")
    report = json.loads(json_file.read_text())
    rows = {row["key"]: row for row in report["rows"]}
    # The hop rows are named by the saga's own events; the reference saga has at least these.
    hops = {key for key in rows if key.startswith("saga.hop.25.")}
    assert {"saga.hop.25.command -> OrderPlaced", "saga.hop.25.OrderPlaced -> PackagePrepared"} <= hops
    # The broker's CPU is read from /proc only for a stack the bench itself runs: not this one.
    assert set(rows) - hops - {"saga.cpu.25.broker"} == EXPECTED_ROWS
    for key, row in rows.items():
        assert len(row["runs"]) == QUICK.runs, key
        assert row["min"] > 0 and row["median"] > 0 and row["max"] >= row["median"], (key, row)
        assert row["measure"] in md_file.read_text(), key
        assert row["measure"] in result.stdout, key  # the printed table

    assert {"python", "confluent-kafka", "librdkafka", "fastavro", "quixstreams"} <= set(report["versions"])
    shared = report["settings"]["shared by every contender"]
    assert shared["partitions"] == 6 and shared["acks"] == "all"
    assert report["machine"]["cpus"] >= 1
    assert sum(report["notes"]["saturation saga ends"].values()) == QUICK.saga_orders * QUICK.runs
