"""Text from the log or the disk, made safe to print through rich."""

from __future__ import annotations

from rich.markup import escape


def plain(value: object) -> str:
    """`value` as text rich prints as written: an order id such as `[/]` is not markup."""
    return escape(str(value))
