"""Rebuild: replaying packaging's own topic into fresh stores, against a bare consume of it."""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.config import Sizes
from bench.kafka_io import bare_consume
from bench.report import Row, ratio_row
from choreo.ops.rebuild import rebuild
from harness.deploy import Deployment

SECTION = "5 rebuild"


def run_rebuild(dep: Deployment, sizes: Sizes, say: Callable[[str], None]) -> list[Row]:
    """`dep` is the stage's last round: its packaging topic holds the stock and every output."""
    service = next(s for s in dep.services if s.name == "packaging")
    replay = Row("rebuild.replay", SECTION, "rebuild packaging state (decode + evolve + SQLite)", "events/s")
    bare = Row("rebuild.consume", SECTION, "bare consume of the same topic", "records/s")
    for i in range(sizes.runs):
        began = time.perf_counter()
        results = rebuild(dep.settings, service, dep.codec)
        seconds = time.perf_counter() - began
        replay.runs.append(sum(r.events for r in results) / seconds)
        bare.runs.append(bare_consume(dep.settings, dep.topic("packaging")))
        say(f"rebuild run {i + 1}/{sizes.runs}: {replay.runs[-1]:,.0f} events/s, "
            f"bare consume {bare.runs[-1]:,.0f} records/s")
    return [replay, bare, ratio_row("rebuild.ratio", SECTION, "ratio rebuild / bare consume", replay, bare)]
