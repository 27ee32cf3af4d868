"""Fixtures for runtime integration tests: the toy pipeline on the session's real stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import StackEndpoints
from tests.support.toy_pipeline import ToyPipeline


@pytest.fixture()
def toy(stack: StackEndpoints, topic_prefix: str, tmp_path: Path) -> Iterator[ToyPipeline]:
    pipe = ToyPipeline(stack.bootstrap_servers, stack.schema_registry_url, topic_prefix, tmp_path)
    yield pipe
    pipe.close()
