"""Find the cluster: explicit settings win, else the running local stack's stack.json, else defaults."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from choreo.settings import Settings, load_settings
from choreo.stack import info as stack_info
from choreo.stack.layout import StackLayout
from choreo.stack.lifecycle import running_components


def layout_for(settings: Settings, state_dir: Path | None = None) -> StackLayout:
    """The stack layout: state in `state_dir` (default the settings' stack dir), jars there too."""
    return StackLayout.of(state_dir or settings.stack_dir, jars_dir=settings.stack_dir)


def resolve_settings(settings: Settings | None = None, state_dir: Path | None = None) -> Settings:
    """Settings whose endpoints point at the local stack when none were configured explicitly.

    KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL (or a config file value differing from the
    default) always win; otherwise a running stack's ports (which may not be the defaults) are used.
    """
    settings = settings or load_settings()
    defaults = Settings()
    layout = layout_for(settings, state_dir)
    info = stack_info.load(layout)
    if info is None or not running_components(layout, info):
        return settings
    bootstrap, registry = settings.bootstrap_servers, settings.schema_registry_url
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ and bootstrap == defaults.bootstrap_servers:
        bootstrap = info.bootstrap_servers
    if "SCHEMA_REGISTRY_URL" not in os.environ and registry == defaults.schema_registry_url:
        registry = info.schema_registry_url
    return replace(settings, bootstrap_servers=bootstrap, schema_registry_url=registry)
