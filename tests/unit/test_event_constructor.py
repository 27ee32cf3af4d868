"""The decoder's per-class constructor builds the same event as the class's own __init__."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from choreo.serde.schemas import constructor, to_record
from consumers.orders.events import OrderPlaced

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Plain:
    a: int
    b: str | None


@dataclass(frozen=True, slots=True)
class Checked:
    a: int
    seen: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seen.append(self.a)


def test_a_slotted_event_is_built_equal_and_frozen() -> None:
    event = OrderPlaced(event_id="e", order_id="o", hub="h", occurred_at=T0, causation_id=None,
                        sku="SKU-0001", quantity=2, address="1 Road")
    built = constructor(OrderPlaced)(to_record(event))
    assert built == event and type(built) is OrderPlaced
    with pytest.raises(AttributeError):
        built.quantity = 3  # type: ignore[misc]


def test_a_missing_field_is_an_error_not_a_half_built_event() -> None:
    record = to_record(OrderPlaced(event_id="e", order_id="o", hub="h", occurred_at=T0,
                                   causation_id=None, sku="S", quantity=1, address="a"))
    del record["sku"]
    with pytest.raises(KeyError):
        constructor(OrderPlaced)(record)


def test_other_classes_go_through_their_init() -> None:
    assert constructor(Plain)({"a": 1, "b": None}) == Plain(1, None)
    checked = constructor(Checked)({"a": 5, "seen": []})
    assert checked.seen == [5]  # __post_init__ ran
