"""Find the cluster: explicit settings win, else the running local stack's stack.json, else defaults.

The local stack's folder is `--dir`, else CHOREO_STACK_DIR (`.stack` under the current folder). When
neither is given and `.stack` holds no stack, a command that reads a running stack finds the one
`choreo stack up` last started, if it is running (remembered in the user's cache), so a stack
started with `--dir X` is found from any folder without setting anything. `stack up` and
`stack down --purge` never follow it: they act on the folder they are given.
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


def layout_for(settings: Settings, state_dir: Path | None = None, follow_last: bool = True) -> StackLayout:
    """The stack layout: state in `state_dir`, else the settings' stack dir, else (with
    `follow_last`, when that dir was not set and holds no stack) the running stack last started;
    jars in the user's cache."""
    if state_dir is None:
        state_dir = settings.stack_dir
        chosen = "CHOREO_STACK_DIR" in os.environ or settings.stack_dir != Settings().stack_dir
        if follow_last and not chosen and not StackLayout.of(state_dir).stack_file.exists():
            state_dir = last_running() or state_dir
    return StackLayout.of(state_dir, jars_dir=settings.jars_dir)


def last_running() -> Path | None:
    """The folder of the stack `choreo stack up` last started, if any process of it runs."""
    try:
        text = (user_cache_dir() / _LAST_STARTED).read_text().strip()
    except OSError:
        return None
    if not text:
        return None
    layout = StackLayout.of(Path(text))
    info = stack_info.load(layout)
    return layout.state_dir if info is not None and running_components(layout, info) else None


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
