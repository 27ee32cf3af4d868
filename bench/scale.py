"""Scale: the saga's saturation rate with one and with two instances of every service.

Each round deploys the saga twice under fresh prefixes, once with one `choreo worker` per
service and once with two (instance ids 0 and 1: the range assignor gives each 3 of the 6
partitions), dumps `scale_orders` orders at once and times them from the first PlaceOrder to
the last saga end. The two counts alternate which goes first from round to round, so a warm
page cache or a busy broker favours neither. Per core divides by the CPUs this machine lets the
bench use (choreo/cpus.py: a container's CPU quota counts): the stack and every worker share them.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.config import BenchContext, Sizes
from bench.report import Row, ratio_row
from bench.saga import SagaBench
from choreo.cpus import usable_cpus

SECTION = "4 whole saga"  # the scale rows sit beside the saturation they multiply
INSTANCE_COUNTS = (1, 2)


def saturation(bench: SagaBench, orders: int) -> float:
    """Ended sagas per second for `orders` placed at once."""
    placed, ended = bench.run(orders, None)
    span_ms = max(ms for _, ms in ended.values()) - min(placed.values())
    return len(ended) / max(span_ms, 1) * 1000


def run_scale(ctx: BenchContext, sizes: Sizes, say: Callable[[str], None]) -> list[Row]:
    cores = usable_cpus()
    rates = {
        n: Row(f"scale.instances.{n}", SECTION,
               f"ended sagas/s, {n} instance(s) per service ({4 * n} workers)", "sagas/s")
        for n in INSTANCE_COUNTS
    }
    per_core = {
        n: Row(f"scale.per_core.{n}", SECTION, f"ended sagas/s per core, {n} instance(s) per service",
               "sagas/s")
        for n in INSTANCE_COUNTS
    }
    for r in range(sizes.runs):
        order = INSTANCE_COUNTS if r % 2 == 0 else tuple(reversed(INSTANCE_COUNTS))
        for n in order:
            bench = SagaBench(ctx, sizes.scale_orders, name=f"scale{n}r{r}", instances=n)
            try:
                rate = saturation(bench, sizes.scale_orders)
            finally:
                bench.close()
            rates[n].runs.append(rate)
            per_core[n].runs.append(rate / cores)
            say(f"scale round {r + 1}/{sizes.runs}: {n} instance(s) per service: {rate:,.1f} sagas/s")
    speedup = ratio_row("scale.speedup", SECTION, "2 instances per service vs 1 (same round)",
                        rates[2], rates[1])
    return [*rates.values(), *per_core.values(), speedup]
