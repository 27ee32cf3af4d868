"""Offline schema evolution check: every schema against each earlier version of it in git history.

Each (earlier, current) pair must resolve, by the Avro specification's schema-resolution rules, in
the direction the mode names: backward (the current schema reads what the earlier one wrote),
forward (the earlier reads the current) or full, both: the default, as the registry's
FULL_TRANSITIVE (docs/adr/0009-schema-compatibility.md).

The rules are applied to the schemas themselves, with Apache Avro's own checker
(`avro.compatibility`), not to sample records: records written from an old schema and read with
the new one pass a breaking change whenever the samples miss the broken value (a removed enum
symbol, a removed union branch). So every run gives the same answer, and a refusal names the
field path and the rule in one sentence.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityType,
    lookup_writer_field,
    schema_name_equals,
)
from avro.schema import (
    ArraySchema,
    EnumSchema,
    FixedSchema,
    MapSchema,
    NamedSchema,
    RecordSchema,
    Schema,
    UnionSchema,
)

from choreo.exceptions import ConfigurationError


class Mode(StrEnum):
    """Which way data must resolve between an earlier version ("old") and the current one ("new")."""

    BACKWARD = "backward"  # the new schema reads what the old one wrote: consumers upgrade first
    FORWARD = "forward"  # the old schema reads what the new one writes: producers upgrade first
    FULL = "full"  # both, so either side may upgrade first


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


def readable_by(old_text: str, new_text: str, mode: Mode = Mode.FULL) -> str | None:
    """None if the two versions resolve as `mode` requires, else one sentence saying why not."""
    old, new = _parse(old_text, "old"), _parse(new_text, "new")
    if isinstance(old, str):
        return old
    if isinstance(new, str):
        return new
    for reader, writer in _directions(mode, old, new):
        refusal = _refusal(reader, writer)
        if refusal is not None:
            return f"{_full_name(new.schema)} at {refusal}"
    return None


@dataclass(frozen=True)
class _Version:
    role: str  # "old" or "new": how a refusal names this side
    schema: Schema


def _parse(text: str, role: str) -> _Version | str:
    """The parsed version, or why it is not a valid Avro schema.

    Each .avsc is parsed alone, as choreo.serde.schemas loads it: a named type is defined in the
    file that uses it, so there is no other file to resolve a reference against.
    """
    try:
        schema = avro.schema.parse(text)
    except Exception as e:  # noqa: BLE001 - avro raises several types for bad schemas; any is the answer
        return f"the {role} version is not a valid Avro schema ({' '.join(str(e).split())})"
    _qualify_aliases(schema)
    return _Version(role, schema)


def _directions(mode: Mode, old: _Version, new: _Version) -> list[tuple[_Version, _Version]]:
    """The (reader, writer) pairs `mode` requires to resolve, backward first."""
    backward, forward = (new, old), (old, new)
    return {Mode.BACKWARD: [backward], Mode.FORWARD: [forward], Mode.FULL: [backward, forward]}[mode]


def _refusal(reader: _Version, writer: _Version) -> str | None:
    """None when `reader` reads all `writer` can write, else "<field path>: <rule it breaks>"."""
    walk = _Walk(ReaderWriterCompatibilityChecker(), reader.role, writer.role)
    if walk.fits(reader.schema, writer.schema):
        return None
    root = _short_name(reader.schema)
    # The verdict is the checker's alone; should it refuse for a rule the walk does not know
    # (a later avro), its own words are the reason.
    found = walk.first_break(reader.schema, writer.schema, root)
    path, rule = found or (root, walk.checker_words(reader.schema, writer.schema))
    return f"{path}: {rule}"


@dataclass(frozen=True)
class _Walk:
    """Finds where and why the checker refused a pair, by going down into the parts it refused.

    The checker's own result cannot say it: it keeps messages and locations in two sets that no
    longer pair up once two problems merge, and loses the location inside a union. The walk asks
    the same checker, whose memo holds the verdict it gave each part while refusing the whole, so
    the walk follows the checker's own reasons down to one, and ends (a recursive type included).
    """

    checker: ReaderWriterCompatibilityChecker
    reader_role: str  # "new" or "old"
    writer_role: str

    def fits(self, reader: Schema, writer: Schema) -> bool:
        verdict = self.checker.get_compatibility(reader, writer).compatibility
        return verdict is not SchemaCompatibilityType.incompatible

    def checker_words(self, reader: Schema, writer: Schema) -> str:
        messages = sorted(self.checker.get_compatibility(reader, writer).messages)
        return f"Avro's checker refuses it ({'; '.join(messages)})"

    def first_break(self, reader: Schema, writer: Schema, path: str) -> tuple[str, str] | None:
        """(path, rule) of the first part of a refused pair that breaks a resolution rule."""
        if isinstance(writer, UnionSchema):
            return self._writer_union(reader, writer, path)
        if isinstance(reader, UnionSchema):
            return self._reader_union(reader, writer, path)
        if reader.type != writer.type:  # and no promotion applies, or the pair would fit
            return path, (f"the {self.reader_role} type {_kind(reader)} cannot read "
                          f"the {self.writer_role} type {_kind(writer)}")
        if isinstance(reader, NamedSchema) and isinstance(writer, NamedSchema):
            if not schema_name_equals(reader, writer):
                return path, (f"the {self.reader_role} {reader.type} {reader.fullname} has neither the "
                              f"{self.writer_role} name {writer.name!r} nor the alias {writer.fullname!r}")
        return self._same_type(reader, writer, path)

    def _same_type(self, reader: Schema, writer: Schema, path: str) -> tuple[str, str] | None:
        if isinstance(reader, RecordSchema) and isinstance(writer, RecordSchema):
            return self._fields(reader, writer, path)
        if isinstance(reader, EnumSchema) and isinstance(writer, EnumSchema):
            missing = " or ".join(repr(s) for s in writer.symbols if s not in reader.symbols)
            return path, (f"the {self.reader_role} enum {reader.fullname} has no symbol {missing} "
                          "and no default")
        if isinstance(reader, FixedSchema) and isinstance(writer, FixedSchema):
            return path, (f"the {self.reader_role} fixed {reader.fullname} has size {reader.size} "
                          f"where the {self.writer_role} one has {writer.size}")
        if isinstance(reader, ArraySchema) and isinstance(writer, ArraySchema):
            return self.first_break(reader.items, writer.items, f"{path}[]")
        if isinstance(reader, MapSchema) and isinstance(writer, MapSchema):
            return self.first_break(reader.values, writer.values, f"{path}{{}}")
        return None

    def _writer_union(self, reader: Schema, writer: UnionSchema, path: str) -> tuple[str, str] | None:
        # The writer may write any of its branches, so the first one the reader cannot read is why.
        for branch in writer.schemas:
            if not self.fits(reader, branch):
                return self.first_break(reader, branch, path)
        return None

    def _reader_union(self, reader: UnionSchema, writer: Schema, path: str) -> tuple[str, str] | None:
        # No branch reads the writer's type. The branch meant for it (the record of a nullable
        # record, say) holds the deeper reason; without one, the union lacks the branch.
        for branch in reader.schemas:
            if _meant_for(branch, writer):
                return self.first_break(branch, writer, path)
        return path, f"the {self.reader_role} union has no branch for the {self.writer_role} {_kind(writer)}"

    def _fields(self, reader: RecordSchema, writer: RecordSchema, path: str) -> tuple[str, str] | None:
        for field in reader.fields:
            written = lookup_writer_field(writer_schema=writer, reader_field=field)
            if written is None and not field.has_default:
                return path, self._without_default(field.name)
            if written is not None and not self.fits(field.type, written.type):
                return self.first_break(field.type, written.type, f"{path}.{field.name}")
        return None

    def _without_default(self, field: str) -> str:
        # A reader field the writer lacks takes its default: none is a break. Which version reads
        # says whether the field was added (the new one) or removed (the old one).
        if self.reader_role == "new":
            return f"field {field!r} added without a default"
        return f"field {field!r} removed while the old schema has no default for it"


def _meant_for(branch: Schema, writer: Schema) -> bool:
    """True when a reader union's `branch` is the one for `writer`: same type, and name if named."""
    if isinstance(branch, NamedSchema) and isinstance(writer, NamedSchema):
        return branch.type == writer.type and schema_name_equals(branch, writer)
    return branch.type == writer.type


