"""Every `choreo` command line in the README's and the docs' code blocks names a command that
exists and only options that command has: a reader who copies one gets the command, not
`No such command` or `No such option`. (What the commands do is tested where they are.)"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import typer.main

from choreo.cli.main import app
from harness.paths import REPO

_FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)
_PREFIX = re.compile(r"^\s*(?:\$ )?(?:\.venv/bin/)?choreo\s")
_SHELL = {"|", "||", "&&", "&", ";", ">", ">>", "2>&1"}
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def command_lines() -> list[tuple[str, list[str]]]:
    """(page:line, arguments after `choreo`) of each command line in a code block."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for block in _FENCE.finditer(text):
            first = text.count("\n", 0, block.start(1)) + 1
            lines = block.group(1).replace("\\\n", " ").splitlines()  # continued lines joined
            for n, line in enumerate(lines):
                if not _PREFIX.match(line) or re.search(r"\[--|\[\w+\||─", line):
                    continue  # not a command; a synopsis (`[--brokers 1|3]`) or a drawing
                words = shlex.split(line, comments=True)
                args = words[[w.endswith("choreo") for w in words].index(True) + 1:]
                for i, word in enumerate(args):
                    if word in _SHELL:
                        args = args[:i]
                        break
                found.append((f"{page.relative_to(REPO)}:{first + n}", args))
    return found


LINES = command_lines()


def test_the_docs_have_command_lines_to_check() -> None:
    assert len(LINES) >= 40


def _resolve(args: list[str]) -> tuple[Any, list[str], str]:
    # Duck-typed: newer Typer releases build their commands with a copy of Click of their own.
    command: Any = typer.main.get_command(app)
    path = ["choreo"]
    while hasattr(command, "commands") and args and not args[0].startswith("-"):
        sub = command.commands.get(args[0])
        assert sub is not None, f"no command `{' '.join([*path, args[0]])}`"
        command, args, path = sub, args[1:], [*path, args[0]]
    return command, args, " ".join(path)


@pytest.mark.parametrize(("where", "args"), LINES, ids=[w for w, _ in LINES])
def test_a_command_line_names_a_command_and_its_options(where: str, args: list[str]) -> None:
    command, rest, name = _resolve(args)
    if command.context_settings.get("ignore_unknown_options"):
        return  # `choreo kafka ...` hands its options to Kafka's own tools
    options = {"--help", *(o for p in command.params for o in (*p.opts, *p.secondary_opts))}
    for word in rest:
        flag = word.split("=", 1)[0]
        if flag.startswith("--"):
            assert flag in options, f"{where}: `{name}` has no option {flag}"
