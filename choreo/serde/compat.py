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


def _work_tree(repo: Path) -> Path:
    """The top of the git work tree holding `repo`; ConfigurationError in one sentence if none."""
    try:
        top = _git(repo, "rev-parse", "--show-toplevel").strip()
    except FileNotFoundError as e:
        raise ConfigurationError("git is not installed, and the check reads schema history from git") from e
    except subprocess.CalledProcessError as e:
        said = (e.stderr or "").strip().splitlines()
        why = "" if not said or "not a git repository" in said[0] else f" ({said[0]})"
        raise ConfigurationError(
            f"the check compares each schema with its earlier versions in git history, and {repo.resolve()} "
            f"is not in a git repository{why}: run it in the checkout that holds the schemas, "
            "or pass --repo with that checkout"
        ) from e
    return Path(top).resolve()


def _tracked(top: Path, root: Path) -> bool:
    """True when git knows at least one file under `root` (an installed copy it never does)."""
    try:
        return bool(_git(top, "ls-files", "--", str(root.resolve().relative_to(top))).strip())
    except subprocess.CalledProcessError:
        return False


def _require_repository(repo: Path, schema_root: Path) -> None:
    """ConfigurationError unless `repo` is in a git work tree that holds `schema_root`."""
    top = _work_tree(repo)
    if not schema_root.resolve().is_relative_to(top):
        raise ConfigurationError(
            f"the schemas in {schema_root} are not inside the git repository {top}: "
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


@dataclass(frozen=True)
class CompatReport:
    """What `choreo schemas check` found: the folders it checked and those it could not."""

    checked: int
    problems: list[CompatProblem]
    roots: list[Path]
    skipped: list[tuple[Path, str]]  # (folder, why it has no history in this repository)


def check_roots(repo: Path, roots: list[Path]) -> CompatReport:
    """Check every schema folder that `repo`'s git history holds; the others are skipped, with why.

    An installed copy of the schemas (a wheel's, in site-packages) has no history: checking it
    would report "0 earlier versions" and prove nothing, so when no folder can be checked this
    raises ConfigurationError in one sentence instead.
    """
    top = _work_tree(repo)
    usable: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for root in roots:
        if not root.resolve().is_relative_to(top):
            skipped.append((root, f"outside the git repository {top}"))
        elif not _tracked(top, root):
            skipped.append((root, f"not tracked by git in {top}"))
        else:
            usable.append(root)
    if not usable:
        where = ", ".join(f"{r} ({why})" for r, why in skipped)
        raise ConfigurationError(
            f"no schema folder has a git history to check against: {where}; an installed copy has "
            "none, so run the check in the checkout that holds the schemas, or pass --repo with it"
        )
    checked, problems = 0, []
    for root in usable:
        n, found = check_tree(top, root)
        checked += n
        problems.extend(found)
    return CompatReport(checked, problems, usable, skipped)
