"""The fault suite's stacks: the session's 1-node stack (or one of its own), and a 3-node cluster.

Scenarios kill, pause and restart the stack's processes, so they need to know them: the local
stack's layout. A stack given through the environment or Docker cannot be killed from here, so
the suite then starts a local 1-node stack of its own. The 3-node cluster is started once for
every cluster scenario (module scope) and stopped at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from choreo.stack.layout import StackLayout
from choreo.stack.ports import free_ports, port_is_free
from harness.stack import StackEndpoints, throwaway_stack
from tests.support.fault_saga import RESULTS, format_table, format_timelines


@dataclass(frozen=True)
class KillableStack:
    """A local stack whose processes a scenario may kill, pause and start again."""

    layout: StackLayout
    bootstrap_servers: str
    schema_registry_url: str


@contextmanager
def _own_stack(brokers: int, kafka_port: int, registry_port: int) -> Iterator[KillableStack]:
    """A local stack of the suite's own in a temp folder, stopped and deleted at the end."""
    with throwaway_stack(brokers, kafka_port, registry_port, purge=True) as own:
        assert own.layout is not None
        yield KillableStack(own.layout, own.bootstrap_servers, own.schema_registry_url)


@pytest.fixture(scope="module")
def one_node(stack: StackEndpoints) -> Iterator[KillableStack]:
    if stack.layout is not None:
        yield KillableStack(stack.layout, stack.bootstrap_servers, stack.schema_registry_url)
        return
    with _own_stack(1, *free_ports(2)) as own:
        yield own


def _three_consecutive_free_ports() -> int:
    for _ in range(50):
        (port,) = free_ports(1)
        if port < 65000 and port_is_free(port + 1) and port_is_free(port + 2):
            return port
    raise AssertionError("no three consecutive free ports")


@pytest.fixture(scope="module")
def cluster() -> Iterator[KillableStack]:
    kafka_port = _three_consecutive_free_ports()
    (registry_port,) = free_ports(1, avoid={kafka_port, kafka_port + 1, kafka_port + 2})
    with _own_stack(3, kafka_port, registry_port) as own:
        yield own


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RESULTS:
        terminalreporter.section("fault suite")
        terminalreporter.write_line(format_table(RESULTS))
        terminalreporter.section("fault suite: where the seconds went")
        terminalreporter.write_line(format_timelines(RESULTS))
