"""`choreo graph --check`: the contract graph's loose ends, one sentence each.

Three rules, read from the declarations alone:

1. A failure event needs a consumer that compensates. A service *compensates* when it consumes
   the failure event (on the topic it is emitted on) and emits at least one event declared a
   compensation (`Domain.compensations`) or one that ends the saga as "compensated"
   (`Domain.ends`). The declarations cannot say which input causes which output, so this is
   the most they can prove: someone who hears of the failure is able to undo or close it.
2. An emitted event needs a consumer on its topic, unless it is terminal: a saga end
   (`Domain.ends`) or declared terminal (`Domain.terminal`). Failure events are left to rule 1.
3. An input type needs an emitter on the topic it is taken from: a service writing it to its own
   topic, or the edge when it is declared a command (`Domain.commands`).
"""

from __future__ import annotations

from dataclasses import dataclass

from choreo.ops.contract_graph import ContractGraph, EventNode

COMPENSATED = "compensated"  # the outcome of a saga end that closes a compensation


@dataclass(frozen=True)
class Problem:
    """One loose end: the rule it breaks, the event type and topic, and a one-sentence `message`."""

    rule: str  # "uncompensated failure", "consumed by nobody" or "emitted by nobody"
    event: str
    topic: str
    message: str


def compensates(graph: ContractGraph, service: str) -> bool:
    """Whether `service` emits a compensation event or an end whose outcome is "compensated"."""
    return any(cls in graph.compensations or graph.ends.get(cls) == COMPENSATED
               for cls in graph.emitted_by(service))


def check(graph: ContractGraph) -> list[Problem]:
    """Every broken rule of the module docstring, in the graph's order (topics, then event types)."""
    found = (_problem(graph, node) for node in graph.events)
    return [p for p in found if p is not None]


def _problem(graph: ContractGraph, node: EventNode) -> Problem | None:
    emitters = graph.emitters(node.topic, node.event)
    consumers = graph.consumers(node.topic, node.event)
    if emitters and node.event in graph.failures:
        return _uncompensated(graph, node, emitters, consumers)
    if emitters and not consumers and node.event not in (*graph.ends, *graph.terminal):
        return Problem(
            "consumed by nobody", node.name, node.topic,
            f"{node.name}, emitted by {_names(emitters)} on topic {node.topic}, is consumed by "
            f"nobody: add it to a service's inputs, or declare it terminal (Domain.terminal) "
            f"if nothing is meant to react to it.",
        )
    if consumers and not emitters:
        return Problem(
            "emitted by nobody", node.name, node.topic,
            f"{node.name}, taken from topic {node.topic} by {_names(consumers)}, is emitted "
            f"there by nobody: no service writes it to that topic; if it is sent from "
            f"outside the services, declare it a command (Domain.commands).",
        )
    return None


def _uncompensated(graph: ContractGraph, node: EventNode, emitters: tuple[str, ...],
                   consumers: tuple[str, ...]) -> Problem | None:
    if any(compensates(graph, c) for c in consumers):
        return None
    if not consumers:
        why = "nobody consumes it"
    else:
        who = f"its consumer {consumers[0]} emits" if len(consumers) == 1 else (
            f"its consumers {_names(consumers)} emit")
        why = (f"{who} no compensation (Domain.compensations) and no saga end whose outcome is "
               f"{COMPENSATED!r}")
    return Problem(
        "uncompensated failure", node.name, node.topic,
        f"failure event {node.name}, emitted by {_names(emitters)} on topic {node.topic}, has "
        f"no consumer that compensates: {why}.",
    )


def _names(services: tuple[str, ...]) -> str:
    return " and ".join(", ".join(services).rsplit(", ", 1))
