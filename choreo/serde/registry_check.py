"""Asking the running registry whether each schema may be registered under its subject.

The registry is the authority: it is what refuses a registration, under the compatibility level
its subject holds. Its verdict is all its client gives back, so when it refuses, the reason is
found the way `choreo schemas check` finds one in git history: each version the subject holds,
checked against the schema by the resolution rules (choreo/serde/compat.py), one sentence naming
the version, the field and the rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from choreo.contract import Service
from choreo.exceptions import ConfigurationError
from choreo.serde.compat import Mode, readable_by
from choreo.serde.registration import answering_registry, subjects
from choreo.serde.schemas import EventSchema
from choreo.settings import Settings, redact_url

_SUBJECT_NOT_FOUND = 40401  # the registry's error code for a subject it does not hold
_MODES = {"BACKWARD": Mode.BACKWARD, "FORWARD": Mode.FORWARD, "FULL": Mode.FULL}


@dataclass(frozen=True)
class RegistryVerdict:
    subject: str
    path: Path
    versions: int  # how many versions the subject holds (0: it would be new)
    refusal: str | None  # None: the registry would take the schema


def check_against_registry(
    registry: SchemaRegistryClient,
    settings: Settings,
    services: Iterable[Service],
    schemas: dict[str, EventSchema],
) -> list[RegistryVerdict]:
    """The registry's verdict on every schema of `services` under its subject."""
    verdicts = []
    for subject, es in subjects(settings, services, schemas):
        with answering_registry(settings):
            try:
                verdicts.append(_verdict(registry, subject, es))
            except SchemaRegistryError as e:
                raise ConfigurationError(
                    f"the schema registry at {redact_url(settings.schema_registry_url)} could not "
                    f"check {es.path} against {subject} ({redact_url(str(e))}): is that URL the "
                    "registry's Confluent-compatible API?"
                ) from e
    return verdicts


def _verdict(registry: SchemaRegistryClient, subject: str, es: EventSchema) -> RegistryVerdict:
    """Raises SchemaRegistryError for anything but an answer (a 404 without the registry's
    subject-not-found code is a wrong URL, not a new subject)."""
    try:
        versions = registry.get_versions(subject)
    except SchemaRegistryError as e:
        if e.error_code == _SUBJECT_NOT_FOUND:
            return RegistryVerdict(subject, es.path, 0, None)
        raise
    fits = registry.test_compatibility_all_versions(subject, Schema(es.text, "AVRO"))
    if fits:
        return RegistryVerdict(subject, es.path, len(versions), None)
    level = _level(registry, subject)
    return RegistryVerdict(subject, es.path, len(versions), _why(registry, subject, versions, es, level))


def _level(registry: SchemaRegistryClient, subject: str) -> str:
    """The compatibility level the registry applies to `subject`: its own, else the global one."""
    try:
        return str(registry.get_compatibility(subject))
    except SchemaRegistryError:
        return str(registry.get_compatibility())


def _why(
    registry: SchemaRegistryClient, subject: str, versions: list[int], es: EventSchema, level: str,
) -> str:
    """Why the registry refuses `es` under `level`: the first version it holds that `es` breaks."""
    mode = _MODES.get(level.removesuffix("_TRANSITIVE"))
    # A transitive level checks every version; the others only the latest.
    checked = versions if level.endswith("_TRANSITIVE") else versions[-1:]
    for version in reversed(checked):
        held = registry.get_version(subject, version).schema
        reason = None if mode is None or held.schema_str is None else readable_by(
            held.schema_str, es.text, mode)
        if reason is not None:
            return f"not {level}-compatible with version {version} of the subject: {reason}"
    return (f"refused under {level}, and no version the subject holds breaks a resolution rule "
            "the local check knows: ask the registry's compatibility endpoint with verbose=true")
