"""Merging installed domains: one service per name, one saga id field, ends and roles from each."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from choreo.domain import Domain, Installation
from choreo.exceptions import ConfigurationError
from consumers.domain import DOMAIN as DRONE_DELIVERY
from consumers.orders.events import OrderCompleted, OrderPlaced
from tests.support import toy


class Notified:
    """A stand-in event of another domain that ends its saga."""


class Refunded:
    """A stand-in event of another domain that undoes a step."""


def _refund_role(event: object) -> str | None:
    return "compensation" if isinstance(event, Refunded) else None


def _other(**changes: Any) -> Domain:
    return replace(toy.DOMAIN, **{"name": "other", "envelope": DRONE_DELIVERY.envelope, **changes})


def test_two_domains_merge_services_schema_folders_ends_and_roles() -> None:
    other = _other(ends={Notified: "notified"}, roles=_refund_role)
    merged = Installation((DRONE_DELIVERY, other))
    assert merged.service_names == ("orders", "packaging", "drones", "delivery", "counter", "doubler")
    assert merged.schema_dirs == (*DRONE_DELIVERY.schema_dirs, *toy.DOMAIN.schema_dirs)
    assert merged.outcome_of(object.__new__(OrderCompleted)) == "completed"
    assert merged.outcome_of(Notified()) == "notified"
    assert merged.role_of(Notified()) == "end"
    assert merged.role_of(Refunded()) == "compensation"  # asked of the other domain's roles
    assert merged.role_of(object.__new__(OrderPlaced)) is None


def test_a_service_declared_twice_is_one_sentence() -> None:
    with pytest.raises(ConfigurationError, match="service 'counter' is declared twice"):
        Installation((toy.DOMAIN, _other()))


def test_domains_naming_their_envelope_differently_cannot_share_an_installation() -> None:
    with pytest.raises(ConfigurationError, match="name their envelope fields differently"):
        Installation((DRONE_DELIVERY, toy.DOMAIN))  # the toy's saga field is its hub
    with pytest.raises(ConfigurationError, match="choose with CHOREO_DOMAINS"):
        Installation((DRONE_DELIVERY, _other(envelope=replace(DRONE_DELIVERY.envelope, key_field="k"))))


@pytest.mark.parametrize("names", [{"key_field": "not an identifier"}, {"saga_field": ""}])
def test_an_envelope_field_that_is_not_a_name_is_refused(names: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="identifiers"):
        replace(DRONE_DELIVERY.envelope, **names)


def test_no_domain_at_all_says_what_to_install() -> None:
    with pytest.raises(ConfigurationError, match="no services are installed"):
        Installation(())


def test_an_unknown_service_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="known services: counter, doubler"):
        Installation((toy.DOMAIN,)).service("billing")


def test_without_a_roles_function_the_declared_classes_say_failure_and_compensation() -> None:
    other = _other(roles=None, failures=(Notified,), compensations=(Refunded,))
    merged = Installation((DRONE_DELIVERY, other))
    assert merged.role_of(Notified()) == "failure"
    assert merged.role_of(Refunded()) == "compensation"


def test_a_service_says_where_its_group_first_reads_and_nothing_else() -> None:
    assert toy.COUNTER.first_read == "earliest"
    assert replace(toy.COUNTER, first_read="latest").first_read == "latest"
    with pytest.raises(ValueError, match="first_read 'middle' is not one of earliest, latest"):
        replace(toy.COUNTER, first_read="middle")


def test_a_key_field_that_an_event_lacks_is_refused_when_the_domain_loads() -> None:
    from choreo.envelope import Envelope

    misspelt = replace(toy.DOMAIN, envelope=Envelope(key_field="acount", saga_field="hub"))
    with pytest.raises(ConfigurationError, match="AddNumber of service 'counter' has no field 'acount'"):
        Installation((misspelt,))


def test_a_domain_module_that_fails_as_it_loads_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    from choreo.domain import DOMAINS_ENV, installation

    monkeypatch.setenv(DOMAINS_ENV, "tests.support.broken_domain:DOMAIN")
    with pytest.raises(ConfigurationError, match=r"Domain\(saga_id=\.\.\.\) is now Domain\(envelope="):
        installation()
