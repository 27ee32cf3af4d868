"""Where things are: the repository root (the harness runs from a checkout, never installed)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"


def stack_jars() -> Path:
    """The folder with the stack's jars (`choreo stack fetch`): CHOREO_JARS_DIR, else the user's
    cache, as every `choreo` command finds it."""
    from choreo.settings import load_settings

    return load_settings().jars_dir.expanduser().resolve()
