"""Fetch the stack's jars with Maven (Kafka, tools, log4j binding, Apicurio), once."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

from choreo.stack.errors import PrerequisiteMissing, StackError
from choreo.stack.layout import StackLayout

_STAMP = ".fetched"


def _pom_digest(layout: StackLayout) -> str:
    return hashlib.sha256(layout.template("pom.xml").read_bytes()).hexdigest()[:16]


def jars_present(layout: StackLayout) -> bool:
    """True when the jars for the current stack/pom.xml are already in place."""
    stamp = layout.jars_dir / _STAMP
    return (
        stamp.is_file()
        and stamp.read_text().strip() == _pom_digest(layout)
        and (layout.apicurio_dir / "quarkus-run.jar").is_file()
        and any(layout.lib_dir.glob("kafka_2.13-*.jar"))
    )


def ensure_jars(layout: StackLayout, quiet: bool = True) -> bool:
    """Download and unpack the jars unless present; returns True when something was fetched."""
    if jars_present(layout):
        return False
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PrerequisiteMissing(
            "Maven (mvn) is needed once to download the Kafka and registry jars: install it "
            "(e.g. the maven package) or use Docker (docker compose up -d)."
        )
    pom = layout.template("pom.xml")
    # A changed pom means other versions: start from an empty lib/ so old jars never mix in.
    for stale in (layout.lib_dir, layout.apicurio_dir):
        if stale.exists():
            shutil.rmtree(stale)
    layout.jars_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        *(["-q"] if quiet else []),
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:copy-dependencies@kafka-jars",
        "dependency:unpack@apicurio",
        f"-Dstack.lib={layout.lib_dir}",
        f"-Dstack.apicurio={layout.apicurio_dir}",
    ]
    result = subprocess.run(cmd, capture_output=quiet, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stdout or "")[-2000:] if quiet else ""
        raise StackError(
            f"Maven could not fetch the stack jars (exit {result.returncode}).\n{detail}"
        )
    (layout.jars_dir / _STAMP).write_text(_pom_digest(layout) + "\n")
    return True


def classpath(layout: StackLayout) -> str:
    """The Kafka classpath: every jar in lib/ (broker, tools, log4j binding)."""
    return str(layout.lib_dir / "*")
