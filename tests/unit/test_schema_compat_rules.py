"""Schema evolution by the Avro resolution rules: one row per kind of change, both directions.

Each row is a change from an old to a new version of the record t.Thing and what each direction
says about it: None when the reader resolves everything the writer can write, else words the
one-sentence refusal must hold. Backward is the new schema reading old data, forward the old
schema reading new data, and full refuses what either refuses, backward's reason first.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from typer.testing import CliRunner

from choreo import bootstrap
from choreo.cli.main import app
from choreo.serde import compat
from choreo.serde.compat import Mode, check_tree, readable_by

Avro = Any  # a JSON Avro type: a name, a list (union) or an object


def thing(*fields: dict[str, Avro], name: str = "Thing", namespace: str = "t", **props: Avro) -> str:
    return json.dumps({"type": "record", "name": name, "namespace": namespace, "fields": list(fields),
                       **props})


def c(avro_type: Avro, **props: Avro) -> str:
    """t.Thing with an `id` and the field `c` of the given type: most rows change only `c`."""
    return thing({"name": "id", "type": "string"}, {"name": "c", "type": avro_type, **props})


def colour(*symbols: str, **props: Avro) -> dict[str, Avro]:
    return {"type": "enum", "name": "Colour", "symbols": list(symbols), **props}


def inner(*fields: dict[str, Avro], **props: Avro) -> dict[str, Avro]:
    return {"type": "record", "name": "Inner", "fields": list(fields), **props}


def array(items: Avro) -> dict[str, Avro]:
    return {"type": "array", "items": items}


W = {"name": "w", "type": "int"}
ID = {"name": "id", "type": "string"}


class Row(NamedTuple):
    name: str
    old: str
    new: str
    backward: tuple[str, ...] | None  # None: accepted; else words of the refusal
    forward: tuple[str, ...] | None


ROWS = [
    Row("enum symbol removed, no default", c(colour("A", "B", "C")), c(colour("A", "B")),
        ("t.Thing", "Thing.c", "new enum t.Colour has no symbol 'C' and no default"), None),
    Row("enum symbol removed, with default", c(colour("A", "B", "C", default="A")),
        c(colour("A", "B", default="A")), None, None),
    Row("enum symbol added, no default", c(colour("A", "B")), c(colour("A", "B", "C")),
        None, ("Thing.c", "old enum t.Colour has no symbol 'C' and no default")),
    Row("enum symbol added, with default", c(colour("A", "B", default="A")),
        c(colour("A", "B", "C", default="A")), None, None),
    Row("union branch removed", c(["null", "string", "int"]), c(["null", "string"]),
        ("Thing.c", "new union has no branch for the old int"), None),
    Row("union branch added", c(["null", "string"]), c(["null", "string", "int"]),
        None, ("Thing.c", "old union has no branch for the new int")),
    Row("field added without default", thing(ID), thing(ID, {"name": "priority", "type": "int"}),
        ("t.Thing at Thing:", "field 'priority' added without a default"), None),
    Row("field added with default", thing(ID),
        thing(ID, {"name": "priority", "type": "int", "default": 0}), None, None),
    Row("field added without default, its enum has a default", thing(ID),
        thing(ID, {"name": "hue", "type": colour("A", default="A")}),
        ("Thing:", "field 'hue' added without a default"), None),
    Row("field removed, no default in old", thing(ID, {"name": "priority", "type": "int"}), thing(ID),
        None, ("Thing:", "field 'priority' removed while the old schema has no default for it")),
    Row("field removed, default in old", thing(ID, {"name": "priority", "type": "int", "default": 0}),
        thing(ID), None, None),
    Row("int to long", c("int"), c("long"), None, ("Thing.c", "old type int cannot read the new type long")),
    Row("long to int", c("long"), c("int"), ("Thing.c", "new type int cannot read the old type long"), None),
    Row("float to double", c("float"), c("double"),
        None, ("Thing.c", "old type float cannot read the new type double")),
    Row("string to bytes", c("string"), c("bytes"), None, None),
    Row("bytes to string", c("bytes"), c("string"), None, None),
    Row("string to int", c("string"), c("int"), ("new type int cannot read the old type string",),
        ("old type string cannot read the new type int",)),
    Row("record renamed without alias", c("int"), thing(ID, {"name": "c", "type": "int"}, name="Other"),
        ("t.Other at Other:", "new record t.Other has neither the old name 'Thing' nor the alias 't.Thing'"),
        ("old record t.Thing has neither the new name 'Other' nor the alias 't.Other'",)),
    # The alias is relative to the namespace, as the spec allows: avro.compatibility alone refuses it.
    Row("record renamed with alias", c("int"),
        thing(ID, {"name": "c", "type": "int"}, name="Other", aliases=["Thing"]),
        None, ("old record t.Thing has neither the new name 'Other'",)),
    Row("record renamed with full alias", c("int"),
        thing(ID, {"name": "c", "type": "int"}, name="Other", aliases=["t.Thing"]),
        None, ("old record t.Thing has neither the new name 'Other'",)),
    Row("enum renamed with alias", c(colour("A")), c({**colour("A"), "name": "Hue", "aliases": ["Colour"]}),
        None, ("Thing.c", "old enum t.Colour has neither the new name 'Hue'")),
    Row("field renamed without alias", c("int"), thing(ID, {"name": "d", "type": "int"}),
        ("Thing:", "field 'd' added without a default"),
        ("Thing:", "field 'c' removed while the old schema has no default for it")),
    Row("field renamed with alias", c("int"), thing(ID, {"name": "d", "type": "int", "aliases": ["c"]}),
        None, ("Thing:", "field 'c' removed")),
    # Records, enums and fixed match by unqualified name (spec, Java checker and fastavro agree).
    Row("namespace changed", c("int"), thing(ID, {"name": "c", "type": "int"}, namespace="u"), None, None),
    Row("nested namespace changed", c(inner(W)), c(inner(W, namespace="u")), None, None),
    Row("nested record field type changed", c(inner(W)), c(inner({"name": "w", "type": "string"})),
        ("Thing.c.w", "new type string cannot read the old type int"),
        ("Thing.c.w", "old type int cannot read the new type string")),
    Row("nested record field added without default", c(inner(W)), c(inner(W, {"name": "v", "type": "int"})),
        ("Thing.c:", "field 'v' added without a default"), None),
    Row("nullable nested record field added without default", c(["null", inner(W)]),
        c(["null", inner(W, {"name": "v", "type": "int"})]),
        ("Thing.c:", "field 'v' added without a default"), None),
    Row("array item type changed", c(array("int")), c(array("string")),
        ("Thing.c[]", "new type string cannot read the old type int"),
        ("Thing.c[]", "old type int cannot read the new type string")),
    Row("array of records, item field narrowed", c(array(inner({"name": "w", "type": "long"}))),
        c(array(inner(W))), ("Thing.c[].w", "new type int cannot read the old type long"), None),
    Row("map value changed", c({"type": "map", "values": "long"}), c({"type": "map", "values": "int"}),
        ("Thing.c{}", "new type int cannot read the old type long"), None),
    Row("fixed size changed", c({"type": "fixed", "name": "Md5", "size": 16}),
        c({"type": "fixed", "name": "Md5", "size": 8}),
        ("Thing.c", "new fixed t.Md5 has size 8 where the old one has 16"),
        ("Thing.c", "old fixed t.Md5 has size 16 where the new one has 8")),
]


def _assert_verdict(reason: str | None, words: tuple[str, ...] | None) -> None:
    if words is None:
        assert reason is None
        return
    assert reason is not None, f"accepted, expected a refusal with {words}"
    for word in words:
        assert word in reason, reason
    assert "\n" not in reason and reason.startswith("t."), reason  # one sentence, naming the schema


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_each_direction_applies_the_resolution_rules(row: Row) -> None:
    backward = readable_by(row.old, row.new, Mode.BACKWARD)
    forward = readable_by(row.old, row.new, Mode.FORWARD)
    _assert_verdict(backward, row.backward)
    _assert_verdict(forward, row.forward)
    # full is the default, as the registry's FULL_TRANSITIVE
    assert readable_by(row.old, row.new) == readable_by(row.old, row.new, Mode.FULL) == (backward or forward)


def test_a_recursive_type_is_walked_to_its_break() -> None:
    def node(value: str) -> str:
        return json.dumps({"type": "record", "name": "Node", "namespace": "t", "fields": [
            {"name": "next", "type": ["null", "Node"]}, {"name": "value", "type": value}]})

    assert readable_by(node("int"), node("long"), Mode.BACKWARD) is None
    assert readable_by(node("long"), node("int"), Mode.BACKWARD) == (
        "t.Node at Node.value: the new type int cannot read the old type long")


def test_a_refusal_the_walk_cannot_explain_is_in_the_checkers_words(monkeypatch: pytest.MonkeyPatch) -> None:
    # The verdict is avro's alone: a rule the walk does not know (a later avro) still refuses.
    monkeypatch.setattr(compat._Walk, "first_break", lambda *_: None)
    assert readable_by(c("long"), c("int")) == ("t.Thing at Thing: Avro's checker refuses it "
                                                 "(reader type: int not compatible with writer type: long)")


def test_an_invalid_version_is_named() -> None:
    reason = readable_by(c("int"), c("no-such-type"))
    assert reason is not None and reason.startswith("the new version is not a valid Avro schema (")
    assert "no-such-type" in reason and "\n" not in reason


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _committed(repo: Path, text: str) -> Path:
    """schemas/Thing.avsc holding `text` in the single commit of a new repository at `repo`."""
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.invalid")
    _git(repo, "config", "user.name", "t")
    schema = repo / "schemas" / "Thing.avsc"
    schema.parent.mkdir()
    schema.write_text(text)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "v1")
    return schema


def test_check_tree_takes_the_mode(tmp_path: Path) -> None:
    schema = _committed(tmp_path, c(colour("A", "B")))
    schema.write_text(c(colour("A", "B", "C")))
    assert check_tree(tmp_path, tmp_path / "schemas", Mode.BACKWARD) == (1, [])
    checked, problems = check_tree(tmp_path, tmp_path / "schemas")  # full, the registry's level
    assert checked == 1 and [p.reason for p in problems] == [
        "t.Thing at Thing.c: the old enum t.Colour has no symbol 'C' and no default"]


def test_schemas_check_prints_one_sentence_per_refused_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = _committed(tmp_path, c(colour("A", "B", "C")))
    schema.write_text(c(colour("A", "B")))
    monkeypatch.setattr(bootstrap, "schema_roots", lambda: [tmp_path / "schemas"])
    result = CliRunner().invoke(app, ["schemas", "check", "--repo", str(tmp_path)])
    assert result.exit_code == 1, result.output
    refused = [line for line in result.stdout.splitlines() if line.startswith("INCOMPATIBLE")]
    assert len(refused) == 1
    assert refused[0].startswith(f"INCOMPATIBLE {schema} vs ")
    assert refused[0].endswith(": t.Thing at Thing.c: the new enum t.Colour has no symbol 'C' and no default")
