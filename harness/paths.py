"""Where things are: the repository root (the harness runs from a checkout, never installed)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"


def stack_jars() -> Path:
    """The folder with the stack's jars (`choreo stack fetch`): CHOREO_STACK_DIR or .stack."""
    return Path(os.environ.get("CHOREO_STACK_DIR", REPO / ".stack"))
