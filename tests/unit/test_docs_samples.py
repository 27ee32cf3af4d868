"""Every Python sample in the README and the docs runs: each is executed as a module of its own
(a module named `my_*` is the reader's own package: tests/support/doc_readers holds the events a
reader would write for it), and what it defines is then used as a reader would use it. A sample
marked `<!-- sample needs: stack -->` talks to Kafka: tests/e2e/test_docs_samples_on_stack.py
runs those. Statically, too: imports resolve and no name is used that is neither imported nor
defined. A reader copying a snippet gets working lines, not an ImportError or a NameError."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from choreo.contract import Service
from choreo.in_flight import count_in_flight
from choreo.testing import MemoryState, fire_due, handle
from consumers.orders.events import OrderCompleted, OrderPlaced
from harness.paths import REPO

_BLOCK = re.compile(r"^(<!-- sample needs: (\w+) -->\n)?```python\n(.*?)^```", re.S | re.M)
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
READERS_PACKAGES = REPO / "tests" / "support" / "doc_readers"
# Where a sample that finds files beside itself (`Path(__file__)`) is taken to live: the plug-in
# package the writing-a-service guide builds, examples/notifications.
SAMPLE_HOME = REPO / "examples" / "notifications" / "choreo_notifications" / "sample.py"


def samples(needs: str | None = None) -> list[tuple[str, str]]:
    """(page#n, code) of every sample that needs `needs` (None: nothing but Python)."""
    found = []
    for page in PAGES:
        for n, match in enumerate(_BLOCK.finditer(page.read_text()), start=1):
            if match.group(2) == needs:
                found.append((f"{page.relative_to(REPO)}#{n}", match.group(3)))
    return found


ALL_SAMPLES = [s for needs in (None, "stack") for s in samples(needs)]
SAMPLES = samples()


def test_the_docs_have_samples_to_check() -> None:
    assert len(SAMPLES) >= 7 and len(samples("stack")) >= 1


@pytest.mark.parametrize(("where", "code"), ALL_SAMPLES, ids=[w for w, _ in ALL_SAMPLES])
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
    for n, (where, code) in enumerate(ALL_SAMPLES):
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


# -- running them -------------------------------------------------------------------------------

AT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def _envelope(order_id: str = "o-1") -> dict[str, Any]:
    return {"event_id": f"e-{order_id}", "order_id": order_id, "hub": "hub-north",
            "occurred_at": AT, "causation_id": None}


def _notifies_once(ran: dict[str, Any]) -> None:
    """The notifications service's decide and evolve: one notice per order end, replay or not."""
    service = Service(name="notifications", inputs={}, emits=(), decide=ran["decide"],
                      evolve=ran["evolve"])
    state = MemoryState()
    end = OrderCompleted(**_envelope(), package_id="p-1", drone_id="drone-01")
    (notified,) = handle(service, state, end)
    assert notified.outcome == "completed" and notified.order_id == "o-1"
    assert handle(service, state, end) == []


def _reminds_after_an_hour(ran: dict[str, Any]) -> None:
    """The reminders service arms a timer per order and reminds once, an hour later."""
    service, state = ran["SERVICE"], MemoryState()
    placed = OrderPlaced(**_envelope(), sku="SKU-0001", quantity=1, address="1 Harbour Street")
    (armed,) = handle(service, state, placed)
    assert type(armed).__name__ == "ReminderArmed"
    assert fire_due(service, state, AT + timedelta(minutes=59)) == []
    (reminded,) = fire_due(service, state, AT + timedelta(hours=1))
    assert type(reminded).__name__ == "CustomerReminded" and reminded.order_id == "o-1"
    assert fire_due(service, state, AT + timedelta(hours=2)) == []


def _holds_the_seat_while_in_flight(ran: dict[str, Any]) -> None:
    from my_seats.events import SeatHeld, SeatSold

    state = MemoryState()
    ran["evolve"](state, SeatHeld(**_envelope(), seat="A-12"))
    assert count_in_flight(state) == 1
    ran["evolve"](state, SeatSold(**_envelope()))
    assert count_in_flight(state) == 0


def _its_tests_pass(ran: dict[str, Any]) -> None:
    tests = [f for name, f in ran.items() if name.startswith("test_") and callable(f)]
    assert tests, "a sample of tests defines none"
    for test in tests:
        test()


def _defines(*names: str) -> Callable[[dict[str, Any]], None]:
    def check(ran: dict[str, Any]) -> None:
        assert all(n in ran for n in names), f"expected it to define {names}"
    return check


# What a reader does with each sample once it ran: keyed by where it is, and every sample has one
# (test_every_sample_is_used_after_it_runs), so a new or moved sample fails until it is given one.
USES: dict[str, Callable[[dict[str, Any]], None]] = {
    "docs/writing-a-service.md#1": _defines("CustomerNotified"),
    "docs/writing-a-service.md#2": _notifies_once,
    "docs/writing-a-service.md#3": _reminds_after_an_hour,
    "docs/writing-a-service.md#4": _holds_the_seat_while_in_flight,
    "docs/writing-a-service.md#5": _defines("SERVICE"),
    "docs/writing-a-service.md#6": _defines("DOMAIN"),
    "docs/writing-a-service.md#8": _its_tests_pass,
}


def test_every_sample_is_used_after_it_runs() -> None:
    assert sorted(USES) == sorted(where for where, _ in SAMPLES)


def _run(where: str, code: str) -> dict[str, Any]:
    """`code` executed as a module of its own, as if it were a file of the reader's package."""
    name = "docs_sample_" + re.sub(r"\W", "_", where)
    module = types.ModuleType(name)
    module.__file__ = str(SAMPLE_HOME)
    sys.modules[name] = module  # dataclasses look their module up while making the class
    try:
        exec(compile(code, where, "exec"), module.__dict__)  # noqa: S102 - the docs' own samples
    finally:
        del sys.modules[name]
    return module.__dict__


@pytest.mark.parametrize(("where", "code"), SAMPLES, ids=[w for w, _ in SAMPLES])
def test_a_sample_runs_and_does_what_the_docs_say(
    where: str, code: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(READERS_PACKAGES))
    USES[where](_run(where, code))
