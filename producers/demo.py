"""`choreo demo`: the whole saga on the running stack, live, ending with outcomes and the audit.

Creates the topics, registers the schemas, seeds the hubs, runs the four services as supervised
worker processes (their logs go to a file), places a few hundred orders (some out of stock, some
to unknown addresses, some at a hub with no drones), shows the sagas moving, and prints the
outcome table, the audit and what to try next.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from choreo import bootstrap
from choreo.cli.markup import plain
from choreo.domain import installation
from choreo.edge import CommandSender
from choreo.provision import provision
from choreo.runtime.supervisor import Supervisor, plan_children
from choreo.serde.registration import COMPATIBILITY
from choreo.settings import Settings
from choreo.tracing.config import edge_tracing
from consumers.reference import hubs
from producers import seed
from producers.load_plan import plan_orders
from producers.report import audit_table, outcome_table, saga_events
from producers.saga_watch import SagaWatcher

STAGES = (
    ("placed", ("OrderPlaced",)),
    ("packed", ("PackagePrepared",)),
    ("drone assigned", ("DroneAssigned",)),
    ("delivered", ("DeliveryCompleted",)),
    ("completed", ("OrderCompleted",)),
    ("failed", ("OrderFailed",)),
    ("stock released", ("StockReleased",)),
    ("drone released", ("DroneReleased",)),
    ("compensated", ("OrderCompensated",)),
)


def prepare(settings: Settings, console: Console) -> None:
    done = provision(settings)
    console.print(
        f"topics: {len(done.created)} created; schemas: {len(done.registered)} subjects registered "
        f"({COMPATIBILITY})"
    )


def _progress(watcher: SagaWatcher, ours: set[str], started: float) -> Table:
    done = len(ours & watcher.ended.keys())
    table = Table(title=f"sagas ended: {done}/{len(ours)}   ({time.monotonic() - started:.1f}s)")
    table.add_column("stage")
    table.add_column("events", justify="right")
    for label, names in STAGES:
        table.add_row(label, str(sum(watcher.counts[n] for n in names)))
    return table


def run_demo(
    settings: Settings, orders: int, rate: float, log_path: Path, console: Console,
    timeout_s: float = 300.0,
) -> bool:
    prepare(settings, console)
    codec = bootstrap.build_codec(settings)
    sender = CommandSender(settings, codec, edge_tracing())
    now = datetime.now(UTC)
    seed_commands = [*seed.stock_commands(now), *seed.fleet_commands(now)]
    sender.send_all(seed_commands)

    log_file = open(log_path, "a")  # noqa: SIM115 - closed below, after the workers stop
    # One instance per service; with CHOREO_METRICS_PORT=P, ports P, P+1, ... in service order.
    children = plan_children(list(installation().service_names), 1, settings.metrics_port)
    supervisor = Supervisor(children, out=log_file, log_format=settings.log_format)
    sup_thread = threading.Thread(target=supervisor.run, daemon=True)
    sup_thread.start()
    console.print(f"services running (logs: {plain(log_path)})")
    watcher = SagaWatcher(settings, codec)
    # Stock and drones travel on other topics than orders, which are not ordered against them:
    # start ordering only once the services have applied the seed.
    if not watcher.wait_answered({c.event_id for c in seed_commands}, timeout_s):
        console.print("[red]the services did not apply the seed in time; see the log[/]")
    console.print(f"seeded {len(seed.stock_commands(now))} shelves and "
                  f"{len(seed.fleet_commands(now))} drones over {len(hubs())} hubs")

    plan = list(plan_orders(orders, 0.1, 0.1, seed=int(now.timestamp()), at=now, no_drone_share=0.05))
    ours = {p.command.order_id for p in plan}
    started = time.monotonic()
    try:
        with Live(_progress(watcher, ours, started), console=console, refresh_per_second=4) as live:
            for i, planned in enumerate(plan):
                # Open-loop pacing, as a real stream of customers would arrive.
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    watcher.poll(min(delay, 0.2))
                sender.send(planned.command)
                live.update(_progress(watcher, ours, started))
            sender.flush()
            deadline = time.monotonic() + timeout_s
            while not ours <= watcher.ended.keys() and time.monotonic() < deadline:
                watcher.poll(0.25)
                live.update(_progress(watcher, ours, started))
        elapsed = time.monotonic() - started
        finished = len(ours & watcher.ended.keys())
    finally:
        watcher.close()
        supervisor.stop()
        sup_thread.join(90)
        log_file.close()

    console.print(f"\n{finished} of {len(ours)} sagas ended in {elapsed:.1f}s "
                  f"({finished / elapsed:.0f} sagas/s at an offered {rate:.0f} orders/s)")
    events = saga_events(settings)
    console.print(outcome_table([e for e in events if getattr(e, "order_id", None) in ours]))
    table, report = audit_table(events, in_flight_ok=False)
    console.print(table)
    _try_next(console, settings, events, ours)
    return finished == len(ours) and report.ok


def _first(events: list[object], type_name: str, ours: set[str]) -> Any:
    return next(
        (e for e in events
         if type(e).__name__ == type_name and getattr(e, "order_id", None) in ours),
        None,
    )


def _choreo_command() -> str:
    """How the user reaches this `choreo`: its bare name when that is what PATH finds, else its
    path (a checkout's .venv/bin/choreo that is not on PATH, say)."""
    running = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    found = shutil.which("choreo")
    if running is None or running.name != "choreo" or (found and Path(found).resolve() == running):
        return "choreo"
    return shlex.quote(os.path.relpath(running) if running.is_relative_to(Path.cwd()) else str(running))


def _try_next(console: Console, settings: Settings, events: list[object], ours: set[str]) -> None:
    completed = _first(events, "OrderCompleted", ours)
    failed = _first(events, "OrderFailed", ours)
    env = f"CHOREO_TOPIC_PREFIX={settings.topic_prefix} " if settings.topic_prefix else ""
    c = f"{env}{_choreo_command()}"
    lines = []
    if completed is not None:
        lines.append(f"{c} trace {completed.order_id}   # a completed saga, step by step")
    if failed is not None:
        lines.append(
            f"{c} trace {failed.order_id}   "
            f"# a saga that failed ({failed.reason}) and its compensation"
        )
    lines += [
        f"{c} replay orders --type OrderFailed --json | head",
        f"{c} audit",
        f"{c} rebuild packaging --verify",
        f"{c} kafka consumer-groups --describe --group {settings.group('packaging')}",
        f"{c} kafka console-consumer --topic {settings.topic('orders')} --from-beginning "
        "--max-messages 5 --formatter-property print.key=true --formatter-property print.headers=true",
        f"{c} run      # the services again; Ctrl-C to stop",
        f"{_choreo_command()} stack down     # stop the local stack",
    ]
    console.print("\n[bold]Try next[/]")
    for line in lines:  # order ids and reasons come from the log: printed as written
        console.print(f"  {plain(line)}", highlight=False, soft_wrap=True)
