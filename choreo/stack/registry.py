"""The schema registry process: Apicurio Registry (Quarkus) with its data in an H2 file database."""

from __future__ import annotations

from choreo.stack.info import StackInfo
from choreo.stack.java import Java, cds_flags
from choreo.stack.layout import StackLayout
from choreo.stack.ports import HOST
from choreo.stack.processes import marker


def apicurio_version(layout: StackLayout) -> str:
    for jar in (layout.apicurio_dir / "app").glob("apicurio-registry-app-*.jar"):
        return jar.stem.removeprefix("apicurio-registry-app-")
    return "unknown"


def registry_command(layout: StackLayout, info: StackInfo, java: Java) -> list[str]:
    """The command line of the registry: bound to 127.0.0.1, SQL storage in an H2 file."""
    data = layout.registry_data()
    data.mkdir(parents=True, exist_ok=True)
    props = {
        "quarkus.http.host": HOST,
        "quarkus.http.port": info.registry_port,
        # Quarkus opens a second (management/health) port, on 0.0.0.0:9000 by default; keep it
        # local and on a port of its own so two stacks never collide.
        "quarkus.management.host": HOST,
        "quarkus.management.port": info.management_port,
        # Persistent storage: schema ids (a database sequence) survive restarts of the registry
        # and of the whole stack. The in-memory default would hand out ids again from 1.
        "apicurio.storage.kind": "sql",
        "apicurio.storage.sql.kind": "h2",
        "apicurio.datasource.url": f"jdbc:h2:file:{data / 'registry'}",
        "apicurio.datasource.jdbc.initial-size": 2,
        "apicurio.datasource.jdbc.min-size": 2,
        "apicurio.datasource.jdbc.max-size": 10,
        "apicurio.storage.snapshot.location": data,
        "quarkus.otel.sdk.disabled": "true",
    }
    return [
        str(java.path),
        marker(layout, "registry"),
        "-Xms64m",
        "-Xmx512m",
        # The registry serves few requests (clients cache schemas), so fast start wins.
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        *cds_flags(java, layout.cds_dir / f"apicurio-{apicurio_version(layout)}-java{java.version}.jsa"),
        *(f"-D{k}={v}" for k, v in props.items()),
        "-jar",
        str(layout.apicurio_dir / "quarkus-run.jar"),
    ]
