"""The saga's edge commands for `choreo`: order, stock, fleet, seed, load, audit.

Mounted by choreo's CLI because the drone-delivery domain names it (`Domain(cli=
"producers.cli:register")`, consumers/domain.py), so the runtime itself never imports the domain.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.table import Table

from choreo import bootstrap
from choreo.cli.context import cli_settings
from choreo.cli.errors import error_sentence, fail, one_sentence_errors
from choreo.cli.markup import plain
from choreo.edge import CommandSender
from choreo.exceptions import ChoreoError
from choreo.settings import Settings
from choreo.tracing.config import edge_tracing
from consumers.ids import id_problem
from consumers.orders.events import EXPRESS, STANDARD
from consumers.reference import MAX_DEADLINE_S, hubs
from producers import commands, seed
from producers.audit_log import Progress, read_audit_log
from producers.load_plan import plan_orders
from producers.report import audit_table, refusals_table
from producers.report import saga_events as saga_events  # re-exported: tests read the log with it


class Priority(StrEnum):
    """--priority's choices: the symbols of the schemas' enum delivery.orders.Priority."""

    STANDARD = STANDARD
    EXPRESS = EXPRESS

order_app = typer.Typer(help="Place or cancel orders.", no_args_is_help=True)
stock_app = typer.Typer(help="Put stock on a hub's shelves.", no_args_is_help=True)
fleet_app = typer.Typer(help="Register drones at a hub.", no_args_is_help=True)
console = Console()


def _sender() -> tuple[Settings, CommandSender]:
    settings = cli_settings()
    return settings, CommandSender(settings, bootstrap.build_codec(settings), edge_tracing())


def _known_hub(hub: str) -> None:
    # The orders service rejects unknown hubs with a reason; stock and fleet commands would be
    # rejected by their service too, but a typo at the prompt deserves an answer right away.
    if hub not in hubs():
        fail(f"unknown hub {hub!r}; known hubs: {', '.join(sorted(hubs()))}")


def _valid_ids(**ids: str | None) -> None:
    # The services refuse such ids with a reason too (consumers/ids.py); at the prompt, a usage
    # error (exit 2) before anything is produced.
    for field, value in ids.items():
        problem = None if value is None else id_problem(field, value)
        if problem is not None:
            fail(f"{problem}; an id is printable text that is not blank ('/' is fine)", code=2)


@order_app.command("place")
@one_sentence_errors
def order_place(
    hub: str = typer.Option(..., "--hub", help="Hub that serves the order (the partition key)."),
    sku: str = typer.Option(..., "--sku", help="SKU, e.g. SKU-0001."),
    quantity: int = typer.Option(1, "--quantity", "-q", help="1 to 100."),
    address: str = typer.Option(..., "--address", help="Delivery address."),
    order_id: str = typer.Option(None, "--order-id", help="Saga id (default: a new uuid)."),
    deadline_s: int = typer.Option(
        None, "--deadline-s", min=1, max=MAX_DEADLINE_S,
        help="Seconds from now by which the saga must end: past it, it fails with DEADLINE unless "
        "delivery has already decided (default: the orders service's CHOREO_ORDER_DEADLINE_S, 900).",
    ),
    priority: Priority = typer.Option(
        Priority.STANDARD, "--priority", case_sensitive=False,
        help="EXPRESS: the hub's next free drone that can carry it goes to it before any STANDARD "
        "package waiting there.",
    ),
) -> None:
    """Send a PlaceOrder command; print the order id to trace it with.

    Example: choreo order place --hub hub-north --sku SKU-0001 --address "1 Harbour Street, Northport"
    """
    _valid_ids(hub=hub, order_id=order_id)
    _settings, sender = _sender()
    now = datetime.now(UTC)
    deadline = None if deadline_s is None else now + timedelta(seconds=deadline_s)
    cmd = commands.place_order(hub, sku, quantity, address, now, order_id=order_id, deadline=deadline,
                               priority=priority.value)
    sender.send_all([cmd])
    typer.echo(cmd.order_id)


@order_app.command("cancel")
@one_sentence_errors
def order_cancel(
    order_id: str = typer.Argument(..., help="The order to cancel."),
    hub: str = typer.Option(..., "--hub", help="The hub the order was placed at."),
) -> None:
    """Ask to cancel an order; too late once delivery has decided.

    Example: choreo order cancel 5b0c... --hub hub-north
    """
    _valid_ids(hub=hub, order_id=order_id)
    _settings, sender = _sender()
    sender.send_all([commands.cancel_order(order_id, hub, datetime.now(UTC))])
    typer.echo(f"cancel requested for {order_id}")


@stock_app.command("add")
@one_sentence_errors
def stock_add(
    hub: str = typer.Option(..., "--hub"),
    sku: str = typer.Option(..., "--sku"),
    quantity: int = typer.Option(..., "--quantity", "-q", min=1),
) -> None:
    """Send an AddStock command.

    Example: choreo stock add --hub hub-north --sku SKU-0001 --quantity 50
    """
    _known_hub(hub)
    _settings, sender = _sender()
    sender.send_all([commands.add_stock(hub, sku, quantity, datetime.now(UTC))])
    typer.echo(f"{hub}: +{quantity} {sku}")


@fleet_app.command("add")
@one_sentence_errors
def fleet_add(
    hub: str = typer.Option(..., "--hub"),
    drone_id: str = typer.Option(..., "--drone", help="Drone id, e.g. drone-09."),
    max_payload: int = typer.Option(
        0, "--max-payload", min=0, help="The heaviest package it can carry, in grams (0: no limit).",
    ),
) -> None:
    """Send a RegisterDrone command.

    Example: choreo fleet add --hub hub-east --drone drone-02 --max-payload 2000
    """
    _known_hub(hub)
    _valid_ids(drone_id=drone_id)
    _settings, sender = _sender()
    sender.send_all([commands.register_drone(hub, drone_id, datetime.now(UTC),
                                             max_payload_grams=max_payload)])
    typer.echo(f"{hub}: registered {drone_id}")


@one_sentence_errors
def seed_cmd(
    stock: int = typer.Option(seed.STOCK_PER_SKU, "--stock", help="Items per stocked SKU."),
) -> None:
    """Seed every hub with stock and drones (adds to what is there).

    Example: choreo seed --stock 200
    """
    _settings, sender = _sender()
    now = datetime.now(UTC)
    n = sender.send_all(seed.stock_commands(now, stock)) + sender.send_all(seed.fleet_commands(now))
    typer.echo(f"sent {n} seed commands ({len(seed.fleet_commands(now))} drones)")


@one_sentence_errors
def load(
    orders: int = typer.Option(100, "--orders", "-n", min=1, help="How many orders to place."),
    rate: float = typer.Option(50.0, "--rate", "-r", min=0.1, help="Orders per second."),
    out_of_stock: float = typer.Option(0.1, "--out-of-stock", help="Share that runs out of stock."),
    unknown_address: float = typer.Option(
        0.1, "--unknown-address", help="Share sent to addresses no hub knows."
    ),
    no_drone: float = typer.Option(0.05, "--no-drone", help="Share sent to a hub with no drones."),
    seed_value: int = typer.Option(7, "--seed", help="Same seed, same orders."),
) -> None:
    """Place ORDERS orders at RATE per second, with chosen shares of each designed failure.

    Example: choreo load --orders 500 --rate 100 --out-of-stock 0.1 --unknown-address 0.1
    """
    try:
        plan = list(plan_orders(orders, out_of_stock, unknown_address, seed_value,
                                datetime.now(UTC), no_drone_share=no_drone))
    except ValueError as e:
        fail(str(e))
        return
    _settings, sender = _sender()
    from rich.progress import Progress

    started = time.monotonic()
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("placing orders", total=len(plan))
        for i, planned in enumerate(plan):
            # Open-loop pacing: order i leaves at start + i/rate, however slow the broker is.
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sender.send(planned.command)
            progress.advance(task)
        sender.flush()
    elapsed = time.monotonic() - started
    table = Table(title=f"{len(plan)} orders placed in {elapsed:.1f}s ({len(plan) / elapsed:.0f}/s)")
    table.add_column("designed to end as")
    table.add_column("orders", justify="right")
    intents: dict[str, int] = {}
    for p in plan:
        intents[p.intent] = intents.get(p.intent, 0) + 1
    for intent, n in sorted(intents.items()):
        table.add_row(intent, str(n))
    console.print(table)


@one_sentence_errors
def audit_cmd(
    allow_in_flight: bool = typer.Option(
        False, "--allow-in-flight", help="Do not count sagas that have not ended yet as violations."
    ),
    show: int = typer.Option(5, "--show", help="Violations to print per invariant."),
) -> None:
    """Check the business invariants from the log alone; exit 1 on any violation, 2 when the
    log could not be read (registry or Kafka not answering, or a record on a service's own topic
    that no service dead-lettered and the audit cannot decode). Dead letters and misrouted
    records are reported, not violations. Progress goes to stderr every few seconds.

    Example: choreo audit --allow-in-flight
    """
    settings = cli_settings()
    try:
        log = read_audit_log(settings, Progress(lambda line: typer.echo(line, err=True)))
        log.require_complete()
    except (ChoreoError, KafkaException) as e:
        fail(error_sentence(e), code=2)  # 2, not 1: nothing was checked, nothing violated
    table, report = audit_table(log.events, allow_in_flight)
    console.print(table)
    for inv in report.invariants:
        for v in inv.violations[:show]:
            console.print(f"  [red]{plain(inv.name)}[/]: {plain(v)}")  # v quotes the log
    if log.refusals.any:
        console.print(refusals_table(log.refusals))
        for example in log.refusals.misrouted_examples[:show]:
            console.print(f"  misrouted: {plain(example)}")
    if not report.ok:
        raise typer.Exit(1)


@one_sentence_errors
def demo(
    orders: int = typer.Option(300, "--orders", "-n", min=1, help="How many orders to place."),
    rate: float = typer.Option(60.0, "--rate", "-r", min=1, help="Orders per second."),
    log_file: Path = typer.Option(Path("demo-workers.log"), "--log", help="The services' log."),
) -> None:
    """Run the whole saga on the running stack: seed, services, orders, live view, audit.

    Example: choreo demo --orders 300 --rate 60
    """
    from producers.demo import run_demo

    if not run_demo(cli_settings(), orders, rate, log_file, console):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Mount the edge commands on the `choreo` app."""
    app.add_typer(order_app, name="order")
    app.add_typer(stock_app, name="stock")
    app.add_typer(fleet_app, name="fleet")
    app.command("seed")(seed_cmd)
    app.command("load")(load)
    app.command("audit")(audit_cmd)
    app.command("demo")(demo)
