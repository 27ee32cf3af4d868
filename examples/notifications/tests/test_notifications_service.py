"""decide and evolve of the notifications service, without Kafka: plain functions on plain data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from choreo.domain import Installation
from choreo.serde.schemas import load_event_schemas
from choreo.testing import MemoryState, handle
from choreo_notifications.domain import DOMAIN
from choreo_notifications.events import CustomerNotified
from choreo_notifications.service import NOTIFIED, SERVICE, decide
from consumers.domain import DOMAIN as DRONE_DELIVERY
from consumers.orders.events import OrderCompensated, OrderCompleted, OrderFailed, OrderPlaced

AT = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def apply(state: MemoryState, event: Any) -> list[Any]:
    return handle(SERVICE, state, event)


def common(order_id: str = "o-1", event_id: str = "e-1") -> dict[str, Any]:
    return {"event_id": event_id, "order_id": order_id, "hub": "hub-north", "occurred_at": AT,
            "causation_id": "c-1"}


def test_a_completed_order_is_notified_once() -> None:
    state = MemoryState()
    end = OrderCompleted(**common(), package_id="p-1", drone_id="drone-01")
    (notified,) = apply(state, end)
    assert isinstance(notified, CustomerNotified)
    assert (notified.outcome, notified.order_id, notified.causation_id) == ("completed", "o-1", "e-1")
    assert "drone-01" in notified.message and notified.occurred_at == AT
    assert apply(state, end) == []  # the same end replayed
    assert state.get(NOTIFIED, "hub-north/o-1") == {"outcome": "completed",
                                                    "notification": notified.event_id}


def test_a_compensated_order_is_notified_with_the_reason() -> None:
    (notified,) = apply(MemoryState(), OrderCompensated(**common(), reason="OUT_OF_STOCK"))
    assert notified.outcome == "compensated" and "OUT_OF_STOCK" in notified.message


def test_a_retried_decision_writes_the_same_event() -> None:
    end = OrderCompleted(**common(), package_id="p-1", drone_id="drone-01")
    assert decide(MemoryState(), end) == decide(MemoryState(), end)


def test_other_orders_events_and_other_orders_are_left_alone() -> None:
    state = MemoryState()
    assert apply(state, OrderPlaced(**common(), sku="SKU-0001", quantity=1, address="a")) == []
    assert apply(state, OrderFailed(**common(), reason="OUT_OF_STOCK")) == []
    apply(state, OrderCompleted(**common(), package_id="p", drone_id="d"))
    (other,) = apply(state, OrderCompleted(**common("o-2", "e-2"), package_id="p", drone_id="d"))
    assert other.order_id == "o-2"


def test_the_events_match_their_schemas_and_the_domain_joins_the_reference_one() -> None:
    # The same check choreo makes before a worker starts: fields, order and nullability.
    schemas = load_event_schemas([CustomerNotified, *SERVICE.inputs["orders"]], *DOMAIN.schema_dirs)
    assert CustomerNotified.SCHEMA in schemas
    both = Installation((DRONE_DELIVERY, DOMAIN))
    assert both.service_names[-1] == "notifications" and both.envelope.saga_field == "order_id"