def _kind(schema: Schema) -> str:
    return f"{schema.type} {schema.fullname}" if isinstance(schema, NamedSchema) else str(schema.type)


def _short_name(schema: Schema) -> str:
    return schema.name if isinstance(schema, NamedSchema) else str(schema.type)


def _full_name(schema: Schema) -> str:
    return schema.fullname if isinstance(schema, NamedSchema) else str(schema.type)


def _qualify_aliases(schema: Schema) -> None:
    """Make every named type's aliases full names, as the Avro specification reads them.

    The spec lets a type alias be relative to the namespace of the type ("c" on "a.b" is "a.c"),
    and Java's parser qualifies it so. avro.compatibility (1.12.2) compares the aliases as written
    with the writer's full name, so it refused a rename whose alias is the old name, unqualified.
    """
    for named in _named_types(schema):
        aliases = named.props.get("aliases")
        if isinstance(aliases, list) and named.namespace:
            named.set_prop("aliases", [a if "." in a else f"{named.namespace}.{a}" for a in aliases])


def _named_types(schema: Schema) -> Iterator[NamedSchema]:
    """Every named type in `schema`, once each (a recursive type refers back to itself)."""
    seen: set[int] = set()
    todo = [schema]
    while todo:
        part = todo.pop()
        if id(part) in seen:
            continue
        seen.add(id(part))
        if isinstance(part, NamedSchema):
            yield part
        todo.extend(_parts(part))


def _parts(schema: Schema) -> list[Schema]:
    if isinstance(schema, RecordSchema):
        return [f.type for f in schema.fields]
    if isinstance(schema, ArraySchema):
        return [schema.items]
    if isinstance(schema, MapSchema):
        return [schema.values]
    if isinstance(schema, UnionSchema):
        return list(schema.schemas)
    return []


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


def check_tree(
    repo: Path, schema_root: Path, mode: Mode = Mode.FULL
) -> tuple[int, list[CompatProblem]]:
    """Check each `.avsc` under `schema_root` against its history in `mode`; return (pairs checked,
    problems). Every earlier version is checked, not only the last: data of each may still be read."""
    _require_repository(repo, schema_root)
    checked, problems = 0, []
    for path in sorted(schema_root.rglob("*.avsc")):
        current = path.read_text()
        for commit, old in history(repo, path):
            if old == current:
                continue
            checked += 1
            reason = readable_by(old, current, mode)
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


def check_roots(repo: Path, roots: list[Path], mode: Mode = Mode.FULL) -> CompatReport:
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
        n, found = check_tree(top, root, mode)
        checked += n
        problems.extend(found)
    return CompatReport(checked, problems, usable, skipped)
