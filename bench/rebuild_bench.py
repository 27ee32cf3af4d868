"""Rebuild: replaying packaging's own topic into fresh stores, against a bare consume of it and
against the codec's single-process decode rate (rounds interleaved with the codec's)."""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.kafka_io import bare_consume
from bench.report import Row, ratio_row
from choreo.ops.rebuild import rebuild
from harness.deploy import Deployment

SECTION = "5 rebuild"


class RebuildBench:
    """`dep` holds a filled packaging topic (the stage's last round: the stock and every output)."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.service = next(s for s in dep.services if s.name == "packaging")
        self.replay = Row("rebuild.replay", SECTION,
                          "rebuild packaging state (decode + evolve + SQLite, partitions in parallel)",
                          "events/s")
        self.bare = Row("rebuild.consume", SECTION, "bare consume of the same topic", "records/s")

    def round(self, say: Callable[[str], None], label: str) -> None:
        began = time.perf_counter()
        results = rebuild(self.dep.settings, self.service, self.dep.codec)
        seconds = time.perf_counter() - began
        self.replay.runs.append(sum(r.events for r in results) / seconds)
        self.bare.runs.append(bare_consume(self.dep.settings, self.dep.topic("packaging")))
        say(f"rebuild run {label}: {self.replay.runs[-1]:,.0f} events/s, "
            f"bare consume {self.bare.runs[-1]:,.0f} records/s")

    def rows(self, decode: Row | None) -> list[Row]:
        rows = [self.replay, self.bare,
                ratio_row("rebuild.ratio", SECTION, "ratio rebuild / bare consume", self.replay, self.bare)]
        if decode is not None:
            rows.append(ratio_row("rebuild.over_decode", SECTION,
                                  "ratio rebuild / codec decode (same rounds)", self.replay, decode))
        return rows
