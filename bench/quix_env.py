"""Quix Streams in its own virtual environment (it pins an older confluent-kafka than ours)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.config import BENCH_DIR

QUIX_VERSION = "3.28.1"
VENV = BENCH_DIR / ".quix-venv"


def quix_python() -> Path:
    """The venv's python with quixstreams installed, creating the venv with pip if needed."""
    python = VENV / "bin" / "python"
    if not _has_quix(python):
        print(f"creating {VENV} with quixstreams=={QUIX_VERSION} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}"]
        subprocess.run(pip, check=True)
    return python


def _has_quix(python: Path) -> bool:
    if not python.exists():
        return False
    check = f"import quixstreams; assert quixstreams.__version__ == {QUIX_VERSION!r}"
    probe = subprocess.run([str(python), "-c", check], capture_output=True)
    return probe.returncode == 0


def quix_versions(python: Path) -> dict[str, str]:
    """quixstreams and the confluent-kafka / librdkafka it runs on."""
    out = subprocess.run(
        [str(python), "-c",
         "import quixstreams, confluent_kafka; "
         "print(quixstreams.__version__, confluent_kafka.__version__, confluent_kafka.libversion()[0])"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return {"quixstreams": out[0], "quix confluent-kafka": out[1], "quix librdkafka": out[2]}
