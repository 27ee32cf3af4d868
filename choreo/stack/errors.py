"""Exceptions of the local stack, each carrying a message meant for a person, not a traceback."""

from __future__ import annotations


class StackError(Exception):
    """Something about the local stack went wrong; str(error) says what and what to do."""


class PrerequisiteMissing(StackError):
    """A tool the local stack needs (java, mvn) is not installed or too old."""


class StackStartError(StackError):
    """A stack process did not start or did not become ready in time."""
