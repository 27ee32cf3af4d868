"""The contract graph's public API: build it from the installation, draw it, check it.

    graph = build_graph(installation())
    to_mermaid(graph), to_dot(graph), to_svg(graph)  # to_svg: None without graphviz
    check(graph)                                      # [] when every end is tied up
"""

from __future__ import annotations

from choreo.ops.contract_graph import EDGE, ContractGraph, EventNode, Flow, ServiceNode, build_graph
from choreo.ops.graph_check import Problem, check, compensates
from choreo.ops.graph_render import GraphvizError, to_dot, to_mermaid, to_svg

__all__ = [
    "EDGE", "ContractGraph", "EventNode", "Flow", "GraphvizError", "Problem", "ServiceNode",
    "build_graph", "check", "compensates", "to_dot", "to_mermaid", "to_svg",
]
