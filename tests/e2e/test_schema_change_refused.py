"""A deliberately breaking edit of an event's schema is refused in one sentence, naming the field
and the rule, by both checks of `choreo schemas check --registry` (the schema's git history and
the running registry) and by `choreo schemas register`; a compatible edit passes all three.

The domain is a copy of the test ledger in a git repository of its own, as a team's would be."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from choreo.settings import Settings
from harness.paths import REPO
from harness.processes import run_cli
from harness.stack import StackEndpoints
from harness.topics import unique_prefix

pytestmark = pytest.mark.e2e

FIELD = "ledger_copy/schemas/Deposited.avsc"
CODE = "ledger_copy/__init__.py"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    *args], check=True, capture_output=True, timeout=60)


def _add_field(repo: Path, field: dict[str, object], declared: str) -> None:
    """The field added to Deposited's schema, and `declared` to its class, as a team edits both."""
    path = repo / FIELD
    schema = json.loads(path.read_text())
    schema["fields"].append(field)
    path.write_text(json.dumps(schema, indent=1))
    code = repo / CODE
    last = "    balance: int\n"
    text = code.read_text()
    at = text.index(last, text.index("class Deposited:")) + len(last)
    code.write_text(text[:at] + f"    {declared}\n" + text[at:])


def test_a_breaking_edit_is_refused_by_git_history_by_the_registry_and_by_register(
    stack: StackEndpoints, tmp_path: Path,
) -> None:
    repo = tmp_path / "team"
    shutil.copytree(REPO / "tests" / "support" / "ledger", repo / "ledger_copy",
                    ignore=shutil.ignore_patterns("__pycache__"))
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "v1")
    settings = Settings(bootstrap_servers=stack.bootstrap_servers,
                        schema_registry_url=stack.schema_registry_url,
                        topic_prefix=unique_prefix(), state_dir=tmp_path / "state")

    def choreo(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(settings, *args, domains="ledger_copy:DOMAIN", timeout=120,
                       PYTHONPATH=f"{repo}:{REPO}")

    registered = choreo("schemas", "register")
    assert registered.returncode == 0, registered.stderr
    clean = choreo("schemas", "check", "--registry", "--repo", str(repo))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 incompatible" in clean.stdout and ", 0 refused" in clean.stdout

    # No default: an old record has no memo to read, and old code cannot skip what it lacks.
    _add_field(repo, {"name": "memo", "type": "string"}, "memo: str = ''")
    broken = choreo("schemas", "check", "--registry", "--repo", str(repo))
    assert broken.returncode == 1, broken.stdout + broken.stderr
    rule = "ledger.wallet.Deposited at Deposited: field 'memo' added without a default"
    [history] = [line for line in broken.stdout.splitlines() if line.startswith("INCOMPATIBLE")]
    assert history.startswith(f"INCOMPATIBLE {repo / FIELD} vs ") and history.endswith(rule)
    [registry] = [line for line in broken.stdout.splitlines() if line.startswith("REFUSED")]
    assert registry.endswith(
        f"not FULL_TRANSITIVE-compatible with version 1 of the subject: {rule}"), registry
    refused = choreo("schemas", "register")
    assert refused.returncode == 1
    [said] = refused.stderr.strip().splitlines()
    assert said.startswith("error: ") and "Deposited.avsc is not FULL_TRANSITIVE-compatible" in said

    _git(repo, "checkout", "--", FIELD, CODE)
    _add_field(repo, {"name": "memo", "type": ["null", "string"], "default": None},
               "memo: str | None = None")
    fine = choreo("schemas", "check", "--registry", "--repo", str(repo))
    assert fine.returncode == 0, fine.stdout + fine.stderr
    again = choreo("schemas", "register")
    assert again.returncode == 0, again.stderr
