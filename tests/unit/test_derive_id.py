"""derive_id is uuid5 of the cause and purpose in the project's namespace, exactly."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from choreo.contract import _DERIVED_ID_NAMESPACE, derive_id


@given(st.text(max_size=60), st.text(max_size=20))
def test_derive_id_is_the_uuid5_string(cause: str, purpose: str) -> None:
    assert derive_id(cause, purpose) == str(uuid.uuid5(_DERIVED_ID_NAMESPACE, f"{cause}/{purpose}"))


def test_purposes_of_one_cause_give_different_ids() -> None:
    cause = "0ed90475-9531-485d-9d9d-c9f81818e811"
    assert derive_id(cause, "package") != derive_id(cause, "PackagePrepared")
