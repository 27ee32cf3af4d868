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
    return replace(toy.DOMAIN, name="other", saga_id="order_id", **changes)


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


def test_domains_naming_their_saga_differently_cannot_share_an_installation() -> None:
    with pytest.raises(ConfigurationError, match="different fields"):
        Installation((DRONE_DELIVERY, replace(toy.DOMAIN, saga_id="hub")))


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
