"""The project's codec on its own: events encoded and decoded per second (schema ids cached)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.config import BenchContext, Sizes
from bench.inputs import order_placed
from bench.report import Row
from harness.deploy import deploy
from producers.commands import edge_time

SECTION = "2 codec"


def run_codec(ctx: BenchContext, sizes: Sizes, say: Callable[[str], None]) -> list[Row]:
    dep = deploy(ctx.settings("codec"))
    topic = dep.topic("orders")
    rng = random.Random(7)
    at = edge_time(datetime.now(UTC))
    events = [order_placed(rng, at) for _ in range(sizes.codec_events)]
    dep.codec.encode(topic, events[0])  # the one registry lookup, outside the timing
    encode = Row("codec.encode", SECTION, "encode OrderPlaced (validate + Avro + framing)", "events/s")
    decode = Row("codec.decode", SECTION, "decode OrderPlaced (strict, to dataclass)", "events/s")
    for i in range(sizes.runs):
        began = time.perf_counter()
        values = [dep.codec.encode(topic, e) for e in events]
        encode.runs.append(len(events) / (time.perf_counter() - began))
        began = time.perf_counter()
        for v in values:
            dep.codec.decode(v)
        decode.runs.append(len(values) / (time.perf_counter() - began))
        say(f"codec run {i + 1}/{sizes.runs}: encode {encode.runs[-1]:,.0f}/s "
            f"decode {decode.runs[-1]:,.0f}/s")
    return [encode, decode]
