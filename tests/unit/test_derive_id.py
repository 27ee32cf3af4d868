"""derive_id is uuid5 of the cause and purpose in the project's namespace, exactly."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from choreo.contract import _DERIVED_ID_NAMESPACE, derive_id

# A purpose is a fixed name (an output's class, "package"), never holding '/'.
purposes = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), max_size=20)
causes = st.text(alphabet=st.sampled_from("/ab") | st.characters(codec="utf-8"), max_size=60)


@given(causes, purposes)
def test_derive_id_is_the_uuid5_string(cause: str, purpose: str) -> None:
    assert derive_id(cause, purpose) == str(uuid.uuid5(_DERIVED_ID_NAMESPACE, f"{cause}/{purpose}"))


@given(causes, purposes, causes, purposes)
def test_different_causes_or_purposes_give_different_ids(c1: str, p1: str, c2: str, p2: str) -> None:
    # The joined text is what is hashed: it must differ whenever the pair does.
    assert (f"{c1}/{p1}" == f"{c2}/{p2}") == ((c1, p1) == (c2, p2))


def test_a_purpose_holding_the_separator_is_refused() -> None:
    # ("a", "b/c") and ("a/b", "c") would otherwise derive the same id.
    with pytest.raises(ValueError, match="holds '/'"):
        derive_id("a", "b/c")


def test_purposes_of_one_cause_give_different_ids() -> None:
    cause = "0ed90475-9531-485d-9d9d-c9f81818e811"
    assert derive_id(cause, "package") != derive_id(cause, "PackagePrepared")
