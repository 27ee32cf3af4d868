"""One transactional producer per worker against two taking turns, on the whole saga.

Two deployments of the saga side by side, one with `CHOREO_TXN_PRODUCERS=1` and one with 2
(the default), each warmed up (SagaBench). Then rounds alternate which goes first
(1 2, 2 1, ...); each sends the same number of orders at the same fixed rate, open loop, and
takes p50 and p99 of end - placed. The rate is low enough for both to keep up, so the figures
are latency, not queueing.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.config import BenchContext, Sizes
from bench.report import Row, ratio_row
from bench.saga import SagaBench, percentile

SECTION = "4b producers taking turns"
RATE = 150.0  # orders/s: about a quarter of what this machine's saga sustains
CONTENDERS = (1, 2)


def run_turns(ctx: BenchContext, sizes: Sizes, say: Callable[[str], None]) -> list[Row]:
    rows = {
        (n, name): Row(f"turns.{n}.{name}", SECTION,
                       f"saga latency {name} at {RATE:.0f} orders/s, {n} producer(s) per worker", "ms")
        for n in CONTENDERS for name in ("p50", "p99")
    }
    orders = max(20, round(RATE * sizes.latency_seconds))
    benches = {n: SagaBench(ctx, sizes.saga_orders, f"turns{n}", txn_producers=n) for n in CONTENDERS}
    try:
        for r in range(sizes.runs):
            for n in CONTENDERS if r % 2 == 0 else reversed(CONTENDERS):
                placed, ended = benches[n].run(orders, RATE)
                waits = [float(ended[o][1] - placed[o]) for o in placed]
                rows[(n, "p50")].runs.append(percentile(waits, 50))
                rows[(n, "p99")].runs.append(percentile(waits, 99))
                say(f"turns round {r + 1}/{sizes.runs}: {n} producer(s) p50 "
                    f"{percentile(waits, 50):.0f} ms p99 {percentile(waits, 99):.0f} ms")
    finally:
        for bench in benches.values():
            bench.close()
    ratio = ratio_row("turns.p50_two_over_one", SECTION,
                      "ratio p50 two producers / one (same round)", rows[(2, "p50")], rows[(1, "p50")])
    return [*rows.values(), ratio]
