"""Hand-made records for service tests: common fields filled in, the interesting ones given."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
R = TypeVar("R")


def record(cls: type[R], **fields: Any) -> R:
    """An instance of `cls` with a fresh event id, hub-north, T0 and no cause unless given."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    defaults = {
        "event_id": str(uuid.uuid4()),
        "hub": "hub-north",
        "occurred_at": T0,
        "causation_id": None,
        "order_id": "order-1",
    }
    return cls(**{k: v for k, v in defaults.items() if k in names} | fields)
