"""`choreo graph`: the contract graph drawn from the declarations, and `--check` on its loose ends.

No broker: the graph is read from the installed domains' declarations alone.
"""

from __future__ import annotations

import re
import shutil
import stat
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from choreo.cli.main import app
from choreo.domain import DOMAINS_ENV, Installation
from choreo.ops.graph import (
    EDGE,
    ContractGraph,
    GraphvizError,
    build_graph,
    check,
    to_dot,
    to_mermaid,
    to_svg,
)
from choreo_notifications.domain import DOMAIN as NOTIFICATIONS
from consumers.domain import DOMAIN as DRONE_DELIVERY
from tests.support import graph_domains

REPO = Path(__file__).resolve().parents[2]
REFERENCE = "consumers.domain:DOMAIN"
WITH_NOTIFICATIONS = f"{REFERENCE},choreo_notifications.domain:DOMAIN"

Node = tuple[str, ...]  # ("service", name) | ("edge",) | ("topic", topic) | ("event", topic, type)


def graph_cli(monkeypatch: pytest.MonkeyPatch, domains: str, *args: str) -> Result:
    monkeypatch.setenv(DOMAINS_ENV, domains)
    return CliRunner().invoke(app, ["graph", *args])


def test_the_reference_saga_has_no_loose_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    result = graph_cli(monkeypatch, REFERENCE, "--check")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "4 service(s) has no loose ends" in result.stderr


def test_the_notifications_plugin_beside_it_has_none_either(monkeypatch: pytest.MonkeyPatch) -> None:
    result = graph_cli(monkeypatch, WITH_NOTIFICATIONS, "--check")
    assert result.exit_code == 0, result.output


def test_a_notification_nobody_reads_is_a_loose_end_unless_declared_terminal() -> None:
    undeclared = replace(NOTIFICATIONS, terminal=())
    (problem,) = check(build_graph(Installation((DRONE_DELIVERY, undeclared))))
    assert problem.rule == "consumed by nobody"
    assert problem.message.startswith(
        "CustomerNotified, emitted by notifications on topic notifications, is consumed by nobody"
    )


def test_an_unhandled_failure_event_fails_the_check_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    result = graph_cli(monkeypatch, "tests.support.graph_domains:UNHEARD_FAILURE", "--check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "failure event ShipmentFailed, emitted by shipping on topic shipping, has no consumer that "
        "compensates: nobody consumes it."
    ]


def test_a_failure_heard_only_by_a_service_that_undoes_nothing_is_uncompensated() -> None:
    (problem,) = check(build_graph(Installation((graph_domains.UNCOMPENSATED_FAILURE,))))
    assert problem.rule == "uncompensated failure" and problem.event == "ShipmentFailed"
    assert problem.message.endswith(
        "has no consumer that compensates: its consumer auditor emits no compensation "
        "(Domain.compensations) and no saga end whose outcome is 'compensated'.")


def test_a_failure_closed_by_a_compensated_end_is_compensated() -> None:
    # Billing's only answer to the failure is the saga's compensated end, no compensation event.
    ends_only = replace(graph_domains.WHOLE, compensations=())
    assert check(build_graph(Installation((ends_only,)))) == []


def test_the_whole_test_saga_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    result = graph_cli(monkeypatch, "tests.support.graph_domains:WHOLE", "--check")
    assert result.exit_code == 0, result.output


def test_an_input_nobody_emits_fails_unless_declared_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    result = graph_cli(monkeypatch, "tests.support.graph_domains:UNSENT_COMMAND", "--check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "ChargeCard, taken from topic billing.commands by billing, is emitted there by nobody: no "
        "service writes it to that topic; if it is sent from outside the services, declare it a "
        "command (Domain.commands)."
    ]


def test_an_event_nobody_consumes_fails_unless_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    result = graph_cli(monkeypatch, "tests.support.graph_domains:UNREAD_EVENT", "--check")
    assert result.exit_code == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith("Shipped, emitted by shipping on topic shipping, is consumed by nobody")
    terminal = replace(graph_domains.UNREAD_EVENT, terminal=(graph_domains.Shipped,))
    assert check(build_graph(Installation((terminal,)))) == []


