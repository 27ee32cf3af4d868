"""`choreo stack up|down|status|logs|fetch|restart-registry`: the local Kafka + registry stack."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.table import Table

from choreo.cli.arguments import check_ports, port_option
from choreo.cli.errors import fail
from choreo.cli.markup import plain
from choreo.exceptions import ChoreoError, ConfigurationError
from choreo.settings import load_settings, split_host_port
from choreo.stack import lifecycle
from choreo.stack.discovery import layout_for, remember_started
from choreo.stack.errors import StackError
from choreo.stack.jars import ensure_jars, jars_present
from choreo.stack.layout import StackLayout

app = typer.Typer(help="Run a local Kafka (KRaft) and schema registry from Maven jars.",
                  no_args_is_help=True)
out = Console()
err = Console(stderr=True)

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="State folder (pids, logs, data); default CHOREO_STACK_DIR, else "
                 ".stack here, else the folder of the stack last started"),
]


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Stack errors become one red message and exit code 1, never a traceback.

    Settings errors (a bad variable or config file) read like every other command's: `error: ...`.
    """
    try:
        yield
    except KafkaException as error:
        err.print(f"[red]Kafka did not answer as expected: {plain(error)}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    except StackError as error:
        err.print(f"[red]{plain(error)}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ChoreoError as error:
        fail(str(error))


def _layout(state_dir: Path | None, follow_last: bool = True) -> StackLayout:
    layout = layout_for(load_settings(), state_dir, follow_last)
    _require_folder(layout.state_dir, "--dir" if state_dir else "CHOREO_STACK_DIR")
    return layout


def _require_folder(path: Path, source: str) -> None:
    """A state folder that is (or would have to be made inside) a file is one sentence, not the
    NotADirectoryError of the first file written there."""
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = "is a file" if part == path else f"is inside {part}, which is a file"
                raise ConfigurationError(f"the stack folder {path} ({source}) {where}; choose a folder")
            return


def _default_ports() -> tuple[int, int]:
    """Ports from KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL, so the stack matches settings."""
    settings = load_settings()
    _host, first_port = split_host_port(settings.bootstrap_servers.split(",")[0])
    kafka_port = first_port or lifecycle.DEFAULT_KAFKA_PORT
    registry_port = urlparse(settings.schema_registry_url).port or lifecycle.DEFAULT_REGISTRY_PORT
    return kafka_port, registry_port


@app.command()
def up(
    brokers: Annotated[int | None, typer.Option(help="1 node, or 3 for fault tests")] = None,
    kafka_port: Annotated[int | None, typer.Option(
        help="Port of node 1 (others +1, +2)", callback=port_option("--kafka-port"))] = None,
    registry_port: Annotated[int | None, typer.Option(
        help="Schema registry HTTP port", callback=port_option("--registry-port"))] = None,
    state_dir: DirOption = None,
) -> None:
    """Start Kafka and the schema registry (reuses a running stack) and wait until both answer."""
    with _friendly_errors():
        layout = _layout(state_dir, follow_last=False)  # here (or --dir), never a stack elsewhere
        existing = lifecycle.stack_info.load(layout)
        port_source = "--kafka-port"
        if existing is None and (kafka_port is None or registry_port is None):
            # First start: follow the configured endpoints' ports.
            default_kafka, default_registry = _default_ports()
            port_source = "--kafka-port" if kafka_port else "the port of KAFKA_BOOTSTRAP_SERVERS"
            kafka_port = kafka_port or default_kafka
            registry_port = registry_port or default_registry
        nodes = brokers or (existing.brokers if existing else 1)
        if kafka_port is not None and nodes in (1, 3):  # lifecycle refuses other counts
            check_ports(kafka_port, nodes, port_source)  # one port per node: P, P+1, P+2
        err.print(f"Starting the stack in {plain(layout.state_dir)} ...")
        result = lifecycle.up(layout, brokers, kafka_port, registry_port)
        remember_started(layout)  # found from any folder from now on, --dir or not
        info = result.info
        verb = "Started " + ", ".join(result.started) if result.started else "Already running"
        out.print(f"{verb} in {result.seconds:.1f}s.")
        out.print(f"  Kafka:           {info.bootstrap_servers}  ({info.brokers} node(s))")
        out.print(f"  Schema registry: {info.schema_registry_url}")
        out.print(f"  Stop with:       choreo stack down{plain(_dir_flag(state_dir))}")


def _dir_flag(state_dir: Path | None) -> str:
    return f" --dir {state_dir}" if state_dir else ""


@app.command()
def down(
    state_dir: DirOption = None,
    purge: Annotated[bool, typer.Option(help="Also delete the data, logs and stack file")] = False,
) -> None:
    """Stop the processes `up` started (SIGTERM, then SIGKILL after 30 s)."""
    with _friendly_errors():
        layout = _layout(state_dir, follow_last=not purge)  # --purge deletes only what it is shown
        stopped = lifecycle.down(layout, purge=purge)
        out.print("Stopped " + ", ".join(stopped) + "." if stopped else "Nothing was running.")


@app.command()
def status(state_dir: DirOption = None) -> None:
    """Show what runs where; exit code 1 unless every component runs."""
    with _friendly_errors():
        layout = _layout(state_dir)
        info, rows = lifecycle.status(layout)
        if info is None:
            out.print(f"No stack in {plain(layout.state_dir)}. Start one with `choreo stack up`.")
            raise typer.Exit(1)
        table = Table(title=plain(f"stack in {layout.state_dir} (Kafka {info.kafka_version}, "
                                  f"Apicurio {info.apicurio_version})"))
        for column in ("component", "state", "pid", "address"):
            table.add_column(column, overflow="fold")
        for row in rows:
            state = "[green]running[/green]" if row.pid else "[red]stopped[/red]"
            table.add_row(plain(row.name), state, str(row.pid or "-"), plain(row.address))
        out.print(table)
        out.print(f"logs: {plain(layout.logs_dir)} (choreo stack logs <component>)", highlight=False)
        out.print(f"KAFKA_BOOTSTRAP_SERVERS={info.bootstrap_servers}", highlight=False)
        out.print(f"SCHEMA_REGISTRY_URL={info.schema_registry_url}", highlight=False)
        if not all(row.pid for row in rows):
            raise typer.Exit(1)


@app.command()
def logs(
    component: Annotated[str, typer.Argument(help="kafka-1, kafka-2, kafka-3 or registry")] = (
        "kafka-1"
    ),
    lines: Annotated[int, typer.Option("-n", "--lines")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
    state_dir: DirOption = None,
) -> None:
    """Print the last lines of a component's log (and follow it with -f)."""
    with _friendly_errors():
        layout = _layout(state_dir)
        path = (
            layout.log_file("registry")
            if component == "registry"
            else layout.logs_dir / component / "server.log"
        )
        if not path.is_file():
            raise StackError(f"No log at {path}; is `{component}` a component of this stack?")
        with open(path, errors="replace") as fh:
            for line in fh.readlines()[-lines:]:
                sys.stdout.write(line)
            sys.stdout.flush()
            if follow:
                _follow(fh.readline)


def _follow(readline: Callable[[], str]) -> None:
    try:
        while True:
            line = readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.25)  # tail -f style polling for a person watching, not a sync
    except KeyboardInterrupt:
        pass


@app.command()
def fetch(state_dir: DirOption = None) -> None:
    """Download the stack's jars with Maven into the user's cache (CHOREO_JARS_DIR, default
    ~/.cache/choreo/stack-jars), shared by every folder; nothing is downloaded when present."""
    with _friendly_errors():
        layout = _layout(state_dir)
        begin = time.monotonic()
        if not jars_present(layout):
            err.print("Downloading the stack jars with Maven (about 240 MB on an empty Maven "
                      "cache) ...")
        fetched = ensure_jars(layout)
        took = time.monotonic() - begin
        where = layout.jars_dir
        out.print(f"Fetched the stack jars into {plain(where)} in {took:.0f}s." if fetched
                  else f"The stack jars are already in {plain(where)}.")


@app.command()
def smoke(state_dir: DirOption = None) -> None:
    """Produce Avro records through the registry and read them back (checks a running stack)."""
    from choreo.stack.discovery import resolve_settings
    from choreo.stack.smoke import run_smoke

    with _friendly_errors():
        settings = resolve_settings(load_settings(), state_dir)
        result = run_smoke(settings.bootstrap_servers, settings.schema_registry_url)
        out.print(
            f"Smoke check passed in {result.seconds:.1f}s: {result.records} Avro records on "
            f"{result.topic} (subject {result.subject}, schema id {result.schema_id}) were "
            "produced and read back, decoded with the schema fetched from the registry.",
            highlight=False,
        )


@app.command("restart-registry")
def restart_registry(state_dir: DirOption = None) -> None:
    """Restart only the schema registry (same port, same data)."""
    with _friendly_errors():
        seconds = lifecycle.restart_registry(_layout(state_dir))
        out.print(f"Schema registry restarted and answering after {seconds:.1f}s.")
