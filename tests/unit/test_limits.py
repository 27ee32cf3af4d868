"""The size caps' helpers: shown() quotes briefly, clipped() bounds, and every command field is capped."""

from __future__ import annotations

import dataclasses
import typing

from hypothesis import given
from hypothesis import strategies as st

from consumers.limits import FIELD_CAPS, FIELD_TOO_LONG, HUB_MAX, SHOWN_MAX, clipped, field_too_long, shown
from producers.commands import place_order
from tests.support.records import T0
from tests.support.reference import SERVICE_NAMES, load_service

HOSTILE_HUB = "hub-north" + "\x00" * 240_000


def _commands() -> list[type]:
    """Every command some service takes from the edge (its `*.commands` topic)."""
    return [
        cls
        for name in SERVICE_NAMES
        for topic, classes in load_service(name).inputs.items()
        if topic.endswith(".commands")
        for cls in classes
    ]


def test_every_text_field_of_every_command_has_a_cap() -> None:
    commands = _commands()
    assert {c.__name__ for c in commands} == {"PlaceOrder", "CancelOrder", "AddStock", "RegisterDrone"}
    for cls in commands:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if str in (hints[f.name], *typing.get_args(hints[f.name])):
                assert f.name in FIELD_CAPS, f"{cls.__name__}.{f.name} has no cap in consumers/limits.py"


def test_shown_quotes_a_short_value_whole() -> None:
    assert shown("hub-mars") == "'hub-mars'"
    assert shown("x" * SHOWN_MAX) == repr("x" * SHOWN_MAX)


def test_shown_cuts_a_long_value_and_says_how_long_it_was() -> None:
    text = shown(HOSTILE_HUB)
    assert text.startswith("'hub-north\\x00") and text.endswith("...(240009 chars)")
    assert len(text) <= SHOWN_MAX + len("...(240009 chars)")
    # A short value that escapes to a long repr is cut too.
    assert len(shown("\x00" * 60)) <= SHOWN_MAX + len("...(60 chars)")


def test_clipped_keeps_what_fits_and_bounds_the_rest() -> None:
    assert clipped("hub-north", HUB_MAX) == "hub-north"
    hub = clipped(HOSTILE_HUB, HUB_MAX)
    assert len(hub) == HUB_MAX and hub.isprintable() and "240009 chars" in hub
    assert hub.startswith("hub-north\\x00")
    assert clipped(hub, HUB_MAX) == hub  # clipping twice changes nothing
    # Same start, same length, different end: still told apart (rejected orders are keyed by it).
    other = "hub-north" + "\x00" * 239_999 + "!"
    assert clipped(other, HUB_MAX) != hub


@given(st.text(max_size=300), st.integers(min_value=1, max_value=200))
def test_clipped_is_bounded_idempotent_and_the_identity_within_the_cap(value: str, cap: int) -> None:
    out = clipped(value, cap)
    assert len(out) <= cap
    assert clipped(out, cap) == out
    assert (out == value) == (len(value) <= cap)


def test_field_too_long_names_each_field_its_length_and_its_limit() -> None:
    good = place_order("hub-north", "SKU-0001", 1, "1 Harbour Street, Northport", T0)
    assert field_too_long(good) is None
    bad = dataclasses.replace(good, hub=HOSTILE_HUB, sku="S" * 40)
    problem = field_too_long(bad)
    assert problem is not None
    reason, detail = problem
    assert reason == FIELD_TOO_LONG
    assert "hub is 240009 chars, over the limit of 64" in detail
    assert "sku is 40 chars, over the limit of 32" in detail
    assert len(detail) < 400
