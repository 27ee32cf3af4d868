"""A stack whose data a newer Kafka wrote is refused in one sentence, before Kafka fails on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from choreo.stack import lifecycle
from choreo.stack.errors import StackError
from choreo.stack.info import StackInfo
from choreo.stack.layout import StackLayout


def _stack(tmp_path: Path, written_by: str, formatted: bool = True) -> tuple[StackLayout, StackInfo]:
    layout = StackLayout.of(tmp_path)
    info = StackInfo(brokers=1, kafka_ports=[9092], controller_ports=[9093], registry_port=8081,
                     management_port=9000, cluster_id="c", kafka_version=written_by)
    if formatted:
        data = layout.kafka_data(1)
        data.mkdir(parents=True)
        (data / "meta.properties").write_text("node.id=1\n")
    return layout, info


def test_data_of_a_newer_kafka_is_refused_with_what_to_do(tmp_path: Path) -> None:
    layout, info = _stack(tmp_path, "4.3.0")
    with pytest.raises(StackError, match=r"written by Kafka 4\.3\.0.*runs Kafka 4\.2\.2.*--purge"):
        lifecycle._refuse_downgrade(layout, info, "4.2.2")


@pytest.mark.parametrize("written_by", ["4.2.2", "4.1.0", "unknown", ""])
def test_data_of_the_same_or_an_older_kafka_starts(tmp_path: Path, written_by: str) -> None:
    layout, info = _stack(tmp_path, written_by)
    lifecycle._refuse_downgrade(layout, info, "4.2.2")


def test_a_stack_never_formatted_starts_whatever_its_file_says(tmp_path: Path) -> None:
    layout, info = _stack(tmp_path, "4.3.0", formatted=False)
    lifecycle._refuse_downgrade(layout, info, "4.2.2")


def test_the_stack_file_keeps_the_newest_kafka_that_wrote_its_data(tmp_path: Path) -> None:
    # A stack started while a 4.3.0 one still ran must not record 4.2.2: the next start would
    # then let 4.2.2 at data it cannot read.
    layout, info = _stack(tmp_path, "4.3.0")
    assert lifecycle._written_by(layout, info, "4.2.2") == "4.3.0"
    assert lifecycle._written_by(layout, info, "4.4.0") == "4.4.0"
    fresh, never_formatted = _stack(tmp_path / "fresh", "4.3.0", formatted=False)
    assert lifecycle._written_by(fresh, never_formatted, "4.2.2") == "4.2.2"
