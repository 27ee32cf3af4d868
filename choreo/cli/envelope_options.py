"""The operator tools' options for the domain's key and saga id, under the domain's own names.

`--key` and `--saga` always work; the installed domain's field names are aliases of them, so an
operator of a saga keyed by `site` with sagas named by `order_id` types `--site` and `--order`
(or `--order-id`), one of a ledger `--account`. The flags are
made when the command is defined: the installation is read once (it is cached and the CLI reads
it anyway, for the domain's own commands). Without an installation only `--key` and `--saga` exist.
"""

from __future__ import annotations

from functools import cache

from choreo.domain import installation
from choreo.envelope import Envelope
from choreo.exceptions import ChoreoError

# Every other flag of the commands that take these: an alias must never shadow one of them.
_TAKEN = frozenset({
    "--key", "--saga", "--from", "--follow", "--type", "--partition", "--json", "--uncommitted",
    "--max", "--dry-run", "--code", "--table", "--where", "--help", "--stuck", "--older-than",
    "--port", "--host", "--hash",
})


@cache
def _envelope() -> Envelope | None:
    try:
        return installation().envelope
    except ChoreoError:
        return None


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _aliases(*names: str) -> list[str]:
    flags: list[str] = []
    for name in names:
        flag = _flag(name)
        if flag not in _TAKEN and flag not in flags:
            flags.append(flag)
    return flags


def key_flags() -> list[str]:
    """`--key` and the domain's name for its partition key (`--site`)."""
    found = _envelope()
    return ["--key", *(_aliases(found.key_field) if found else [])]


def saga_flags() -> list[str]:
    """`--saga` and the domain's name for its saga id (`--order-id`, and `--order` for a field
    named `*_id`)."""
    found = _envelope()
    if found is None:
        return ["--saga"]
    field = found.saga_field
    short = field[:-3] if field.endswith("_id") and len(field) > 3 else field
    keys = key_flags()  # a domain whose saga is its key: the alias is the key's
    return ["--saga", *(f for f in _aliases(field, short) if f not in keys)]


def key_name() -> str:
    """How messages name the key: the domain's field, else `key`."""
    found = _envelope()
    return found.key_field if found else "key"


def named(flags: list[str]) -> str:
    """How a message names an option of several spellings (`--key/--site`): Click does not say
    which one the operator typed, so a refusal names them all rather than guess."""
    return "/".join(flags)
