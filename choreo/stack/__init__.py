"""The local Kafka + schema registry stack: fetch jars, start, wait, stop, and find it again."""

from choreo.stack.errors import PrerequisiteMissing, StackError, StackStartError
from choreo.stack.layout import StackLayout

__all__ = ["PrerequisiteMissing", "StackError", "StackLayout", "StackStartError"]
