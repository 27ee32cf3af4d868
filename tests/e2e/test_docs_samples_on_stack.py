"""The docs' samples that talk to Kafka (marked `<!-- sample needs: stack -->`) run as a reader
would run them: a script of its own, pointed at the stack by the environment, against the
topics and schemas `choreo setup` provisions. Each must leave what it says on the topic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from choreo.kafka.partitioner import partition_for
from harness.env import child_env
from tests.support.saga_run import SagaRun
from tests.unit.test_docs_samples import samples

STACK_SAMPLES = samples("stack")


def test_there_is_a_sample_that_needs_the_stack() -> None:
    assert STACK_SAMPLES


@pytest.mark.parametrize(("where", "code"), STACK_SAMPLES, ids=[w for w, _ in STACK_SAMPLES])
def test_a_sample_sends_its_command_to_its_keys_partition(
    where: str, code: str, saga: SagaRun, tmp_path: Path,
) -> None:
    script = tmp_path / "sample.py"
    script.write_text(code)
    ran = subprocess.run([sys.executable, str(script)], env=child_env(saga.settings),
                         capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, f"{where} failed:\n{ran.stderr[-3000:]}"
    [sent] = saga.events("orders.commands")
    assert type(sent.event).__name__ == "PlaceOrder" and sent.event.sku == "SKU-0001"
    key = sent.event.hub.encode()
    assert sent.key == key and sent.partition == partition_for(key, saga.settings.partitions)
