"""Bring the stack up (idempotently), restart the registry, report status, and take it down."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from choreo.stack import info as stack_info
from choreo.stack import kafka_node, processes, registry
from choreo.stack.errors import StackError, StackStartError
from choreo.stack.info import StackInfo
from choreo.stack.jars import ensure_jars
from choreo.stack.java import KAFKA_MIN_JAVA, REGISTRY_MIN_JAVA, find_java
from choreo.stack.layout import StackLayout
from choreo.stack.ports import free_ports, port_is_free
from choreo.stack.readiness import kafka_ready, registry_ready, wait_until

DEFAULT_KAFKA_PORT = 9092
DEFAULT_REGISTRY_PORT = 8081
START_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True)
class UpResult:
    """What `up` did: the stack's info, which components it started, and how long it took."""

    info: StackInfo
    started: list[str]
    seconds: float


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    address: str
    log: str


def running_components(layout: StackLayout, info: StackInfo | None) -> dict[str, int]:
    if info is None:
        return {}
    return {c: pid for c in info.components() if (pid := processes.read_pid(layout, c))}


def _plan(
    layout: StackLayout,
    existing: StackInfo | None,
    brokers: int | None,
    kafka_port: int | None,
    registry_port: int | None,
) -> StackInfo:
    """The ports and ids to start with, reusing what the state folder was formatted with."""
    formatted = existing is not None and any(
        kafka_node.is_formatted(layout, n) for n in existing.node_ids
    )
    n = brokers or (existing.brokers if existing else 1)
    if n not in (1, 3):
        raise StackError("--brokers must be 1 or 3.")
    if formatted and existing is not None and existing.brokers != n:
        raise StackError(
            f"The data in {layout.state_dir} belongs to a {existing.brokers}-broker cluster; "
            f"use another --dir for {n} brokers, or `choreo stack down --purge` first."
        )
    if kafka_port is not None:
        kafka_ports = [kafka_port + i for i in range(n)]
    elif existing is not None and len(existing.kafka_ports) == n:
        kafka_ports = existing.kafka_ports
    else:
        kafka_ports = [DEFAULT_KAFKA_PORT + i for i in range(n)]
    if registry_port is None:
        registry_port = existing.registry_port if existing else DEFAULT_REGISTRY_PORT
    if formatted and existing is not None:
        # The KRaft quorum (with --standalone) stores the controller endpoint in its log, so a
        # formatted node keeps its controller port for life.
        controller_ports, cluster_id = existing.controller_ports, existing.cluster_id
    else:
        controller_ports = free_ports(n, avoid={*kafka_ports, registry_port})
        cluster_id = kafka_node.new_cluster_id()
    management_port = existing.management_port if existing else 0
    taken = {*kafka_ports, *controller_ports, registry_port}
    if not management_port or management_port in taken or not port_is_free(management_port):
        (management_port,) = free_ports(1, avoid=taken)
    if len({*kafka_ports, *controller_ports, registry_port}) != 2 * n + 1:
        raise StackError("The Kafka, controller and registry ports must all differ.")
    busy = [
        (what, port)
        for what, ports in (
            ("Kafka broker", kafka_ports),
            ("KRaft controller", controller_ports),
            ("registry", [registry_port]),
        )
        for port in ports
        if not port_is_free(port)
    ]
    if busy:
        what, port = busy[0]
        raise StackError(
            f"Port {port} for the {what} is already in use on 127.0.0.1: stop what holds it or "
            "choose other ports (--kafka-port / --registry-port)."
        )
    return StackInfo(
        brokers=n,
        kafka_ports=kafka_ports,
        controller_ports=controller_ports,
        registry_port=registry_port,
        management_port=management_port,
        cluster_id=cluster_id,
    )


def _log_tail(layout: StackLayout, component: str, lines: int = 30) -> str:
    candidates = [layout.logs_dir / component / "server.log", layout.log_file(component)]
    text = ""
    for path in candidates:
        if path.is_file():
            text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
    return text


def _exit_reason(layout: StackLayout, components: list[str], pids: dict[str, int]) -> Callable[
    [], str | None
]:
    def check() -> str | None:
        for component in components:
            pid = pids.get(component)
            if pid is not None and processes.exited(layout, component, pid):
                return (
                    f"{component} exited; see {layout.logs_dir}. Last lines:\n"
                    f"{_log_tail(layout, component)}"
                )
        return None

    return check


