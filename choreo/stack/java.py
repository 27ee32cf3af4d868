"""Find a `java` new enough for each component (Kafka needs 17+, Apicurio Registry 3.3 needs 21+)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from choreo.stack.errors import PrerequisiteMissing

KAFKA_MIN_JAVA = 17
REGISTRY_MIN_JAVA = 21

_VERSION_RE = re.compile(r'version "(\d+)(?:\.(\d+))?')


@dataclass(frozen=True)
class Java:
    """A java executable and its feature version (17, 21, 25, ...)."""

    path: Path
    version: int


@functools.lru_cache(maxsize=64)
def java_version(path: str) -> int | None:
    """The feature version of the java at `path`, or None if it does not run."""
    try:
        out = subprocess.run(
            [path, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION_RE.search(out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8.0"; the feature version is the second number.
    return int(match.group(2) or 0) if major == 1 else major


def _explicit() -> list[Path]:
    """Java executables the user chose (CHOREO_JAVA_HOME, then JAVA_HOME)."""
    return [
        Path(home) / "bin" / "java"
        for var in ("CHOREO_JAVA_HOME", "JAVA_HOME")
        if (home := os.environ.get(var))
    ]


def _candidates() -> list[Path]:
    """Every java executable found: explicit choices, PATH, then installed JDKs."""
    found: list[Path] = _explicit()
    on_path = shutil.which("java")
    if on_path:
        found.append(Path(on_path))
    # Other installed JDKs (Debian/Ubuntu and macOS locations), newest name first, so a machine
    # whose default java is 17 can still run the registry on an installed 21+.
    for root, pattern in (
        (Path("/usr/lib/jvm"), "*/bin/java"),
        (Path("/Library/Java/JavaVirtualMachines"), "*/Contents/Home/bin/java"),
    ):
        if root.is_dir():
            found.extend(sorted(root.glob(pattern), reverse=True))
    unique: list[Path] = []
    for path in found:
        if path.is_file() and os.access(path, os.X_OK) and path not in unique:
            unique.append(path)
    return unique


def find_java(min_version: int, purpose: str) -> Java:
    """A java with at least `min_version`, or a one-sentence error.

    An explicitly chosen JDK wins; otherwise the newest one found, because 19+ can keep an
    automatic class-data-sharing archive, which more than halves the start time of the tools.
    """
    candidates = _candidates()
    usable = [
        Java(path=path, version=version)
        for path in candidates
        if (version := java_version(str(path))) is not None and version >= min_version
    ]
    explicit = [java for java in usable if java.path in _explicit()]
    if explicit:
        return explicit[0]
    if usable:
        return max(usable, key=lambda java: java.version)
    if not candidates:
        raise PrerequisiteMissing(
            f"Java {min_version} or newer is needed for {purpose}: install a JDK "
            f"(e.g. the openjdk-{min_version}-jre-headless package) or use Docker "
            "(docker compose up -d)."
        )
    raise PrerequisiteMissing(
        f"Java {min_version} or newer is needed for {purpose} but only older Java was found: "
        f"install a JDK {min_version}+ and put it on PATH or set CHOREO_JAVA_HOME to it."
    )


def cds_flags(java: Java, archive: Path) -> list[str]:
    """JVM flags that keep a class-data-sharing archive of the app, when the JVM can (19+)."""
    if java.version < 19:
        return ["-Xshare:auto"]
    archive.parent.mkdir(parents=True, exist_ok=True)
    # The archive is written at the first clean exit and reused afterwards; it is keyed by the
    # java version so switching JDKs never loads a stale one.
    return [
        "-XX:+AutoCreateSharedArchive",
        f"-XX:SharedArchiveFile={archive}",
        # Writing the archive lists every class it skips as a warning on stdout, which would mix
        # into a console tool's output; those messages are harmless.
        "-Xlog:cds=off",
        "-Xlog:cds+dynamic=off",
    ]
