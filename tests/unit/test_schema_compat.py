"""Schema evolution: every schema reads data written by each earlier version in git history."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from choreo.exceptions import ConfigurationError
from choreo.serde.compat import check_roots, check_tree, readable_by

REPO = Path(__file__).resolve().parents[2]

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
def test_resolution_rules(new: str, compatible: bool) -> None:
    assert (readable_by(json.dumps(V1), new) is None) is compatible


def test_check_tree_finds_an_incompatible_commit(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "t")
    schema = tmp_path / "schemas" / "Thing.avsc"
    schema.parent.mkdir()
    schema.write_text(json.dumps(V1))
    git("add", ".")
    git("commit", "-qm", "v1")
    schema.write_text(_with_fields({"name": "id", "type": "string"}, {"name": "n", "type": "string"}))
    checked, problems = check_tree(tmp_path, tmp_path / "schemas")
    assert checked == 1 and len(problems) == 1


def test_every_schema_in_this_repository_is_compatible_with_its_history() -> None:
    _checked, problems = check_tree(REPO, REPO / "schemas")
    assert problems == [], "\n".join(f"{p.path} vs {p.commit}: {p.reason}" for p in problems)


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
