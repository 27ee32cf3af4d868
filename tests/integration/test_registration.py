"""`choreo schemas register` against the real registry: subjects, compatibility, refusals."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import Schema

from choreo.exceptions import SchemaError
from choreo.kafka import clients
from choreo.serde.codec import subject_for
from choreo.serde.registration import COMPATIBILITY, register_all
from choreo.serde.registry_check import check_against_registry
from choreo.serde.schemas import EventSchema
from tests.support.toy_pipeline import SERVICES, ToyPipeline

pytestmark = pytest.mark.integration


def test_subjects_use_topic_record_names_and_full_transitive(toy: ToyPipeline) -> None:
    registry = clients.registry_client(toy.settings)
    subject = subject_for(toy.topic("counter"), "toy.counter.NumberCounted")
    # Asked by name: the registry's list of every subject is paged, and the shared stack holds
    # every test's subjects (the list stopped short of this one once the suite grew).
    assert registry.get_versions(subject) == [1]
    assert registry.get_compatibility(subject) == COMPATIBILITY


def test_an_incompatible_change_is_refused_with_the_file_named(toy: ToyPipeline) -> None:
    es = toy.schemas["toy.counter.NumberCounted"]
    broken = json.loads(es.text)
    broken["fields"] = [f for f in broken["fields"] if f["name"] != "total"] + [
        {"name": "total", "type": "string", "doc": "now a string: not readable from old data"}
    ]
    changed = EventSchema(es.cls, es.name, json.dumps(broken), es.parsed, es.path)
    schemas = {**toy.schemas, es.name: changed}
    registry = clients.registry_client(toy.settings)
    with pytest.raises(SchemaError, match="NumberCounted"):
        register_all(registry, toy.settings, SERVICES, schemas)
    subject = subject_for(toy.topic("counter"), es.name)
    assert len(registry.get_versions(subject)) == 1
    # The unchanged schema still registers (idempotently) under the same id.
    again = registry.register_schema(subject, Schema(es.text, "AVRO"))
    assert again == toy.codec.schema_id(toy.topic("counter"), es.name)


def _edited(toy: ToyPipeline, *fields: dict[str, object]) -> dict[str, EventSchema]:
    es = toy.schemas["toy.counter.NumberCounted"]
    edited = json.loads(es.text)
    edited["fields"] = [*edited["fields"], *fields]
    return {**toy.schemas, es.name: EventSchema(es.cls, es.name, json.dumps(edited), es.parsed, es.path)}


def test_the_registry_refuses_a_field_added_without_a_default_and_names_it(toy: ToyPipeline) -> None:
    registry = clients.registry_client(toy.settings)
    breaking = _edited(toy, {"name": "priority", "type": "int"})
    verdicts = {v.subject: v for v in check_against_registry(registry, toy.settings, SERVICES, breaking)}
    subject = subject_for(toy.topic("counter"), "toy.counter.NumberCounted")
    refused = [v for v in verdicts.values() if v.refusal is not None]
    assert [v.subject for v in refused] == [subject]
    assert refused[0].refusal == (
        f"not {COMPATIBILITY}-compatible with version 1 of the subject: toy.counter.NumberCounted "
        "at NumberCounted: field 'priority' added without a default")
    with pytest.raises(SchemaError, match="schemas check --registry"):
        register_all(registry, toy.settings, SERVICES, breaking)


def test_the_registry_takes_a_field_added_with_a_default(toy: ToyPipeline) -> None:
    registry = clients.registry_client(toy.settings)
    compatible = _edited(toy, {"name": "priority", "type": "int", "default": 0})
    verdicts = check_against_registry(registry, toy.settings, SERVICES, compatible)
    assert verdicts and all(v.refusal is None and v.versions == 1 for v in verdicts)
