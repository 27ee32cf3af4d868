"""Session fixtures: one real Kafka + schema registry for the whole run, a topic prefix per test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.stack import StackEndpoints, provide_stack
from harness.topics import create_topics as _create_topics
from harness.topics import unique_prefix
from tests.support.wheel_venv import WheelVenv, make_wheel_venv

# Shared fixtures defined beside the helpers they belong to.
pytest_plugins = ["tests.support.stores"]

_REAL_STACK_DIRS = ("integration", "e2e", "faults")
_REAL_STACK_MARKERS = ("integration", "e2e")


@pytest.fixture(scope="session")
def stack() -> Iterator[StackEndpoints]:
    """The real stack: KAFKA_BOOTSTRAP_SERVERS + SCHEMA_REGISTRY_URL if set, else Docker, else a
    throw-away Maven-jar stack on free ports (stopped at the end). Its endpoints are exported into the
    environment so code under test that reads settings finds it."""
    with provide_stack(docker=True) as endpoints:
        saved = {k: os.environ.get(k) for k in ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL")}
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = endpoints.bootstrap_servers
        os.environ["SCHEMA_REGISTRY_URL"] = endpoints.schema_registry_url
        try:
            yield endpoints
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> WheelVenv:
    """The choreo wheel built from this checkout, installed in a fresh venv (once per session).

    Tests that add a package to it (a plug-in) remove it again when they are done.
    """
    return make_wheel_venv(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(autouse=True)
def _real_stack_for_integration_tests(request: pytest.FixtureRequest) -> None:
    """Tests that need the real stack (by marker or folder) get it started before them."""
    path = Path(str(request.node.fspath))
    marked = any(request.node.get_closest_marker(m) for m in _REAL_STACK_MARKERS)
    if marked or any(part in _REAL_STACK_DIRS for part in path.parts):
        request.getfixturevalue("stack")


@pytest.fixture()
def topic_prefix() -> str:
    """A unique prefix for this test's topics and consumer groups."""
    return unique_prefix()


@pytest.fixture()
def create_topics(
    stack: StackEndpoints, topic_prefix: str
) -> Callable[..., list[str]]:
    """create_topics("in", "out", partitions=3) -> the prefixed names, created and led."""

    def create(
        *logical: str, partitions: int = 1, config: dict[str, str] | None = None
    ) -> list[str]:
        names = [f"{topic_prefix}{name}" for name in logical]
        _create_topics(stack.bootstrap_servers, names, partitions, config)
        return names

    return create
