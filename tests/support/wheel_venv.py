"""The product as a user gets it: the wheel built from the checkout, installed in a fresh venv.

Tests run the venv's `choreo` from a temp folder far from the checkout, with an environment
cleared of the test session's own settings, so nothing can come from the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

from harness.paths import REPO as REPO_ROOT

# The session's own endpoints, prefix and state must not leak into a command run "from outside".
_CLEARED = ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")


def _run(cmd: list[str], timeout: float, cwd: Path | None = None) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def shipped_copy(source: Path, dest: Path) -> Path:
    """The files git would ship from `source` (tracked or new, never ignored), copied to `dest`.

    Building from a copy keeps build/ and *.egg-info out of the checkout and proves the build
    needs nothing ignored (no .venv, no .stack).
    """
    listed = subprocess.run(
        ["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard", "."],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    for rel in filter(None, listed.split("\0")):
        src = source / rel
        if src.is_file():  # a deleted but still indexed file is skipped
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


def build_wheel(source: Path, out_dir: Path, project: str = ".") -> Path:
    """`pip wheel --no-deps` of the project in folder `project` of a copy of `source` (the
    reference saga's is `reference`, built from the copy's top-level folders); the one wheel."""
    tree = shipped_copy(source, out_dir / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out_dir),
          str(tree / project)], timeout=300)
    (wheel,) = out_dir.glob("*.whl")
    return wheel


@dataclass(frozen=True)
class WheelVenv:
    """A fresh venv with the choreo wheel and the reference saga's installed (and their
    dependencies, from PyPI or pip's cache)."""

    root: Path
    wheel: Path  # the framework's
    reference_wheel: Path  # the drone saga's

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        """The caller's environment without choreo's settings, this venv first on PATH."""
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED and not k.startswith("CHOREO_")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["COLUMNS"] = "200"  # rich wraps at 80 on a pipe: keep result lines whole
        env.update(extra)
        return env

    def choreo(
        self, *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "choreo"), *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def pip(self, *args: str, timeout: float = 300, cwd: Path | None = None) -> None:
        _run([str(self.bin / "python"), "-m", "pip", "--disable-pip-version-check", *args],
             timeout=timeout, cwd=cwd)


def make_wheel_venv(work: Path) -> WheelVenv:
    """Build both wheels from this checkout and install them into a new venv under `work`."""
    wheel = build_wheel(REPO_ROOT, work / "dist")
    reference = build_wheel(REPO_ROOT, work / "dist-reference", "reference")
    root = work / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    made = WheelVenv(root, wheel, reference)
    # The dependencies at the versions constraints.txt pins, as `make venv` and the image take them.
    made.pip("install", "-q", "-c", str(REPO_ROOT / "constraints.txt"), str(wheel), str(reference),
             timeout=600)
    return made


def said(result: subprocess.CompletedProcess[str]) -> str:
    """A command's output for an assertion message."""
    return (f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
            f"\n--- stderr\n{result.stderr[-4000:]}")
