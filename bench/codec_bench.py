"""The project's codec on its own: events encoded and decoded per second (schema ids cached)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.config import BenchContext
from bench.inputs import order_placed
from bench.report import Row
from harness.deploy import deploy
from producers.commands import edge_time

SECTION = "2 codec"


class CodecBench:
    """`codec_events` OrderPlaced, encoded then decoded once per `round()`; one row each."""

    def __init__(self, ctx: BenchContext, events: int) -> None:
        self.dep = deploy(ctx.settings("codec"))
        self.topic = self.dep.topic("orders")
        rng = random.Random(7)
        at = edge_time(datetime.now(UTC))
        self.events = [order_placed(rng, at) for _ in range(events)]
        self.dep.codec.encode(self.topic, self.events[0])  # the one registry lookup, outside the timing
        self.encode = Row("codec.encode", SECTION, "encode OrderPlaced (validate + Avro + framing)",
                          "events/s")
        self.decode = Row("codec.decode", SECTION, "decode OrderPlaced (strict, to dataclass)",
                          "events/s")

    def round(self, say: Callable[[str], None], label: str) -> None:
        codec, topic = self.dep.codec, self.topic
        began = time.perf_counter()
        values = [codec.encode(topic, e) for e in self.events]
        self.encode.runs.append(len(values) / (time.perf_counter() - began))
        began = time.perf_counter()
        for v in values:
            codec.decode(v)
        self.decode.runs.append(len(values) / (time.perf_counter() - began))
        say(f"codec run {label}: encode {self.encode.runs[-1]:,.0f}/s "
            f"decode {self.decode.runs[-1]:,.0f}/s")

    @property
    def rows(self) -> list[Row]:
        return [self.encode, self.decode]
