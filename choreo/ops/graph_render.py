"""The contract graph as Mermaid (GitHub renders it), as DOT, and as SVG through graphviz's `dot`.

Both texts draw the same picture: services as hexagons, each topic as a box holding its event
types, an arrow from the emitter (a service, or the edge for a command) to each event type it
emits, and an arrow from an event type to each service consuming it. A service that takes every
type of a topic gets one arrow from the topic's box instead of one per type. Event types are
coloured by role: command, failure, compensation, saga end, terminal.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator

from choreo.exceptions import ChoreoError
from choreo.ops.contract_graph import EDGE, ContractGraph, EventNode

FindProgram = Callable[[str], str | None]

# role -> (fill, stroke); the Mermaid class of a role is its name ("end" is a Mermaid keyword).
_COLOURS = {
    "command": ("#e8eaf6", "#3949ab"),
    "failure": ("#fde2e2", "#c62828"),
    "compensation": ("#fff3cd", "#b7791f"),
    "end": ("#e3f4e1", "#2e7d32"),
    "terminal": ("#eeeeee", "#616161"),
}
_SERVICE = ("#dbe9f6", "#1f4e79")
_PLAIN = ("#ffffff", "#333333")  # an ordinary forward step
_EDGE_LABEL = "edge producers"
_DOT_TIMEOUT_S = 60.0


class GraphvizError(ChoreoError):
    """graphviz's `dot` failed to draw the graph."""


class _Ids:
    """Readable node ids, unique even when two names only differ by punctuation."""

    def __init__(self) -> None:
        self._given: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, name: str) -> str:
        key = (kind, name)
        if key not in self._given:
            base = f"{kind}_{re.sub(r'[^A-Za-z0-9]', '_', name)}"
            taken = set(self._given.values())
            candidate, n = base, 1
            while candidate in taken:
                n += 1
                candidate = f"{base}_{n}"
            self._given[key] = candidate
        return self._given[key]


def _event_id(ids: _Ids, node: EventNode) -> str:
    return ids("ev", f"{node.topic}/{node.name}")


def _consumer_edges(graph: ContractGraph, ids: _Ids) -> Iterator[tuple[str, str, str | None]]:
    """(source id, consumer id, topic or None): from a topic when its whole content is taken."""
    done: set[tuple[str, str]] = set()
    for flow in graph.consumed:
        target = ids("svc", flow.service)
        if graph.takes_whole_topic(flow.service, flow.topic):
            if (flow.service, flow.topic) not in done:
                done.add((flow.service, flow.topic))
                yield ids("topic", flow.topic), target, flow.topic
        else:
            node = EventNode(flow.topic, flow.event, None)
            yield _event_id(ids, node), target, None


def _emitter_id(ids: _Ids, service: str) -> str:
    return "edge_producers" if service == EDGE else ids("svc", service)


def to_mermaid(graph: ContractGraph) -> str:
    """A Mermaid flowchart of the graph (left to right)."""
    ids = _Ids()
    lines = ["flowchart LR"]
    if any(f.service == EDGE for f in graph.emitted):
        lines.append(f'    edge_producers(["{_EDGE_LABEL}"])')
    lines += [f'    {ids("svc", s.name)}{{{{"{_mermaid_text(s.name)}"}}}}' for s in graph.services]
    for topic in graph.topics:
        lines.append(f'    subgraph {ids("topic", topic)} ["topic {_mermaid_text(topic)}"]')
        lines += [f'        {_event_id(ids, e)}(["{_mermaid_text(e.name)}"])' for e in graph.events_on(topic)]
        lines.append("    end")
    lines += [f"    {_emitter_id(ids, f.service)} --> {_event_id(ids, EventNode(f.topic, f.event, None))}"
              for f in graph.emitted]
    lines += [f"    {source} --> {target}" for source, target, _ in _consumer_edges(graph, ids)]
    lines.append(f"    classDef service fill:{_SERVICE[0]},stroke:{_SERVICE[1]}")
    if graph.services:
        lines.append(f"    class {','.join(ids('svc', s.name) for s in graph.services)} service")
    for role, (fill, stroke) in (*_COLOURS.items(), (None, _PLAIN)):
        members = [_event_id(ids, e) for e in graph.events if e.role == role]
        if members:
            lines.append(f"    classDef {_mermaid_class(role)} fill:{fill},stroke:{stroke}")
            lines.append(f"    class {','.join(members)} {_mermaid_class(role)}")
    return "\n".join(lines) + "\n"


def _mermaid_class(role: str | None) -> str:
    return "saga_end" if role == "end" else role or "event"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def to_dot(graph: ContractGraph) -> str:
    """The graph in graphviz's DOT language (left to right, one cluster per topic)."""
    ids = _Ids()
    lines = [
        "digraph choreography {",
        "    rankdir=LR; compound=true;",
        '    graph [fontname="Helvetica", fontsize=12];',
        '    node [fontname="Helvetica", fontsize=11]; edge [color="#555555"];',
    ]
    if any(f.service == EDGE for f in graph.emitted):
        lines.append(f'    "edge_producers" [label={_quoted(_EDGE_LABEL)}, shape=cds];')
    lines += [f'    "{ids("svc", s.name)}" [label={_quoted(s.name)}, shape=hexagon, style=filled, '
              f'fillcolor="{_SERVICE[0]}", color="{_SERVICE[1]}"];' for s in graph.services]
    first_event: dict[str, str] = {}
    for topic in graph.topics:
        cluster = f"cluster_{ids('topic', topic)}"
        lines.append(f'    subgraph "{cluster}" {{')
        lines.append(f'        label={_quoted("topic " + topic)}; style="rounded,dashed";')
        for e in graph.events_on(topic):
            first_event.setdefault(topic, _event_id(ids, e))
            fill, stroke = _COLOURS.get(e.role or "", _PLAIN)
            lines.append(f'        "{_event_id(ids, e)}" [label={_quoted(e.name)}, shape=box, '
                         f'style="rounded,filled", fillcolor="{fill}", color="{stroke}"];')
        lines.append("    }")
    lines += [f'    "{_emitter_id(ids, f.service)}" -> "{_event_id(ids, EventNode(f.topic, f.event, None))}";'
              for f in graph.emitted]
    for source, target, whole_topic in _consumer_edges(graph, ids):
        if whole_topic is None:
            lines.append(f'    "{source}" -> "{target}";')
        else:
            # An edge leaves a cluster from one of its nodes, clipped at the cluster's border.
            lines.append(f'    "{first_event[whole_topic]}" -> "{target}" [ltail="cluster_{source}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_svg(graph: ContractGraph, find_program: FindProgram = shutil.which) -> str | None:
    """The graph drawn by graphviz as SVG, or None when graphviz's `dot` is not on PATH."""
    dot = find_program("dot")
    if dot is None:
        return None
    try:
        done = subprocess.run([dot, "-Tsvg"], input=to_dot(graph), capture_output=True, text=True,
                              timeout=_DOT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GraphvizError(f"graphviz's dot ({dot}) could not draw the graph: {e}") from e
    if done.returncode != 0:
        said = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
        raise GraphvizError(f"graphviz's dot ({dot}) could not draw the graph: {said}")
    return done.stdout
