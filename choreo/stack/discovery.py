"""Find the cluster: explicit settings win, else the running local stack's stack.json, else defaults.

The local stack's folder is `--dir`, else CHOREO_STACK_DIR (`.stack` under the current folder). When
neither is given and `.stack` holds no stack, it is the folder of the stack `choreo stack up` last
started (remembered in the user's cache), so a stack started with `--dir X` is found from any
folder without setting anything.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from choreo.settings import Settings, load_settings, user_cache_dir
from choreo.stack import info as stack_info
from choreo.stack.layout import StackLayout
from choreo.stack.lifecycle import running_components

_LAST_STARTED = "last-started-stack"  # in the user's cache: the folder `stack up` last started


def layout_for(settings: Settings, state_dir: Path | None = None) -> StackLayout:
    """The stack layout: state in `state_dir`, else the settings' stack dir, else (when that is
    the default and holds no stack) the last started one; jars in the user's cache."""
    if state_dir is None:
        state_dir = settings.stack_dir
        if settings.stack_dir == Settings().stack_dir and not StackLayout.of(state_dir).stack_file.exists():
            state_dir = last_started() or state_dir
    return StackLayout.of(state_dir, jars_dir=settings.jars_dir)


def last_started() -> Path | None:
    """The folder of the stack `choreo stack up` last started, if it still holds its stack file."""
    try:
        text = (user_cache_dir() / _LAST_STARTED).read_text().strip()
    except OSError:
        return None
    folder = Path(text) if text else None
    return folder if folder is not None and StackLayout.of(folder).stack_file.exists() else None


def remember_started(layout: StackLayout) -> None:
    """Remember `layout`'s folder as the stack to find by default (best effort: a cache)."""
    try:
        user_cache_dir().mkdir(parents=True, exist_ok=True)
        (user_cache_dir() / _LAST_STARTED).write_text(f"{layout.state_dir}\n")
    except OSError:
        pass


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
