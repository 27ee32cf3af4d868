"""State keys built from several parts, escaped so that different parts never give the same key.

A service's table key is often a path of ids ("site/order"). Joined as they are, ("a/b", "c") and
("a", "b/c") give the same key, and a record about one thing reads or overwrites the row of
another. Here each part has its '%' and '/' percent-escaped ('%25', '%2F') before the parts are
joined with '/': an escaped part holds no '/', so the key splits back into exactly its parts, and
escaping is reversible, so the key is injective over tuples of parts (of any text, empty too).

Parts without '%' or '/' are left as they are: the key of ordinary ids is byte for byte the plain
"a/b" join. A store written before keys were escaped is restored anew all the same (the store
records no owner, see choreo/runtime/store.py), since ids with '/' or '%' may sit in it unescaped.
"""

from __future__ import annotations

import re

SEPARATOR = "/"
_ESCAPES = {"%": "%25", "/": "%2F"}
_ESCAPED = re.compile("%25|%2F")
_UNESCAPES = {v: k for k, v in _ESCAPES.items()}


def _escaped(part: str) -> str:
    # '%' first, so the '%' of a '%2F' just written is not escaped again.
    return part.replace("%", _ESCAPES["%"]).replace("/", _ESCAPES["/"])


def compose_key(*parts: str) -> str:
    """The key of `parts`: each escaped, joined with '/'. At least one part (() and ("",) would meet)."""
    if not parts:
        raise ValueError("a key needs at least one part")
    return SEPARATOR.join(_escaped(p) for p in parts)


def key_prefix(*parts: str) -> str:
    """What every key whose first parts are `parts` starts with, and no other key: for prefix scans."""
    return compose_key(*parts) + SEPARATOR


def key_parts(key: str) -> tuple[str, ...]:
    """The parts `key` was composed of: the inverse of compose_key.

    Total, for tools that read any store: a '%' not followed by 25 or 2F (never written by
    compose_key) is kept as it is.
    """
    return tuple(_ESCAPED.sub(lambda m: _UNESCAPES[m.group(0)], part) for part in key.split(SEPARATOR))
