"""The reference saga as it was before its v2 (order priority, package weight, drone payload):
the previous version of the domain, kept as a fixture for the rolling-upgrade test.

It is the repository's own history, not a copy: `build_v1` writes the `consumers/` (with the
schemas inside, where `consumers.domain` looks for them first, as in the installed distribution)
and `producers/` of V1_COMMIT into a folder. Put that folder first on a process's PYTHONPATH and
`consumers.domain:DOMAIN` is v1 there, while the rest of the checkout is what it is.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from harness.paths import REPO

# The last commit of the reference saga at v1 (every .avsc at its v1 version).
V1_COMMIT = "610aa0a41d34fe76546e8819421b41ab16494e43"


class HistoryMissingError(RuntimeError):
    """The checkout has no V1_COMMIT (a shallow clone): the fixture cannot be built."""


def build_v1(into: Path) -> Path:
    """The v1 domain under `into` (created); returns `into`, the folder for PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", V1_COMMIT, "consumers", "schemas", "producers"],
        capture_output=True, timeout=120, check=False,
    )
    if archive.returncode != 0:
        raise HistoryMissingError(
            f"the v1 reference saga is commit {V1_COMMIT[:12]} of this repository, and git could not "
            f"read it ({archive.stderr.decode(errors='replace').strip()}): a shallow clone? "
            "`git fetch --unshallow` brings the history"
        )
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    (into / "schemas").rename(into / "consumers" / "schemas")
    return into
