"""A domain: the services of one saga and the facts the tools need about them, found as plug-ins.

A package adds services to `choreo` by declaring a `Domain` under the entry-point group
`choreo.services` in its pyproject.toml:

    [project.entry-points."choreo.services"]
    drone-delivery = "consumers.domain:DOMAIN"

Every installed domain is loaded and merged into one `Installation`; a fifth service in a
package of its own runs beside the reference four without a line changed in them.
`CHOREO_DOMAINS` (comma-separated `module:attribute` references) replaces the discovery, for a
domain that is not installed (a test's toy) or to run a subset.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from choreo.contract import Service
from choreo.envelope import Envelope
from choreo.exceptions import ConfigurationError

ENTRY_POINT_GROUP = "choreo.services"
DOMAINS_ENV = "CHOREO_DOMAINS"

Role = str  # "failure", "compensation" or "end": how `choreo trace` marks an event


@dataclass(frozen=True)
class Domain:
    """One package's services and what the runtime and the operators' tools need to know of them.

    name:         the domain's name (its entry point's name, by convention).
    services:     the services it declares.
    schema_dirs:  folders holding the `.avsc` of every event its services read or write.
    envelope:     the names of the fields every event carries (choreo/envelope.py): the
                  partition key (the worker keys and routes records by it; the operator tools
                  filter by it, `--key` or `--<its name>`), the saga's id (copied into a header
                  of that name and into log lines; `trace` and `replay --saga` find a saga by
                  it), the event's id, its time and its cause.
    ends:         event class -> outcome, for the events that end a saga ("completed", ...).
    roles:        event -> "failure" | "compensation" | None, for `trace` (ends are marked
                  from `ends`); without it, `failures` and `compensations` below tell.
    cli:          optional `module:function` that adds commands to the `choreo` app.

    For `choreo graph --check` (the contract graph is derived from classes, not from events):
    failures:       event classes that announce a failed step.
    compensations:  event classes that undo a step (at least sometimes: `roles` may tell, per
                    event, that one instance undid nothing).
    commands:       input classes sent from outside the services (by edge producers), so no
                    service emits them.
    terminal:       emitted classes that nobody is meant to consume, besides the saga's `ends`.
    """

    name: str
    services: tuple[Service, ...]
    schema_dirs: tuple[Path, ...]
    envelope: Envelope
    ends: Mapping[type, str] = field(default_factory=dict)
    roles: Callable[[Any], Role | None] | None = None
    cli: str | None = None
    failures: tuple[type, ...] = ()
    compensations: tuple[type, ...] = ()
    commands: tuple[type, ...] = ()
    terminal: tuple[type, ...] = ()


@dataclass(frozen=True)
class Installation:
    """Every domain in use, merged: the runtime asks this, never a domain module by name.

    The merged views are computed once: `trace` and `replay` ask them for every record.
    """

    domains: tuple[Domain, ...]

    def __post_init__(self) -> None:
        if not self.domains:
            raise ConfigurationError(
                f"no services are installed: no package declares a {ENTRY_POINT_GROUP!r} entry point"
            )
        owners: dict[str, str] = {}
        for d in self.domains:
            for s in d.services:
                if s.name in owners:
                    raise ConfigurationError(
                        f"service {s.name!r} is declared twice (domains {owners[s.name]!r} and {d.name!r})"
                    )
                owners[s.name] = d.name
        envelopes = {d.envelope for d in self.domains}
        if len(envelopes) > 1:
            raise ConfigurationError(
                "the installed domains name their envelope fields differently ("
                + "; ".join(f"{d.name}: {', '.join(d.envelope.fields)}" for d in self.domains)
                + "); one installation runs one kind of saga: choose with CHOREO_DOMAINS"
            )
        for d in self.domains:
            _check_key_field(d)

    @cached_property
    def services(self) -> tuple[Service, ...]:
        return tuple(s for d in self.domains for s in d.services)

    @cached_property
    def service_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise ConfigurationError(f"unknown service {name!r}; known services: {', '.join(self.service_names)}")

    @cached_property
    def timer_topics(self) -> frozenset[str]:
        """The own topics that carry TimerFired records: those of the services with timers."""
        return frozenset(s.own_topic for s in self.services if s.uses_timers)

    @cached_property
    def schema_dirs(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(p for d in self.domains for p in d.schema_dirs))

    @property
    def envelope(self) -> Envelope:
        return self.domains[0].envelope

    @cached_property
    def ends(self) -> dict[type, str]:
        return {cls: outcome for d in self.domains for cls, outcome in d.ends.items()}


    def outcome_of(self, event: Any) -> str | None:
        """How the saga ended, if `event` ends it."""
        return self.ends.get(type(event))

    def role_of(self, event: Any) -> Role | None:
        """The event's part in its saga for `trace`, or None for an ordinary forward step."""
        if type(event) in self.ends:
            return "end"
        for d in self.domains:
            role = d.roles(event) if d.roles else _declared_role(d, type(event))
            if role is not None:
                return role
        return None


    def cli_plugins(self) -> list[Callable[[Any], None]]:
        return [_resolve(d.cli, f"the cli of domain {d.name!r}") for d in self.domains if d.cli]


