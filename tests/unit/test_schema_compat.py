"""Schema evolution: every schema reads data written by each earlier version in git history."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from choreo.exceptions import ConfigurationError
from choreo.serde.compat import Mode, check_roots, check_tree, history, readable_by
from harness.paths import REPO, SCHEMAS

V1 = {
    "type": "record", "name": "Thing", "namespace": "t",
    "fields": [{"name": "id", "type": "string"}, {"name": "n", "type": "int"}],
}


def _with_fields(*fields: dict[str, object]) -> str:
    return json.dumps({**V1, "fields": list(fields)})


@pytest.mark.parametrize(
    ("new", "compatible"),
    [
        (_with_fields({"name": "id", "type": "string"}, {"name": "n", "type": "int"},
                      {"name": "note", "type": ["null", "string"], "default": None}), True),
        (_with_fields({"name": "id", "type": "string"}, {"name": "n", "type": "long"}), True),
        (_with_fields({"name": "id", "type": "string"}, {"name": "n", "type": "string"}), False),
        (_with_fields({"name": "id", "type": "string"}, {"name": "count", "type": "int"}), False),
        (_with_fields({"name": "id", "type": "string"},
                      {"name": "count", "type": "int", "aliases": ["n"]}), True),
        (_with_fields({"name": "id", "type": "string"}, {"name": "n", "type": "int"},
                      {"name": "extra", "type": "int"}), False),
    ],
    ids=["new-field-with-default", "int-to-long", "type-change", "rename-without-alias",
         "rename-with-alias", "new-field-without-default"],
)
def test_resolution_rules_backward(new: str, compatible: bool) -> None:
    assert (readable_by(json.dumps(V1), new, Mode.BACKWARD) is None) is compatible


def _repo_with_v1(tmp: Path) -> tuple[Path, str]:
    """A git repository whose history holds V1 of schemas/Thing.avsc; (schema path, v1 commit)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp), *args], check=True, capture_output=True, text=True
        ).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "t")
    schema = tmp / "schemas" / "Thing.avsc"
    schema.parent.mkdir()
    schema.write_text(json.dumps(V1))
    git("add", ".")
    git("commit", "-qm", "v1")
    return schema, git("rev-parse", "HEAD").strip()


@pytest.mark.parametrize(
    "fields",
    [
        ({"name": "id", "type": "string"}, {"name": "n", "type": "string"}),
        ({"name": "id", "type": "string"}, {"name": "n", "type": "int"}, {"name": "extra", "type": "int"}),
    ],
    ids=["type-change", "new-field-without-default"],
)
def test_check_tree_reports_an_incompatible_change_against_the_committed_version(
    tmp_path: Path, fields: tuple[dict[str, object], ...]
) -> None:
    schema, v1_commit = _repo_with_v1(tmp_path)
    schema.write_text(_with_fields(*fields))
    checked, problems = check_tree(tmp_path, tmp_path / "schemas")
    assert checked == 1
    assert [(p.path, p.commit) for p in problems] == [(schema, v1_commit[:12])]
    assert problems[0].reason


def test_check_tree_accepts_a_compatible_change_and_skips_the_unchanged_version(tmp_path: Path) -> None:
    schema, _ = _repo_with_v1(tmp_path)
    assert check_tree(tmp_path, tmp_path / "schemas") == (0, [])  # only the same text: nothing to check
    schema.write_text(_with_fields({"name": "id", "type": "string"}, {"name": "n", "type": "int"},
                                   {"name": "note", "type": ["null", "string"], "default": None}))
    assert check_tree(tmp_path, tmp_path / "schemas") == (1, [])


def test_every_schema_in_this_repository_is_compatible_with_its_history() -> None:
    checked, problems = check_tree(REPO, SCHEMAS)
    assert problems == [], "\n".join(f"{p.path} vs {p.commit}: {p.reason}" for p in problems)
    # With no earlier version, or only earlier docs, this test would pass without checking
    # anything: orders/OrderCompleted has a v1 without delivered_to. A shallow clone lacks that
    # history (`git fetch --unshallow`).
    assert checked >= 1, "no schema in schemas/ differs from an earlier committed version"
    evolved = [
        path.name for path in sorted((REPO / "schemas").rglob("*.avsc"))
        if any(_shape(old) != _shape(path.read_text()) for _, old in history(REPO, path))
    ]
    assert evolved, "no earlier version of any schema differs in its fields, only in docs"


def _shape(text: str) -> list[tuple[str, str, bool]]:
    """A record's fields without their docs: name, type, whether it has a default."""
    return [(f["name"], json.dumps(f["type"]), "default" in f) for f in json.loads(text)["fields"]]


def test_the_mixed_writers_test_writes_the_first_committed_order_completed() -> None:
    # tests/e2e/test_mixed_schema_versions.py writes OrderCompleted with its copy of v1: the copy
    # must be that version as committed, not a look-alike.
    versions = history(REPO, REPO / "schemas" / "orders" / "OrderCompleted.avsc")
    copy = REPO / "tests" / "e2e" / "schemas_v1" / "orders" / "OrderCompleted.avsc"
    assert len(versions) >= 2 and copy.read_text() == versions[-1][1]


def test_check_roots_refuses_schemas_without_history_in_one_sentence(tmp_path: Path) -> None:
    # A wheel's copy of the schemas (say in a .venv inside some project) is not tracked by git:
    # "0 earlier versions checked" would prove nothing, so the check says why it cannot run.
    subprocess.run(["git", "-C", str(tmp_path), "init", "-q"], check=True, capture_output=True)
    installed = tmp_path / ".venv" / "consumers" / "schemas"
    installed.mkdir(parents=True)
    (installed / "Thing.avsc").write_text(json.dumps(V1))
    with pytest.raises(ConfigurationError, match="no schema folder has a git history") as caught:
        check_roots(tmp_path, [installed])
    assert "not tracked by git" in str(caught.value) and "\n" not in str(caught.value)


def test_check_roots_outside_a_repository_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is not in a git repository: run it in the checkout"):
        check_roots(tmp_path, [REPO / "schemas"])


def test_check_roots_checks_the_folders_it_can_and_names_the_others() -> None:
    report = check_roots(REPO, [REPO / "schemas", Path("/nonexistent-elsewhere/schemas")])
    assert report.roots == [REPO / "schemas"] and report.problems == []
    assert [why for _, why in report.skipped] == [f"outside the git repository {REPO.resolve()}"]
