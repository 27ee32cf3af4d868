"""One Kafka node (combined broker + KRaft controller): its config, storage format and command."""

from __future__ import annotations

import base64
import re
import subprocess
import uuid
from string import Template

from choreo.stack.errors import StackStartError
from choreo.stack.info import StackInfo
from choreo.stack.jars import classpath
from choreo.stack.java import Java, cds_flags
from choreo.stack.layout import StackLayout
from choreo.stack.ports import HOST
from choreo.stack.processes import marker


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (like Uuid)."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):  # Kafka's own generator avoids these (CLI parsing)
            return value


def kafka_version(layout: StackLayout) -> str:
    for jar in layout.lib_dir.glob("kafka_2.13-*.jar"):
        match = re.match(r"kafka_2\.13-(.+)\.jar$", jar.name)
        if match:
            return match.group(1)
    return "unknown"


def render_config(layout: StackLayout, info: StackInfo, node_id: int) -> str:
    """server.properties for one node, from stack/server.properties."""
    index = node_id - 1
    if info.brokers == 1:
        # Dynamic quorum of one, as `StorageTool format --standalone` expects.
        quorum = f"controller.quorum.bootstrap.servers={HOST}:{info.controller_ports[0]}"
    else:
        # Static quorum: every node knows all voters up front; no --initial-controllers needed.
        voters = ",".join(
            f"{n}@{HOST}:{port}" for n, port in zip(info.node_ids, info.controller_ports, strict=True)
        )
        quorum = f"controller.quorum.voters={voters}"
    template = Template(layout.template("server.properties").read_text())
    return template.substitute(
        node_id=node_id,
        kafka_port=info.kafka_ports[index],
        controller_port=info.controller_ports[index],
        quorum_line=quorum,
        log_dir=layout.kafka_data(node_id),
        replication_factor=1 if info.brokers == 1 else 3,
        min_isr=1 if info.brokers == 1 else 2,
    )


def write_config(layout: StackLayout, info: StackInfo, node_id: int) -> str:
    path = layout.config_dir / f"kafka-{node_id}.properties"
    path.write_text(render_config(layout, info, node_id))
    return str(path)


def is_formatted(layout: StackLayout, node_id: int) -> bool:
    return (layout.kafka_data(node_id) / "meta.properties").is_file()


def _jvm_base(layout: StackLayout, java: Java, component: str) -> list[str]:
    return [
        str(java.path),
        marker(layout, component),
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={layout.template('log4j2.properties')}",
        f"-Dkafka.logs.dir={layout.logs_dir / component}",
    ]


def format_storage(layout: StackLayout, info: StackInfo, java: Java, node_id: int) -> None:
    """Format the node's log dir for the cluster (skipped by the caller when already formatted)."""
    config = write_config(layout, info, node_id)
    component = f"kafka-{node_id}"
    cmd = [
        *_jvm_base(layout, java, f"{component}-format"),
        # A one-shot tool: quick start matters more than peak speed.
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-Xshare:auto",
        "-Xmx256m",
        "-cp",
        classpath(layout),
        "kafka.tools.StorageTool",
        "format",
        "--config",
        config,
        "--cluster-id",
        info.cluster_id,
        # Share groups (KIP-932) are not used by this project; keep the feature off.
        "--feature",
        "share.version=0",
    ]
    if info.brokers == 1:
        cmd.append("--standalone")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackStartError(
            f"Formatting storage of {component} failed (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-2000:]}"
        )


def node_command(layout: StackLayout, info: StackInfo, java: Java, node_id: int) -> list[str]:
    """The command line of the Kafka node process."""
    component = f"kafka-{node_id}"
    config = write_config(layout, info, node_id)
    heap = "1g" if info.brokers == 1 else "512m"
    return [
        *_jvm_base(layout, java, component),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        # Kafka's own defaults (G1, short pauses); no C1-only flag here, since the broker's
        # steady-state speed matters for the benchmarks.
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        *cds_flags(java, layout.cds_dir / f"kafka-{kafka_version(layout)}-java{java.version}.jsa"),
        "-cp",
        classpath(layout),
        "kafka.Kafka",
        config,
    ]
