"""`--code`: another version of a service, named by a module, for a dry run before deploying it."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from choreo.contract import Service
from choreo.exceptions import ConfigurationError


def load_version(reference: str, name: str) -> Service:
    """The Service named by `reference`: `module:attribute`, or a `module` holding exactly one
    Service called `name` (e.g. a copy of the service's module with a changed decide).

    The current directory is importable, as with `python -m`, so a version in a checkout needs
    no install. Anything that does not resolve to a Service called `name` is a one-sentence error.
    """
    module_name, _, attribute = reference.partition(":")
    if not module_name or (":" in reference and not attribute):
        raise ConfigurationError(f"--code {reference!r} is not of the form module or module:attribute")
    module = _import(module_name, reference)
    if attribute:
        found = getattr(module, attribute, None)
        if found is None:
            raise ConfigurationError(f"--code {reference!r}: module {module_name!r} has no {attribute!r}")
        if not isinstance(found, Service):
            raise ConfigurationError(
                f"--code {reference!r} is a {type(found).__name__}, not a choreo.contract.Service"
            )
        version = found
    else:
        services = {id(v): v for v in vars(module).values() if isinstance(v, Service)}
        named = [s for s in services.values() if s.name == name]
        if len(named) != 1:
            held = sorted(s.name for s in services.values())
            raise ConfigurationError(
                f"--code {reference!r} holds {len(named)} services called {name!r} "
                f"(services there: {', '.join(held) or 'none'}); name one as module:attribute"
            )
        version = named[0]
    if version.name != name:
        raise ConfigurationError(
            f"--code {reference!r} is service {version.name!r}, not {name!r}"
        )
    return version


def _import(module_name: str, reference: str) -> ModuleType:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigurationError(f"--code {reference!r}: cannot import {module_name!r} ({e})") from e
    except Exception as e:  # noqa: BLE001 - the module's own code failed; say so in one sentence
        raise ConfigurationError(
            f"--code {reference!r}: importing {module_name!r} failed ({type(e).__name__}: {e})"
        ) from e
    finally:
        if added:
            sys.path.remove(cwd)
