"""The alert rules (deploy/helm/choreo/files/choreo-alerts.yaml), checked by Prometheus's promtool.

`promtool check rules` parses every expression; `promtool test rules` runs the cases of
tests/prometheus/choreo-alerts.test.yaml, where each alert fires on the series that mean trouble,
after its `for`, and stays quiet on the healthy twin. Every alert has a case, and every metric an
expression reads is one a worker exports (or Prometheus's `up`, or kube-state-metrics').
The same file fires for real against a real Prometheus in tests/e2e/test_prometheus_alerts.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.paths import REPO
from tests.support.promql import EXTERNAL_METRIC_NAMES, exported_metric_names, metric_names

RULES = REPO / "deploy" / "helm" / "choreo" / "files" / "choreo-alerts.yaml"
CASES = REPO / "tests" / "prometheus" / "choreo-alerts.test.yaml"


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed: `make tools` installs Debian's prometheus package"
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def _rules(path: Path = RULES) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_as_its_cases_say() -> None:
    result = _promtool("test", "rules", CASES.name, cwd=CASES.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cases_fail_when_a_rule_changes(tmp_path: Path) -> None:
    # The cases pin the thresholds: a rule made laxer (failing batches for 2 minutes instead
    # of 1) fails them.
    loose = RULES.read_text().replace(
        "expr: choreo_failing_seconds > 60", "expr: choreo_failing_seconds > 120")
    assert loose != RULES.read_text()
    (tmp_path / "rules.yaml").write_text(loose)
    cases = yaml.safe_load(CASES.read_text())
    cases["rule_files"] = ["rules.yaml"]
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump(cases))
    result = _promtool("test", "rules", "cases.yaml", cwd=tmp_path)
    assert result.returncode != 0 and "ChoreoBatchesFailing" in result.stdout + result.stderr


def test_every_alert_has_a_case_that_sees_it_fire() -> None:
    cases = yaml.safe_load(CASES.read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases for check in case.get("alert_rule_test", []) if check.get("exp_alerts")
    }
    assert {rule["alert"] for rule in _rules()} == fired


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_no_rule_adds_up_two_installs(rule: dict[str, Any]) -> None:
    # Every aggregation and match keeps `namespace` (the Operator's scrapes set it): staging's
    # lag must not make production's alert, nor two releases in one cluster one alert.
    for keyword, labels in re.findall(r"\b(by|on) \(([^)]*)\)", rule["expr"]):
        assert "namespace" in [label.strip() for label in labels.split(",")], (keyword, labels)


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule["alert"])
def test_every_metric_a_rule_reads_is_exported(rule: dict[str, Any]) -> None:
    allowed = exported_metric_names() | EXTERNAL_METRIC_NAMES
    assert set(metric_names(rule["expr"])) - allowed == set()
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
