"""The toy pipeline with a counter whose `evolve` refuses a negative value: an event of the
counter's own type that makes `evolve` raise on restore, as a bug in a service would.

Point CHOREO_DOMAINS at `tests.support.toy_fragile:DOMAIN` to run it with the real worker.
"""

from __future__ import annotations

import dataclasses

from choreo.contract import State
from tests.support import toy


def fragile_evolve(state: State, event: toy.NumberCounted) -> None:
    if event.value < 0:
        raise ValueError(f"a negative value ({event.value}) cannot be counted")
    toy.counter_evolve(state, event)


COUNTER = dataclasses.replace(toy.COUNTER, evolve=fragile_evolve)
DOMAIN = dataclasses.replace(toy.DOMAIN, services=(COUNTER, toy.DOUBLER))