# -- drawing ---------------------------------------------------------------------------------------


def expected_edges(installation: Installation) -> set[tuple[Node, Node]]:
    """Every flow the declarations state: emitter -> event type, event type -> consumer."""
    edges: set[tuple[Node, Node]] = set()
    commands = {c for d in installation.domains for c in d.commands}
    for s in installation.services:
        edges |= {(("service", s.name), ("event", s.own_topic, c.__name__)) for c in s.emits}
        if s.uses_timers:  # the service decides on its own timers' firings
            edges.add((("event", s.own_topic, "TimerFired"), ("service", s.name)))
        for topic, classes in s.inputs.items():
            edges |= {(("event", topic, c.__name__), ("service", s.name)) for c in classes}
            edges |= {(("edge",), ("event", topic, c.__name__)) for c in classes if c in commands}
    return edges


def drawn_edges(nodes: dict[str, Node], arrows: list[tuple[str, str]]) -> set[tuple[Node, Node]]:
    """The arrows as flows; an arrow from a topic's box stands for one from each type in it."""
    edges: set[tuple[Node, Node]] = set()
    for source, target in arrows:
        start, end = nodes[source], nodes[target]
        if start[0] == "topic":
            inside = [n for n in nodes.values() if n[0] == "event" and n[1] == start[1]]
            assert inside, f"topic {start[1]} is drawn empty"
            edges |= {(n, end) for n in inside}
        else:
            edges.add((start, end))
    return edges


def mermaid_flows(text: str) -> set[tuple[Node, Node]]:
    nodes: dict[str, Node] = {}
    arrows: list[tuple[str, str]] = []
    topic = None
    for line in text.splitlines():
        if m := re.fullmatch(r'\s*subgraph (\w+) \["topic (.+)"\]', line):
            nodes[m[1]], topic = ("topic", m[2]), m[2]
        elif line.strip() == "end":
            topic = None
        elif m := re.fullmatch(r'\s*(\w+)\(\["(.+)"\]\)', line):
            nodes[m[1]] = ("edge",) if m[1] == "edge_producers" else ("event", str(topic), m[2])
        elif m := re.fullmatch(r'\s*(\w+)\{\{"(.+)"\}\}', line):
            nodes[m[1]] = ("service", m[2])
        elif m := re.fullmatch(r"\s*(\w+) --> (\w+)", line):
            arrows.append((m[1], m[2]))
    return drawn_edges(nodes, arrows)


def dot_flows(text: str) -> set[tuple[Node, Node]]:
    nodes: dict[str, Node] = {}
    arrows: list[tuple[str, str]] = []
    clusters: dict[str, str] = {}
    topic = None
    for line in text.splitlines():
        if m := re.fullmatch(r'\s*subgraph "(cluster_\w+)" \{', line):
            cluster = m[1]
        elif m := re.fullmatch(r'\s*label="topic (.+)"; .*', line):
            topic = m[1]
            nodes[cluster], clusters[cluster] = ("topic", topic), topic
        elif line.strip() == "}":
            topic = None
        elif m := re.fullmatch(r'\s*"(\w+)" \[label="(.+?)", shape=(\w+).*', line):
            kind = {"hexagon": "service", "cds": "edge"}.get(m[3], "event")
            nodes[m[1]] = {"service": ("service", m[2]), "edge": ("edge",)}.get(
                kind, ("event", str(topic), m[2]))
        elif m := re.fullmatch(r'\s*"(\w+)" -> "(\w+)"(?: \[ltail="(\w+)"\])?;', line):
            arrows.append((m[3] or m[1], m[2]))
    return drawn_edges(nodes, arrows)


@pytest.mark.parametrize("draw, flows", [(to_mermaid, mermaid_flows), (to_dot, dot_flows)])
def test_every_service_and_flow_of_the_reference_saga_is_drawn_and_nothing_else(
    draw: Callable[[ContractGraph], str], flows: Callable[[str], set[tuple[Node, Node]]]
) -> None:
    both = Installation((DRONE_DELIVERY, NOTIFICATIONS))
    drawn = flows(draw(build_graph(both)))
    assert drawn == expected_edges(both)
    services = {n for edge in drawn for n in edge if n[0] == "service"}
    assert services == {("service", s) for s in both.service_names}
    assert (("event", "packaging", "PackagingFailed"), ("service", "orders")) in drawn