def _declared_role(domain: Domain, event_type: type) -> Role | None:
    # A domain without a `roles` function is described by its declared classes alone.
    if event_type in domain.failures:
        return "failure"
    if event_type in domain.compensations:
        return "compensation"
    return None


def _resolve(reference: str, what: str) -> Any:
    """The object named by `module:attribute`."""
    module_name, _, attribute = reference.partition(":")
    if not attribute:
        raise ConfigurationError(f"{what}: {reference!r} is not of the form module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigurationError(f"{what}: cannot import {module_name!r} ({e})") from e
    except Exception as e:  # noqa: BLE001 - a domain module failing as it loads: one sentence
        raise ConfigurationError(f"{what}: importing {module_name!r} failed ({_failure(e)})") from e
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(f"{what}: module {module_name!r} has no {attribute!r}") from None


def _check_key_field(domain: Domain) -> None:
    """Every event a service reads or writes carries the envelope's key field: the worker keys
    its outputs by it, so a misspelt name would fail on the first output, not at start."""
    key = domain.envelope.key_field
    for s in domain.services:
        for cls in dict.fromkeys([*(c for types in s.inputs.values() for c in types), *s.emits]):
            if dataclasses.is_dataclass(cls) and cls.__name__ != "TimerFired" and key not in {
                f.name for f in dataclasses.fields(cls)
            }:
                raise ConfigurationError(
                    f"domain {domain.name!r}: event {cls.__name__} of service {s.name!r} has no field "
                    f"{key!r}, the envelope's key_field: every event is keyed by it"
                )


def _failure(e: BaseException) -> str:
    """What went wrong loading a domain, in one line; the old `Domain(saga_id=...)` named."""
    if isinstance(e, TypeError) and "saga_id" in str(e):
        return ("Domain(saga_id=...) is now Domain(envelope=Envelope(key_field=..., "
                "saga_field=...)), see choreo/envelope.py")
    return f"{type(e).__name__}: {e}"


def _checked(obj: Any, what: str) -> Domain:
    if not isinstance(obj, Domain):
        raise ConfigurationError(f"{what} is a {type(obj).__name__}, not a choreo.domain.Domain")
    return obj


def _discovered() -> Iterable[Domain]:
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        what = f"entry point {ep.name!r} of group {ENTRY_POINT_GROUP!r}"
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 - any failure of a plug-in as it loads: one sentence
            raise ConfigurationError(f"{what} ({ep.value}) cannot be loaded: {_failure(e)}") from e
        yield _checked(obj, what)


_cache: dict[str, Installation] = {}


def installation() -> Installation:
    """The domains in use: those named by CHOREO_DOMAINS, else every installed one (cached)."""
    chosen = os.environ.get(DOMAINS_ENV, "").strip()
    if chosen not in _cache:
        if chosen:
            refs = [r.strip() for r in chosen.split(",") if r.strip()]
            domains = tuple(_checked(_resolve(r, f"{DOMAINS_ENV} entry {r!r}"), f"{DOMAINS_ENV} entry {r!r}")
                            for r in refs)
        else:
            domains = tuple(_discovered())
        _cache[chosen] = Installation(domains)
    return _cache[chosen]