def up(
    layout: StackLayout,
    brokers: int | None = None,
    kafka_port: int | None = None,
    registry_port: int | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> UpResult:
    """Start whatever part of the stack is not running, then wait until all of it answers."""
    begin = time.monotonic()
    # Prerequisites first: a missing Java is the one sentence a new user must see.
    java_kafka = find_java(KAFKA_MIN_JAVA, "Kafka")
    java_registry = find_java(REGISTRY_MIN_JAVA, "the schema registry (Apicurio Registry 3)")
    existing = stack_info.load(layout)
    running = running_components(layout, existing)
    if running and existing is not None:
        wanted_ports = [kafka_port + i for i in range(existing.brokers)] if kafka_port else None
        if (brokers and brokers != existing.brokers) or (
            wanted_ports and wanted_ports != existing.kafka_ports
        ) or (registry_port and registry_port != existing.registry_port):
            raise StackError(
                f"A stack is already running from {layout.state_dir} "
                f"(Kafka {existing.bootstrap_servers}, registry {existing.registry_root}); "
                "stop it with `choreo stack down` first, or use another --dir."
            )
        info = existing
    else:
        info = _plan(layout, existing, brokers, kafka_port, registry_port)
    ensure_jars(layout)
    kafka = kafka_node.kafka_version(layout)
    if any(f"kafka-{n}" not in running for n in info.node_ids):
        _refuse_downgrade(layout, existing, kafka)
    info = StackInfo(
        **{
            **info.__dict__,
            "kafka_version": _written_by(layout, existing, kafka),
            "apicurio_version": registry.apicurio_version(layout),
            "java": {"kafka": str(java_kafka.path), "registry": str(java_registry.path)},
        }
    )
    layout.ensure_dirs()
    stack_info.save(layout, info)

    to_start = [c for c in info.components() if c not in running]
    unformatted = [
        n for n in info.node_ids
        if f"kafka-{n}" in to_start and not kafka_node.is_formatted(layout, n)
    ]
    if unformatted:
        # Each format is its own short JVM; run them side by side.
        with ThreadPoolExecutor(max_workers=len(unformatted)) as pool:
            list(
                pool.map(
                    lambda n: kafka_node.format_storage(layout, info, java_kafka, n), unformatted
                )
            )
    pids = dict(running)
    for n in info.node_ids:
        component = f"kafka-{n}"
        if component in to_start:
            cmd = kafka_node.node_command(layout, info, java_kafka, n)
            pids[component] = processes.spawn(
                layout, component, cmd, layout.logs_dir / component / "stdout.log"
            )
    if "registry" in to_start:
        cmd = registry.registry_command(layout, info, java_registry)
        pids["registry"] = processes.spawn(layout, "registry", cmd, layout.log_file("registry"))

    deadline = time.monotonic() + timeout
    try:
        wait_until(
            "Kafka",
            lambda: kafka_ready(info),
            deadline,
            _exit_reason(layout, [f"kafka-{n}" for n in info.node_ids], pids),
        )
        wait_until(
            "The schema registry",
            lambda: registry_ready(info),
            deadline,
            _exit_reason(layout, ["registry"], pids),
        )
    except StackStartError:
        # Leave nothing half-started behind; logs stay for reading.
        processes.stop(layout, to_start, grace_seconds=10)
        raise
    return UpResult(
        info=info, started=to_start, seconds=time.monotonic() - begin
    )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def _written_by(layout: StackLayout, existing: StackInfo | None, kafka: str) -> str:
    """The Kafka version the stack file records: the newest that has written its data, so a
    stack started while an older one still ran never hides data a newer Kafka wrote."""
    if existing is None or not existing.kafka_version or existing.kafka_version == "unknown":
        return kafka
    if not any(kafka_node.is_formatted(layout, n) for n in existing.node_ids):
        return kafka
    return max(kafka, existing.kafka_version, key=_version)


def _refuse_downgrade(layout: StackLayout, existing: StackInfo | None, kafka: str) -> None:
    """Kafka cannot read metadata written by a newer version: say so before it fails to start."""
    if existing is None or not existing.kafka_version or existing.kafka_version == "unknown":
        return
    if not any(kafka_node.is_formatted(layout, n) for n in existing.node_ids):
        return
    if _version(kafka) < _version(existing.kafka_version):
        raise StackError(
            f"The data in {layout.state_dir} was written by Kafka {existing.kafka_version}, and "
            f"this version of choreo runs Kafka {kafka}, which cannot read it; run `choreo stack "
            "down --purge` (it deletes the topics) or use another --dir."
        )


def restart_registry(layout: StackLayout, timeout: float = START_TIMEOUT_SECONDS) -> float:
    """Stop and start only the registry (same ports, same data); returns seconds until ready."""
    info = stack_info.load(layout)
    if info is None:
        raise StackError(f"No stack in {layout.state_dir}; run `choreo stack up` first.")
    begin = time.monotonic()
    processes.stop(layout, ["registry"])
    java = find_java(REGISTRY_MIN_JAVA, "the schema registry (Apicurio Registry 3)")
    pid = processes.spawn(
        layout, "registry", registry.registry_command(layout, info, java),
        layout.log_file("registry"),
    )
    wait_until(
        "The schema registry",
        lambda: registry_ready(info),
        time.monotonic() + timeout,
        _exit_reason(layout, ["registry"], {"registry": pid}),
    )
    return time.monotonic() - begin


def down(layout: StackLayout, purge: bool = False, grace_seconds: float = 30.0) -> list[str]:
    """Stop the processes this state folder started (by pid); returns the ones that ran."""
    info = stack_info.load(layout)
    components = info.components() if info else []
    # Pid files of components a previous, different-sized stack left behind count too.
    if layout.pids_dir.is_dir():
        components += [p.stem for p in layout.pids_dir.glob("*.pid") if p.stem not in components]
    running = [c for c in components if processes.read_pid(layout, c) is not None]
    processes.stop(layout, components, grace_seconds=grace_seconds)
    if purge:
        for path in (layout.data_dir, layout.logs_dir, layout.config_dir, layout.pids_dir):
            shutil.rmtree(path, ignore_errors=True)
        layout.stack_file.unlink(missing_ok=True)
    return running


def status(layout: StackLayout) -> tuple[StackInfo | None, list[ComponentStatus]]:
    """What runs where, according to the pid files and the stack file."""
    info = stack_info.load(layout)
    if info is None:
        return None, []
    rows = []
    for index, n in enumerate(info.node_ids):
        component = f"kafka-{n}"
        rows.append(
            ComponentStatus(
                name=component,
                pid=processes.read_pid(layout, component),
                address=f"127.0.0.1:{info.kafka_ports[index]} "
                f"(controller :{info.controller_ports[index]})",
                log=str(layout.logs_dir / component / "server.log"),
            )
        )
    rows.append(
        ComponentStatus(
            name="registry",
            pid=processes.read_pid(layout, "registry"),
            address=info.schema_registry_url,
            log=str(layout.log_file("registry")),
        )
    )
    return info, rows
