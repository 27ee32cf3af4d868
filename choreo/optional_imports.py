"""Classes taken from whichever of several modules is installed: a dependency's error types whose
home differs between its releases (httpx or httpx2; Click's or Typer's own copy of it)."""

from __future__ import annotations

import importlib


def installed_classes(modules: tuple[str, ...], *names: str) -> tuple[type[Exception], ...]:
    """Each of `names` from each of `modules` that can be imported and has it, in that order."""
    found: list[type[Exception]] = []
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found += [getattr(module, name) for name in names if hasattr(module, name)]
    return tuple(found)
