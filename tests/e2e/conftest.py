"""Fixtures for end-to-end tests: the whole saga on the session's real stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import StackEndpoints
from tests.support.saga_run import SagaRun


@pytest.fixture()
def saga(stack: StackEndpoints, topic_prefix: str, tmp_path: Path) -> Iterator[SagaRun]:
    run = SagaRun(stack.bootstrap_servers, stack.schema_registry_url, topic_prefix, tmp_path)
    yield run
    run.close()
