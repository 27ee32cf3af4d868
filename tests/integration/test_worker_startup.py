"""A worker refuses to start on a topic layout that would scatter a saga across partitions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.stack import StackEndpoints
from tests.support.stack_slice import StackSlice

pytestmark = pytest.mark.integration


class _Bare(StackSlice):
    domains = "tests.support.toy:DOMAIN"


def test_worker_refuses_topics_with_different_partition_counts(
    stack: StackEndpoints, topic_prefix: str, tmp_path: Path,
    create_topics: Callable[..., list[str]],
) -> None:
    create_topics("counter.commands", partitions=4)
    create_topics("counter", "counter.dlq", partitions=2)
    bed = _Bare(stack.bootstrap_servers, stack.schema_registry_url, topic_prefix, tmp_path)
    worker = bed.start("counter")
    code = worker.wait(120)
    log = worker.log()
    assert code == 1
    assert "not co-partitioned" in log and f"{topic_prefix}counter.commands=4" in log
    assert "Traceback" not in log


def test_unknown_service_is_one_sentence(
    stack: StackEndpoints, topic_prefix: str, tmp_path: Path
) -> None:
    bed = _Bare(stack.bootstrap_servers, stack.schema_registry_url, topic_prefix, tmp_path)
    result = bed.choreo("worker", "nosuch")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown service 'nosuch'; known services: counter, doubler"
    ]
