"""The one JSON that state documents are stored as, by the SQLite store and by MemoryState alike.

Canonical: the same document always gives the same text (sorted keys, no spaces, UTF-8 as is),
so dumps and hashes compare across stores and rebuilds. A document the text could not give back
unchanged is refused, with the same verdict in both stores, so a service green on MemoryState
cannot dead-letter or silently change its values in production:

- NaN and the infinities: JSON has no spelling for them (a writer that turned them into `null`
  would change the value), refused with ValueError;
- integers beyond 64 bits, keys that are not strings (`{1: x}` would come back as `{"1": x}`),
  datetimes, sets, dataclasses and any other non-JSON value: refused with TypeError.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

decode = orjson.loads


class NotStorableError(ValueError):
    """A state document holding a float JSON cannot spell (NaN, an infinity)."""


def encode(value: dict[str, Any]) -> str:
    """The canonical text of a state document, or TypeError/NotStorableError as said above."""
    try:
        text = orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError as e:  # a TypeError: non-JSON type, big integer, non-str key
        raise TypeError(f"state document is not JSON: {e}") from None
    if b"null" in text:  # orjson writes NaN and the infinities as null: look for them
        _refuse_non_finite(value)
    return text.decode()


def _refuse_non_finite(value: Any) -> None:
    if type(value) is float:
        if not math.isfinite(value):
            raise NotStorableError(f"state document holds {value!r}, which JSON cannot spell")
    elif isinstance(value, dict):
        for item in value.values():
            _refuse_non_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_non_finite(item)
