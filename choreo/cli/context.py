"""The settings every CLI command starts from: configuration, then the running local stack."""

from __future__ import annotations

from choreo.settings import Settings, load_settings


def cli_settings() -> Settings:
    """Configured settings; endpoints left at their defaults point at a running local stack."""
    from choreo.stack.discovery import resolve_settings

    return resolve_settings(load_settings())
