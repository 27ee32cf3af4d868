"""The whole saga: ended sagas/s at saturation, then end-to-end latency under open-loop load.

All four services run as one `choreo worker` each. Per round: dump `saga_orders` orders at once
and time them from the first PlaceOrder to the last saga end (saturation); then send at 25, 50
and 75% of that rate for `latency_seconds` each and take p50/p99/p99.9 of end - placed.

The fleet is sized to the load: every hub that has drones in the demo's seed gets enough for its
share of the orders dumped at once, so the saturation figure is the rate of sagas that mostly
complete (the mix is printed beside it) rather than the rate of NO_DRONE compensations.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.config import FAIR, LOAD_SHARES, BenchContext, Sizes
from bench.cpu import measure
from bench.hops import hop_waits, main_path, positions
from bench.open_loop import OrderSender
from bench.report import Row
from choreo.domain import installation
from harness.deploy import Deployment, deploy
from harness.processes import ChildProcess, start_worker
from harness.stack import broker_pids
from harness.watch import EndWatcher
from producers.commands import register_drone
from producers.load_plan import plan_orders
from producers.seed import fleet_size, hubs_with_drones, stock_commands

SECTION = "4 whole saga"
PERCENTILES = (("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9))
WARM_UP_ORDERS = 50
HOPS_AT = 0.25  # the load share whose latency is also broken down hop by hop (bench/hops.py)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


class SagaBench:
    """One deployment of the saga with `instances` workers per service, seeded with ample stock."""

    def __init__(
        self, ctx: BenchContext, orders: int, name: str = "saga", instances: int = 1, **changes: Any
    ) -> None:
        # `changes`: settings of this deployment that differ from the bench's (Settings fields).
        self.dep: Deployment = deploy(ctx.settings(name).with_overrides(**changes))
        s = self.dep.settings
        seed_ids = self._send_seed(orders)
        self.workers: list[ChildProcess] = [
            start_worker(s, service, ctx.log_dir, instance=str(i), log_level="WARNING")
            for service in installation().service_names for i in range(instances)
        ]
        try:
            self.dep.wait_seeded(seed_ids, 120)
        except AssertionError as e:
            raise RuntimeError(f"{e}\n{self.logs()}") from e
        self.watcher = EndWatcher(s)
        self.sender = OrderSender(s, self.dep.codec)
        self._batch = 0
        # Warm-up, not measured: the sender's producer id, the workers' first fetches and caches.
        self.run(WARM_UP_ORDERS, None)
        self.event_topics = [s.topic(svc.own_topic) for svc in list(installation().services)]

    def _send_seed(self, orders: int) -> set[str]:
        """Stock on every shelf, and per hub with drones the larger of its seeded fleet and
        1.5 times its share of `orders` placed at once."""
        at = datetime.now(UTC)
        hubs = hubs_with_drones()
        share = math.ceil(1.5 * orders / len(hubs))
        commands = [
            *stock_commands(at, FAIR.stock_per_shelf),
            *(register_drone(hub, f"drone-{i:04d}", at)
              for hub in hubs for i in range(1, max(fleet_size(hub), share) + 1)),
        ]
        self.dep.send(commands)
        return {c.event_id for c in commands}

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} ---\n{w.tail(10)}" for w in self.workers)

    def run(self, n: int, rate: float | None) -> tuple[dict[str, int], dict[str, tuple[str, int]]]:
        self._batch += 1
        orders = [p.command for p in plan_orders(n, 0.0, 0.0, seed=self._batch, at=datetime.now(UTC))]
        placed = self.sender.send(orders, rate)
        timeout = 120 + n / 20
        try:
            ended = self.watcher.wait_for(placed, timeout)
        except Exception as e:
            raise RuntimeError(f"{e}\n{self.logs()}") from e
        return placed, ended

    def close(self) -> None:
        self.watcher.close()
        for w in self.workers:
            w.stop()


def run_saga(ctx: BenchContext, sizes: Sizes, say: Callable[[str], None]) -> tuple[list[Row], dict[str, int]]:
    """Rows for section 4, and how the saturation sagas ended (completed, compensated...)."""
    saturation = Row("saga.saturation", SECTION, "ended sagas/s at saturation (4 workers)", "sagas/s")
    latency = {
        (share, name): Row(f"saga.latency.{int(share * 100)}.{name}", SECTION,
                           f"end-to-end latency {name} at {int(share * 100)}% load", "ms")
        for share in LOAD_SHARES for name, _ in PERCENTILES
    }
    hop_rows: dict[str, Row] = {}
    at = int(HOPS_AT * 100)
    cpu_rows = {
        "broker": Row(f"saga.cpu.{at}.broker", SECTION,
                      f"CPU of the Kafka broker at {at}% load", "% of a core"),
        "workers": Row(f"saga.cpu.{at}.workers", SECTION,
                       f"CPU of the 4 workers together at {at}% load", "% of a core"),
        "machine": Row(f"saga.cpu.{at}.machine", SECTION,
                       f"machine busy at {at}% load (all cores)", "%"),
    }
    saga_field = installation().envelope.saga_field
    outcomes: Counter[str] = Counter()
    bench = SagaBench(ctx, sizes.saga_orders)
    brokers = broker_pids(ctx.endpoints)
    try:
        for r in range(sizes.runs):
            placed, ended = bench.run(sizes.saga_orders, None)
            span_ms = max(ms for _, ms in ended.values()) - min(placed.values())
            rate = len(ended) / max(span_ms, 1) * 1000
            saturation.runs.append(rate)
            outcomes.update(name for name, _ in ended.values())
            say(f"saga round {r + 1}/{sizes.runs}: saturation {rate:,.1f} sagas/s")
            for share in LOAD_SHARES:
                n = max(20, round(rate * share * sizes.latency_seconds))
                start = positions(bench.dep.settings, bench.event_topics)
                with measure({"broker": brokers, "workers": [w.pid for w in bench.workers]}) as used:
                    placed, ended = bench.run(n, rate * share)
                waits = [float(ended[o][1] - placed[o]) for o in placed]
                for name, pct in PERCENTILES:
                    latency[(share, name)].runs.append(percentile(waits, pct))
                if share == HOPS_AT:
                    # Who held the cores meanwhile: on a small machine the latency is a queue
                    # for them. No broker row for a stack reached only by its address.
                    if brokers:
                        cpu_rows["broker"].runs.append(used.groups["broker"])
                    cpu_rows["workers"].runs.append(used.groups["workers"])
                    if used.machine_busy is not None:
                        cpu_rows["machine"].runs.append(used.machine_busy)
                    hops = hop_waits(bench.dep.settings, start, saga_field, placed)
                    for hop in main_path(hops, len(placed)):
                        hop_rows.setdefault(hop, Row(
                            f"saga.hop.{int(share * 100)}.{hop}", SECTION,
                            f"hop {hop} p50 at {int(share * 100)}% load", "ms",
                        )).runs.append(percentile(hops[hop], 50))
                say(f"saga round {r + 1}/{sizes.runs}: {share:.0%} load ({rate * share:,.1f}/s, {n} orders) "
                    f"p50 {percentile(waits, 50):.0f} ms p99 {percentile(waits, 99):.0f} ms")
    finally:
        bench.close()
    saturation.measure += f"; {mix(outcomes)}"
    measured_cpu = [row for row in cpu_rows.values() if row.runs]
    return [saturation, *latency.values(), *hop_rows.values(), *measured_cpu], dict(outcomes)


def mix(outcomes: Counter[str]) -> str:
    """How the sagas ended, largest share first: `92% OrderCompleted, 8% ...`."""
    total = sum(outcomes.values()) or 1
    return ", ".join(f"{100 * n / total:.0f}% {name}" for name, n in outcomes.most_common())
