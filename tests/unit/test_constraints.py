"""constraints.txt, the pins `make venv`, the wheel venv and the image's builder install with.

The rules: one `name==version` line per third-party distribution, sorted as `make constraints`
writes them; every dependency either pyproject.toml declares (every extra included) is pinned to a
version its specifier allows; and the pins are closed: what a pinned distribution requires, as
installed here at its pinned version, is pinned too (a newer release that brought a dependency
of its own fails this until `make constraints` is run).
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from harness.paths import REPO

# The project's own distributions: installed from the checkout, never pinned.
OWN = {canonicalize_name("choreo"), canonicalize_name("choreo-drone-delivery")}
PYPROJECTS = (REPO / "pyproject.toml", REPO / "reference" / "pyproject.toml")


def _pin_lines() -> list[str]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def pins() -> dict[str, Version]:
    """canonical name -> the pinned version."""
    found: dict[str, Version] = {}
    for line in _pin_lines():
        req = Requirement(line)
        (spec,) = req.specifier  # exactly one clause
        assert spec.operator == "==" and "*" not in spec.version, f"{line!r} is not an exact pin"
        assert req.marker is None and not req.extras and req.url is None, f"{line!r}: name==version only"
        name = canonicalize_name(req.name)
        assert name not in found, f"{req.name} is pinned twice"
        found[name] = Version(spec.version)
    return found


def _declared() -> list[Requirement]:
    """Every requirement of both pyproject.toml files: dependencies and every extra's."""
    out = []
    for path in PYPROJECTS:
        project = tomllib.loads(path.read_text())["project"]
        declared = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            declared += extra
        out += [Requirement(text) for text in declared]
    return out


def test_the_file_says_how_it_is_made() -> None:
    text = (REPO / "constraints.txt").read_text()
    assert text.startswith("#") and "make constraints" in text
    assert "constraints:" in (REPO / "Makefile").read_text().splitlines()


def test_every_line_is_one_pin_and_the_project_is_not_pinned(pins: dict[str, Version]) -> None:
    assert len(pins) > 20
    assert not OWN & set(pins), "the project's own distributions come from the checkout"


def test_the_pins_are_sorted_as_make_constraints_writes_them() -> None:
    # `LC_ALL=C sort -f -t= -k1,1`: by name, case folded, in byte order.
    names = [line.partition("==")[0] for line in _pin_lines()]
    assert names == sorted(names, key=str.upper), "constraints.txt is not sorted: run `make constraints`"


def test_every_declared_dependency_is_pinned_within_its_specifier(pins: dict[str, Version]) -> None:
    declared = _declared()
    assert {"confluent-kafka", "starlette", "opentelemetry-sdk", "pytest"} <= {r.name for r in declared}
    for req in declared:
        name = canonicalize_name(req.name)
        if name in OWN:  # choreo[otel] in dev, choreo==0.1.0 in the reference's
            continue
        assert name in pins, f"{req} is declared but not pinned in constraints.txt: run `make constraints`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside {req}: run `make constraints`")


def _requires(dist: metadata.Distribution, extras: set[str]) -> list[Requirement]:
    """What `dist` needs here (this Python, this platform) with `extras` asked for."""
    needed = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
            needed.append(req)
    return needed


def test_the_pins_are_closed_under_what_the_pinned_versions_require(pins: dict[str, Version]) -> None:
    """From each declared dependency down: every requirement of a distribution installed here at
    its pinned version is pinned within its specifier. (A distribution installed at another version,
    in a venv made without the constraints, is not followed; `make venv` installs the pins.)"""
    todo = [(canonicalize_name(r.name), set(r.extras)) for r in _declared()]
    seen: set[tuple[str, frozenset[str]]] = set()
    followed, missing = 0, []
    while todo:
        name, extras = todo.pop()
        if name in OWN or (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(dist.version) != pins.get(name):
            continue
        followed += 1
        for req in _requires(dist, extras):
            dep = canonicalize_name(req.name)
            if dep not in pins or not req.specifier.contains(pins[dep], prereleases=True):
                missing.append(f"{name}=={dist.version} needs {req}, pinned: {pins.get(dep)}")
            todo.append((dep, set(req.extras)))
    if not followed:
        pytest.skip("no pinned distribution is installed at its pinned version here")
    assert not missing, "constraints.txt is out of date, run `make constraints`:\n" + "\n".join(missing)


def test_the_wheel_venv_installs_with_the_constraints() -> None:
    # The wheel venv's install passes the file (CI then installs the same versions as `make venv`).
    source = (REPO / "tests" / "support" / "wheel_venv.py").read_text()
    assert '"-c", str(REPO_ROOT / "constraints.txt")' in source


def test_make_venv_installs_with_the_constraints() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "pip install -q -c constraints.txt -e '.[dev]' -e ./reference" in makefile
    stamp_rule = next(line for line in makefile.splitlines() if line.startswith("$(STAMP):"))
    assert "constraints.txt" in stamp_rule.split()


def test_the_regeneration_asks_for_every_extra() -> None:
    # `make constraints` reads the extras from pyproject.toml, so a new extra is pinned too.
    recipe = Path(REPO / "Makefile").read_text().partition("\nconstraints:\n")[2].partition("\n\n")[0]
    assert '["optional-dependencies"]' in recipe and "--exclude-editable" in recipe
    assert "env -u PIP_CONSTRAINT" in recipe  # resolved afresh, not from the old pins