def test_failures_compensations_ends_and_commands_are_coloured_apart() -> None:
    graph = build_graph(Installation((DRONE_DELIVERY,)))
    roles = {e.name: e.role for e in graph.events}
    assert roles["PackagingFailed"] == roles["OrderFailed"] == "failure"
    assert roles["StockReleased"] == roles["DroneReleased"] == "compensation"
    assert roles["OrderCompensated"] == "end" and roles["PlaceOrder"] == "command"
    assert roles["OrderPlaced"] is None
    assert {f.event.__name__ for f in graph.emitted if f.service == EDGE} == {
        "PlaceOrder", "CancelOrder", "AddStock", "RegisterDrone"}
    mermaid = to_mermaid(graph)
    failures = re.search(r"class (\S+) failure", mermaid)
    assert failures and "ev_packaging_PackagingFailed" in failures[1].split(",")


def test_the_docs_show_the_reference_graph_as_the_command_draws_it() -> None:
    page = (REPO / "docs" / "operator-tools.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```mermaid\n(.*?)```", page, flags=re.S)
    assert to_mermaid(build_graph(Installation((DRONE_DELIVERY,)))) in blocks, (
        "docs/operator-tools.md's mermaid block is stale: regenerate it with `choreo graph`")


# -- SVG -------------------------------------------------------------------------------------------


def stand_in_dot(folder: Path, body: str) -> Path:
    """An executable named `dot` running `body` (Python) on the DOT text it reads from stdin."""
    program = folder / "dot"
    program.write_text(f"#!{sys.executable}\nimport sys\nsource = sys.stdin.read()\n{body}\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


def test_svg_is_drawn_by_graphviz_when_it_is_installed_and_none_when_not() -> None:
    graph = build_graph(Installation((DRONE_DELIVERY,)))
    drawn = to_svg(graph)
    if shutil.which("dot") is None:
        assert drawn is None
    else:
        assert drawn is not None and "<svg" in drawn
        assert all(f">{name}</text>" in drawn for name in ("orders", "PackagingFailed", "edge producers"))


def test_svg_is_what_dot_makes_of_the_dot_text(tmp_path: Path) -> None:
    body = ("assert sys.argv[1:] == ['-Tsvg'], sys.argv\n"
            "print('<svg>' + str(source.count(' -> ')) + ' edges</svg>', end='')")
    program = stand_in_dot(tmp_path, body)
    graph = build_graph(Installation((graph_domains.WHOLE,)))
    assert to_svg(graph, find_program=lambda name: str(program) if name == "dot" else None) == (
        f"<svg>{to_dot(graph).count(' -> ')} edges</svg>")


def test_a_dot_that_fails_says_what_it_said(tmp_path: Path) -> None:
    program = stand_in_dot(tmp_path, "sys.exit('Error: syntax error in line 3')")
    with pytest.raises(GraphvizError, match="syntax error in line 3"):
        to_svg(build_graph(Installation((graph_domains.WHOLE,))), find_program=lambda name: str(program))


def test_svg_without_graphviz_is_one_sentence_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot` anywhere on PATH
    assert to_svg(build_graph(Installation((DRONE_DELIVERY,)))) is None
    result = graph_cli(monkeypatch, REFERENCE, "--format", "svg")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: --format svg needs graphviz's `dot` on PATH: install graphviz (e.g. `apt-get "
        "install graphviz`), or use --format mermaid or dot"
    ]


def test_svg_with_graphviz_on_path_is_written_to_the_output_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stand_in_dot(tmp_path, "print('<svg>drawn</svg>', end='')")
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "graph.svg"
    result = graph_cli(monkeypatch, REFERENCE, "--format", "svg", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text() == "<svg>drawn</svg>"
    assert f"wrote the svg graph to {out}" in result.stderr


def test_an_unknown_format_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    result = graph_cli(monkeypatch, REFERENCE, "--format", "png")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --format 'png' is not one of mermaid, dot, svg"
