"""Offline schema evolution check: every schema must read data written by each earlier version.

Earlier versions come from git history. For each (old writer, current reader) pair, records are
generated from the old schema, written with it, and read back with the current one; fastavro's
schema resolution raises on a type change, a rename without alias, or a new field without default.
"""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import fastavro
from fastavro.utils import generate_many

from choreo.exceptions import ConfigurationError

_SAMPLES = 5


@dataclass(frozen=True)
class CompatProblem:
    path: Path
    commit: str
    reason: str


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def history(repo: Path, path: Path) -> list[tuple[str, str]]:
    """(commit, schema text) of every committed version of `path`, newest first."""
    rel = path.resolve().relative_to(repo.resolve())
    try:
        commits = _git(repo, "log", "--format=%H", "--follow", "--", str(rel)).split()
    except subprocess.CalledProcessError:
        return []
    versions = []
    for commit in commits:
        try:
            versions.append((commit, _git(repo, "show", f"{commit}:{rel}")))
        except subprocess.CalledProcessError:
            continue  # the file had another name in that commit
    return versions


def readable_by(old_text: str, new_text: str) -> str | None:
    """None if data written with `old_text` resolves to `new_text`, else the reason it does not."""
    try:
        writer = fastavro.parse_schema(json.loads(old_text))
        reader = fastavro.parse_schema(json.loads(new_text))
    except Exception as e:  # noqa: BLE001 - any parse failure is the answer
        return f"cannot parse: {e}"
    for record in generate_many(writer, _SAMPLES):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, writer, record)
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, writer, reader)
        except Exception as e:  # noqa: BLE001 - SchemaResolutionError and friends
            return str(e)
    return None


def _require_repository(repo: Path, schema_root: Path) -> None:
    """ConfigurationError unless `repo` is in a git work tree that holds `schema_root`."""
    try:
        _git(repo, "rev-parse", "--show-toplevel")
    except FileNotFoundError as e:
        raise ConfigurationError("git is not installed, and the check reads schema history from git") from e
    except subprocess.CalledProcessError as e:
        said = (e.stderr or "").strip().splitlines()
        raise ConfigurationError(
            f"{repo} is not in a git repository ({said[0] if said else f'git exit {e.returncode}'}): "
            "pass --repo with the repository that holds the schemas"
        ) from e
    if not schema_root.resolve().is_relative_to(repo.resolve()):
        raise ConfigurationError(
            f"the schemas in {schema_root} are not inside {repo}: "
            "pass --repo with the repository that holds them"
        )


def check_tree(repo: Path, schema_root: Path) -> tuple[int, list[CompatProblem]]:
    """Check each `.avsc` under `schema_root` against its history; return (pairs checked, problems)."""
    _require_repository(repo, schema_root)
    checked, problems = 0, []
    for path in sorted(schema_root.rglob("*.avsc")):
        current = path.read_text()
        for commit, old in history(repo, path):
            if old == current:
                continue
            checked += 1
            reason = readable_by(old, current)
            if reason is not None:
                problems.append(CompatProblem(path, commit[:12], reason))
    return checked, problems
