"""Fixtures for runtime integration tests: the toy pipeline on the session's real stack."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.toy_pipeline import ToyPipeline


@pytest.fixture()
def toy(tmp_path: Path) -> Iterator[ToyPipeline]:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    pipe = ToyPipeline(
        os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["SCHEMA_REGISTRY_URL"], prefix, tmp_path
    )
    yield pipe
    pipe.close()
