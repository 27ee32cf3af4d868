"""The local stack's pure parts: prerequisites messages, node configs, tool command lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from choreo.cli.main import app
from choreo.stack import jars, java, kafka_node, tools
from choreo.stack.errors import PrerequisiteMissing
from choreo.stack.info import StackInfo
from choreo.stack.layout import StackLayout
from choreo.stack.ports import free_ports


def _info(brokers: int) -> StackInfo:
    return StackInfo(
        brokers=brokers,
        kafka_ports=[9092 + i for i in range(brokers)],
        controller_ports=[19000 + i for i in range(brokers)],
        registry_port=8081,
        management_port=9001,
        cluster_id=kafka_node.new_cluster_id(),
    )


def test_missing_java_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(java, "_candidates", lambda: [])
    with pytest.raises(PrerequisiteMissing) as error:
        java.find_java(17, "Kafka")
    message = str(error.value)
    assert "Java 17 or newer" in message and "\n" not in message


def test_missing_maven_is_one_clear_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(jars.shutil, "which", lambda name: None)
    with pytest.raises(PrerequisiteMissing) as error:
        jars.ensure_jars(StackLayout.of(tmp_path))
    assert "Maven (mvn)" in str(error.value) and "\n" not in str(error.value)


def test_cli_reports_missing_java_without_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(java, "_candidates", lambda: [])
    monkeypatch.setattr(jars, "jars_present", lambda layout: True)
    monkeypatch.setattr("choreo.stack.lifecycle.ensure_jars", lambda layout: False)
    kafka_port, registry_port = free_ports(2)  # port 0 is refused as out of range
    result = CliRunner().invoke(app, ["stack", "up", "--dir", str(tmp_path), "--kafka-port",
                                      str(kafka_port), "--registry-port", str(registry_port)])
    assert result.exit_code == 1
    assert "Java 17 or newer" in result.output
    assert "Traceback" not in result.output


def test_single_node_config_uses_a_standalone_quorum(tmp_path: Path) -> None:
    text = kafka_node.render_config(StackLayout.of(tmp_path), _info(1), 1)
    assert "controller.quorum.bootstrap.servers=127.0.0.1:19000" in text
    assert "offsets.topic.replication.factor=1" in text
    assert "transaction.state.log.min.isr=1" in text
    assert "group.initial.rebalance.delay.ms=0" in text
    assert "=$" not in text and "$log_dir" not in text


def test_three_node_config_uses_static_voters_and_rf3(tmp_path: Path) -> None:
    text = kafka_node.render_config(StackLayout.of(tmp_path), _info(3), 2)
    assert "controller.quorum.voters=1@127.0.0.1:19000,2@127.0.0.1:19001,3@127.0.0.1:19002" in text
    assert "listeners=PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:19001" in text
    assert "min.insync.replicas=2" in text and "default.replication.factor=3" in text


def test_tool_command_adds_bootstrap_unless_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tools, "jars_present", lambda layout: True)
    monkeypatch.setattr(tools, "find_java", lambda v, p: java.Java(Path("/j/bin/java"), 17))
    layout = StackLayout.of(tmp_path)
    cmd = tools.tool_command(layout, "topics", ["--list"], "127.0.0.1:1")
    assert cmd[-4:] == [tools.TOOLS["topics"], "--bootstrap-server", "127.0.0.1:1", "--list"]
    assert "-XX:TieredStopAtLevel=1" in cmd
    given = tools.tool_command(layout, "topics", ["--bootstrap-server", "x:2", "--list"], "y:1")
    assert "y:1" not in given
    perf = tools.tool_command(layout, "producer-perf-test", [], "127.0.0.1:1")
    assert "-XX:TieredStopAtLevel=1" not in perf
