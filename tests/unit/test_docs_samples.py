"""Every Python sample in the README and the docs names only what exists: a sample's imports
resolve against the installed code (a module named `my_*` stands for the reader's own package),
and it uses no name it neither imports nor defines. A reader copying a snippet gets working
lines, not an ImportError or a NameError."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import REPO

_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def samples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for n, match in enumerate(_BLOCK.finditer(page.read_text()), start=1):
            found.append((f"{page.relative_to(REPO)}#{n}", match.group(1)))
    return found


SAMPLES = samples()


def test_the_docs_have_samples_to_check() -> None:
    assert len(SAMPLES) >= 8


@pytest.mark.parametrize(("where", "code"), SAMPLES, ids=[w for w, _ in SAMPLES])
def test_a_samples_imports_exist(where: str, code: str) -> None:
    tree = ast.parse(code, filename=where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("my_"):
            continue  # the reader's own package
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert alias.name == "*" or hasattr(module, alias.name) or _is_module(
                    f"{node.module}.{alias.name}"), f"{where}: {node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def test_no_sample_uses_a_name_it_does_not_define_or_import(tmp_path: Path) -> None:
    files = []
    for n, (where, code) in enumerate(SAMPLES):
        path = tmp_path / f"sample_{n}.py"
        path.write_text(code)
        files.append((path, where))
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "F821,F822",
         "--output-format", "concise", *(str(p) for p, _ in files)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    report = checked.stdout
    for path, where in files:
        report = report.replace(str(path), where)
    assert checked.returncode == 0, report
