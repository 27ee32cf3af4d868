"""The one rule for the ids a command names things by (order, drone, hub), used by every service and the CLI.

An id may hold any printable text: '/' and '%' included, since state keys escape their parts
(choreo/keys.py). It may not be empty or blank (nothing to name), hold control or format
characters (invisible in logs and terminals, so two ids would look alike), or have the form of
the stand-in an over-long id is clipped to (consumers/limits.py), since a rejection of that
over-long id is keyed by its stand-in. A command breaking the rule is answered by its rejection
event with the reason in ID_REASONS.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from consumers.limits import FIELD_CAPS, looks_clipped, shown

# Control, format (bidi overrides, zero-width), surrogate, line and paragraph separator.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# The reason code of a command whose id breaks the rule, by field. The hub has no code of its own:
# a command's hub must be one of ours (UNKNOWN_HUB), and every hub of ours keeps the rule.
ID_REASONS: Final[Mapping[str, str]] = {
    "order_id": "INVALID_ORDER_ID",
    "drone_id": "INVALID_DRONE_ID",
}


def id_problem(field: str, value: str) -> str | None:
    """Why `value` cannot be the `field` ("order_id", "drone_id", "hub") of a command, or None."""
    name = field.replace("_", " ")
    if not value.strip():
        return f"{name} {shown(value)} is empty or blank"
    refused = next((c for c in value if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if refused is not None:
        return f"{name} {shown(value)} holds the control or format character U+{ord(refused):04X}"
    if looks_clipped(value, FIELD_CAPS[field]):
        return f"{name} {shown(value)} has the form of a clipped over-long id"
    return None


def id_rejection(command: Any) -> tuple[str, str] | None:
    """(reason code, detail) for the first id of `command` that breaks the rule, else None.

    Check field_too_long first: an over-long id is refused for its length, and quoted shortened.
    """
    for field, reason in ID_REASONS.items():
        value = getattr(command, field, None)
        if isinstance(value, str) and (problem := id_problem(field, value)) is not None:
            return reason, problem
    return None
