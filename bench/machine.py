"""What the figures were measured on: machine, versions, and the stack's components."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import confluent_kafka
import httpx

from harness.paths import REPO
from harness.stack import StackEndpoints


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kib = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal:")), 0)
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def load_line(measured: dict[str, Any]) -> str:
    """The machine's load around the run, printed under the table: figures from a busy machine
    are not comparable with those from a quiet one."""
    before = " ".join(f"{x:.2f}" for x in measured["load_average"])
    after = " ".join(f"{x:.2f}" for x in measured["load_average_after"])
    return (f"Machine: {measured['cpus']} cpus, load average (1/5/15 min) {before} before the run, "
            f"{after} after it.")


def versions(endpoints: StackEndpoints, extra: dict[str, str]) -> dict[str, str]:
    return {
        "choreo": metadata.version("choreo"),
        "git commit": _git_commit(),
        "python": platform.python_version(),
        "confluent-kafka": metadata.version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "fastavro": metadata.version("fastavro"),
        "kafka": endpoints.kafka_version,
        "schema registry": _registry_version(endpoints) or endpoints.registry_version,
        **extra,
    }


def _registry_version(endpoints: StackEndpoints) -> str | None:
    try:
        info = httpx.get(f"{endpoints.registry_root}/apis/registry/v3/system/info", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return None
    return f"{info.get('name', 'registry')} {info.get('version', '')}".strip()


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def _read(path: str) -> str:
    p = Path(path)
    return p.read_text(errors="replace") if p.exists() else ""
