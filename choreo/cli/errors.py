"""Turning expected failures into one clear sentence on stderr and a non-zero exit, not a traceback."""

from __future__ import annotations

import functools
import sqlite3
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from confluent_kafka import KafkaException

from choreo.exceptions import ChoreoError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> NoReturn:
    # One line whatever the message holds: a cause's own newlines would read as a second error.
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code)


def error_sentence(e: ChoreoError | KafkaException) -> str:
    """The one sentence for a project error or a Kafka error, for the CLI and the web view alike."""
    if isinstance(e, ChoreoError):
        return str(e)
    err = e.args[0]
    text = err.str() if hasattr(err, "str") else str(err)
    return f"Kafka said: {text} (is the stack running? try `choreo stack status`)"


def one_sentence_errors(fn: F) -> F:
    """Wrap a command so project errors and Kafka errors print one line and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ChoreoError, KafkaException) as e:
            fail(error_sentence(e))
        except sqlite3.DatabaseError as e:
            # Stores raise StoreError themselves; this is the fallback for a path that reads one raw.
            service = kwargs.get("service") or "SERVICE"
            fail(f"a local state store could not be read (SQLite says: {e}); if it is damaged, "
                 f"`choreo rebuild {service}` rebuilds it from the log")
        except KeyboardInterrupt:
            sys.exit(130)
        return None

    return wrapper  # type: ignore[return-value]


def option_check(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A typer option callback: the value `check` returns, or its ChoreoError as one sentence.

    Options are parsed before the command runs, outside `one_sentence_errors`, hence this.
    """

    def callback(value: Any) -> Any:
        if value is None:
            return None
        try:
            return check(value)
        except ChoreoError as e:
            fail(str(e))

    return callback
