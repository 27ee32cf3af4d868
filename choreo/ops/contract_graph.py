"""The choreography's contract graph: who emits and who consumes each event type, from the declarations.

No Kafka and no log: the graph is what the installed domains declare (each `Service`'s `inputs`
and `emits`, each `Domain`'s roles, ends, commands and terminal events), so it shows the
contract, not the traffic. A service writes only to its own topic; a command has no service
emitting it: it comes from `EDGE`, the producers outside the services.
"""

from __future__ import annotations

from dataclasses import dataclass

from choreo.domain import Installation
from choreo.timers import TimerFired

EDGE = "edge"  # the emitter of commands: producers outside the services


@dataclass(frozen=True)
class ServiceNode:
    """A service: its name, the domain declaring it and its one-line description."""

    name: str
    domain: str
    description: str


@dataclass(frozen=True)
class EventNode:
    """One event type on one topic (the same class on two topics is two nodes)."""

    topic: str
    event: type
    role: str | None  # "command", "failure", "compensation", "end", "terminal" or None

    @property
    def name(self) -> str:
        return self.event.__name__


@dataclass(frozen=True)
class Flow:
    """An edge: `service` emits (or consumes) `event` on `topic`; `service` is EDGE for a command."""

    service: str
    topic: str
    event: type


@dataclass(frozen=True)
class ContractGraph:
    """Services, topics and event types, and the flows between them, with the facts `check` needs."""

    services: tuple[ServiceNode, ...]
    topics: tuple[str, ...]
    events: tuple[EventNode, ...]
    emitted: tuple[Flow, ...]
    consumed: tuple[Flow, ...]
    failures: frozenset[type]
    compensations: frozenset[type]
    ends: dict[type, str]  # event class -> outcome ("completed", "compensated", ...)
    terminal: frozenset[type]  # declared terminal, ends excluded

    def events_on(self, topic: str) -> tuple[EventNode, ...]:
        return tuple(e for e in self.events if e.topic == topic)

    def emitters(self, topic: str, event: type) -> tuple[str, ...]:
        return tuple(f.service for f in self.emitted if (f.topic, f.event) == (topic, event))

    def consumers(self, topic: str, event: type) -> tuple[str, ...]:
        return tuple(f.service for f in self.consumed if (f.topic, f.event) == (topic, event))

    def emitted_by(self, service: str) -> tuple[type, ...]:
        return tuple(f.event for f in self.emitted if f.service == service)

    def takes_whole_topic(self, service: str, topic: str) -> bool:
        """Whether `service` consumes every event type on `topic` (drawn as one edge from the topic)."""
        taken = {f.event for f in self.consumed if (f.service, f.topic) == (service, topic)}
        return bool(taken) and taken == {e.event for e in self.events_on(topic)}


def build_graph(installation: Installation) -> ContractGraph:
    """The contract graph of every installed domain, in declaration order."""
    failures = frozenset(c for d in installation.domains for c in d.failures)
    compensations = frozenset(c for d in installation.domains for c in d.compensations)
    commands = frozenset(c for d in installation.domains for c in d.commands)
    ends = installation.ends
    terminal = frozenset(c for d in installation.domains for c in d.terminal) - set(ends)

    services = tuple(ServiceNode(s.name, d.name, s.description)
                     for d in installation.domains for s in d.services)
    emitted = [Flow(s.name, s.own_topic, cls) for s in installation.services for cls in s.emits]
    consumed = [Flow(s.name, topic, cls)
                for s in installation.services for topic, classes in s.inputs.items() for cls in classes]
    # A timer's firing is recorded on the own topic and decided by the service that set it: a
    # loop, from which its `on_timer` events follow (timer-driven).
    consumed += [Flow(s.name, s.own_topic, TimerFired) for s in installation.services if s.uses_timers]
    emitted_pairs = {(f.topic, f.event) for f in emitted}
    # A command reaches a topic from the edge: whichever topic a service takes it from.
    emitted += [Flow(EDGE, f.topic, f.event) for f in dict.fromkeys(consumed)
                if f.event in commands and (f.topic, f.event) not in emitted_pairs]
    emitted = list(dict.fromkeys(emitted))

    pairs = dict.fromkeys((f.topic, f.event) for f in (*emitted, *consumed))
    # The topics the edge writes to first: that is where the sagas start.
    from_edge = {f.topic for f in emitted if f.service == EDGE}
    topics = tuple(sorted(dict.fromkeys(topic for topic, _ in pairs), key=lambda t: t not in from_edge))

    def role(cls: type) -> str | None:
        if cls in commands:
            return "command"
        if cls in ends:
            return "end"
        if cls in failures:
            return "failure"
        if cls in compensations:
            return "compensation"
        return "terminal" if cls in terminal else None

    events = tuple(EventNode(topic, cls, role(cls)) for topic in topics for t, cls in pairs if t == topic)
    return ContractGraph(
        services=services, topics=topics, events=events,
        emitted=tuple(emitted), consumed=tuple(dict.fromkeys(consumed)),
        failures=failures, compensations=compensations, ends=ends, terminal=terminal,
    )
