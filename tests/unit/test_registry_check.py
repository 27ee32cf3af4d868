"""`schemas check --registry` against registries that answer otherwise than the happy path:
a subject the registry does not hold, a wrong URL, and a refusal explained by the rules."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError

from choreo.exceptions import ConfigurationError
from choreo.provision import installed_schemas
from choreo.serde.registry_check import check_against_registry
from choreo.settings import Settings
from consumers.packaging.events import AddStock
from consumers.packaging.service import SERVICE

SETTINGS = Settings(schema_registry_url="http://user:secret@127.0.0.1:1/apis/ccompat/v7")


class _Registry:
    """A registry that raises `error` when asked for versions, or holds `held` for every subject."""

    def __init__(self, error: SchemaRegistryError | None = None, held: str = "", fits: bool = True):
        self.error, self.held, self.fits = error, held, fits

    def get_versions(self, subject: str) -> list[int]:
        if self.error is not None:
            raise self.error
        return [1]

    def test_compatibility_all_versions(self, subject: str, schema: Any) -> bool:
        return self.fits

    def get_compatibility(self, subject: str | None = None) -> str:
        return "FULL_TRANSITIVE"

    def get_version(self, subject: str, version: int) -> Any:
        return type("Registered", (), {"schema": type("S", (), {"schema_str": self.held})()})()


def load_schemas() -> dict[str, Any]:
    return installed_schemas([SERVICE])


def _check(registry: _Registry, schemas: dict[str, Any] | None = None) -> list[Any]:
    return check_against_registry(registry, SETTINGS, [SERVICE], schemas or load_schemas())  # type: ignore[arg-type]


def test_a_subject_the_registry_does_not_hold_is_new() -> None:
    verdicts = _check(_Registry(SchemaRegistryError(404, 40401, "Subject not found")))
    assert verdicts and all(v.versions == 0 and v.refusal is None for v in verdicts)


def test_a_404_that_is_not_the_registrys_answer_is_a_wrong_url_in_one_sentence() -> None:
    with pytest.raises(ConfigurationError) as refused:
        _check(_Registry(SchemaRegistryError(404, -1, "<html>Not Found</html>")))
    said = str(refused.value)
    assert "Confluent-compatible API" in said and "secret" not in said and "\n" not in said


def test_a_refusal_names_the_version_and_the_rule() -> None:
    schemas = load_schemas()
    name = AddStock.SCHEMA
    held = schemas[name].text
    edited = json.loads(held)
    edited["fields"].append({"name": "note", "type": "string"})
    schemas = {**schemas, name: replace(schemas[name], text=json.dumps(edited))}
    verdicts = _check(_Registry(held=held, fits=False), schemas)
    refusals = {v.refusal for v in verdicts}
    assert (f"not FULL_TRANSITIVE-compatible with version 1 of the subject: {name} at AddStock: "
            "field 'note' added without a default") in refusals
