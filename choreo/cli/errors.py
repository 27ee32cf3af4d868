"""Turning expected failures into one clear sentence on stderr and a non-zero exit, not a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from confluent_kafka import KafkaException

from choreo.exceptions import ChoreoError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def one_sentence_errors(fn: F) -> F:
    """Wrap a command so project errors and Kafka errors print one line and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ChoreoError as e:
            fail(str(e))
        except KafkaException as e:
            err = e.args[0]
            text = err.str() if hasattr(err, "str") else str(err)
            fail(f"Kafka said: {text} (is the stack running? try `choreo stack status`)")
        except KeyboardInterrupt:
            sys.exit(130)
        return None

    return wrapper  # type: ignore[return-value]
