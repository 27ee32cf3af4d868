"""The settings every CLI command starts from: configuration, then the running local stack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from choreo.cli.errors import option_check
from choreo.settings import Settings, check_value, load_settings


def cli_settings() -> Settings:
    """Configured settings; endpoints left at their defaults point at a running local stack."""
    from choreo.stack.discovery import resolve_settings

    return resolve_settings(load_settings())


def setting_option(name: str, flag: str) -> Callable[[Any], Any]:
    """An option callback holding `flag` to the range of setting `name`, in one sentence if not."""
    return option_check(lambda value: check_value(name, value, flag))
