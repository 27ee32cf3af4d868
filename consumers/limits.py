"""Size caps on the text fields of edge commands, and the helpers that keep echoes of them short."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

# Why caps at all: Kafka refuses records over 1 MB, and a rejection copies the command's
# envelope (consumers/saga.py caused_by) and echoes its fields in `detail`. A command just under
# 1 MB would otherwise be answered by an event over it, which can never be produced. With these
# caps the largest rejection is well under 2 KB. Lengths are in characters (str len): even at
# four UTF-8 bytes each, the bound stays far below the record limit.

# Ids (event, order, causation, drone): uuids are 36 characters; 128 leaves room for any other
# scheme the edge may adopt (a prefix, a tenant, a ULID) while keeping state keys short.
ID_MAX: Final = 128
# Hub ids are short slugs from reference/hubs.json ("hub-north"); 64 is generous.
HUB_MAX: Final = 64
# A SKU is "SKU-" and four digits (8 characters); 32 leaves room for a wider catalogue format.
SKU_MAX: Final = 32
# A postal address is at most six lines of about 35 characters (UPU S42); 512 fits any of them
# with room for a note to the pilot.
ADDRESS_MAX: Final = 512
# How much of a command's value a rejection's `detail` quotes: enough to recognise it.
SHOWN_MAX: Final = 64

# The cap of each text field a command may carry, by field name (every command's str fields must
# be listed: tests/unit/test_field_limits.py checks it).
FIELD_CAPS: Final[Mapping[str, int]] = {
    "event_id": ID_MAX,
    "order_id": ID_MAX,
    "causation_id": ID_MAX,
    "hub": HUB_MAX,
    "sku": SKU_MAX,
    "address": ADDRESS_MAX,
    "drone_id": ID_MAX,
    "priority": 16,  # an enum symbol (delivery.orders.Priority): the schema bounds it already
}

FIELD_TOO_LONG: Final = "FIELD_TOO_LONG"


def shown(value: str, limit: int = SHOWN_MAX) -> str:
    """repr(value) for a detail, cut to `limit` characters plus "...(N chars)" when longer."""
    # Only the start is repr'd: repr of a 1 MB string would itself be up to 4 MB.
    text = repr(value[: limit + 1])
    if len(value) <= limit and len(text) <= limit + 2:  # + 2: the quotes
        return text
    return f"{text[:limit]}...({len(value)} chars)"


def clipped(value: str, cap: int) -> str:
    """`value` if it is within `cap`, else a printable stand-in of at most `cap` characters.

    The stand-in is the escaped start of the value, its length and a digest of the whole: an
    over-long hub or order id copied into a rejection stays small, two different values stay
    apart (the services key rejected orders by it), and clipping twice changes nothing.
    """
    if len(value) <= cap:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    tail = f"...({len(value)} chars #{digest})"
    head = repr(value[:cap])[1:-1]  # escaped, so NULs and newlines never reach a state key
    # The last cut only matters for tiny caps; the length bound is what keeps records small.
    return (head[: max(cap - len(tail), 0)] + tail)[:cap]


_STAND_IN_TAIL = re.compile(r"\.\.\.\((\d+) chars #[0-9a-f]{12}\)\Z")


def looks_clipped(value: str, cap: int) -> bool:
    """Whether `value` has the form of the stand-in `clipped` gives a value over `cap`.

    A rejection carries an over-long id clipped, and state keys it so; a real id of that form
    would share its key (consumers/ids.py refuses such ids for that reason).
    """
    if len(value) > cap:
        return False  # over-long is a reason of its own (FIELD_TOO_LONG)
    match = _STAND_IN_TAIL.search(value)
    return match is not None and int(match.group(1)) > cap


def field_too_long(command: Any) -> tuple[str, str] | None:
    """(FIELD_TOO_LONG, detail) when a text field of `command` is over its cap, else None.

    Checked before anything else, so that no other reason's detail quotes an over-long value.
    """
    problems = []
    for field in dataclasses.fields(command):
        value = getattr(command, field.name)
        if isinstance(value, str) and len(value) > FIELD_CAPS[field.name]:
            cap = FIELD_CAPS[field.name]
            problems.append(f"{field.name} is {len(value)} chars, over the limit of {cap}: {shown(value)}")
    if not problems:
        return None
    return FIELD_TOO_LONG, "; ".join(problems)
