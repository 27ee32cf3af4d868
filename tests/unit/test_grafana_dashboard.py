"""deploy/helm/choreo/files/grafana-dashboard.json: the Grafana dashboard for choreo workers.

Checked without Grafana: it parses; panel ids are unique and the panels do not overlap; every
panel reads the `${datasource}` variable's Prometheus and has a description, a unit and a query;
every metric a query reads is one a worker exports (tests/support/promql.py builds the list from
choreo/runtime/metrics.py) or one Prometheus or kube-state-metrics provides, and is matched only
on labels it carries or the scrape adds; every selector of a metric with a `service` label follows
the dashboard's `$service` variable, but for the saga outcome panel, which reads the service where
sagas end (`$outcome_service`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.paths import REPO
from tests.support.promql import (
    EXTERNAL_METRIC_NAMES,
    Matcher,
    Selector,
    exported_metric_names,
    exported_metrics,
    metric_names,
    selectors,
)

DASHBOARD = REPO / "deploy" / "helm" / "choreo" / "files" / "grafana-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
OUTCOME_PANEL = "Sagas ended by outcome"
UNITS = {"s", "short", "ops", "bytes"}
# Labels the scrape adds: the job and instance Prometheus sets, the pod's where Kubernetes is scraped.
SCRAPE_LABELS = frozenset({"job", "instance", "namespace", "pod"})
# Variables Grafana defines itself.
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                     "__range_ms"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(Path(DASHBOARD).read_text())
    return loaded


def _panels() -> list[dict[str, Any]]:
    """The panels that show data: rows only group them (nested ones of collapsed rows included)."""
    found: list[dict[str, Any]] = []
    for panel in _dashboard()["panels"]:
        found.extend(panel.get("panels", []) if panel["type"] == "row" else [panel])
    return found


def _targets() -> list[tuple[str, str]]:
    """(panel title, expression) of every query."""
    return [(panel["title"], target["expr"]) for panel in _panels() for target in panel["targets"]]


def _variables() -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in _dashboard()["templating"]["list"]}


# -- the reader of PromQL itself -----------------------------------------------------------------


def test_reader_finds_a_metric_behind_label_matchers_with_regexes() -> None:
    expr = 'rate(foo_total{service=~"a|b", event!~"X.*", job="choreo"}[5m])'
    assert selectors(expr) == [Selector("foo_total", (
        Matcher("service", "=~", "a|b"), Matcher("event", "!~", "X.*"), Matcher("job", "=", "choreo"),
    ))]


def test_reader_skips_the_labels_of_by_and_of_vector_matching() -> None:
    assert metric_names("sum by (event) (rate(x_total[5m]))") == ["x_total"]
    assert metric_names("sum without(instance, pod) (x)") == ["x"]
    assert metric_names("sum(x) by (service)") == ["x"]
    assert metric_names("a * on (job, instance) group_left (service) b") == ["a", "b"]
    assert metric_names("a / ignoring(le) group_right b") == ["a", "b"]


def test_reader_skips_functions_numbers_and_grafana_variables() -> None:
    expr = 'histogram_quantile(0.99, sum by (le, service) (rate(x_bucket{service=~"$service"}[5m])))'
    assert selectors(expr) == [Selector("x_bucket", (Matcher("service", "=~", "$service"),))]
    assert metric_names("rate(x[$__rate_interval]) * ${factor} > 1e-3 + $threshold") == ["x"]
    assert metric_names("time() - (y > 0) or vector(0)") == ["y"]
    assert metric_names("x > Inf or y < -NaN") == ["x", "y"]


def test_reader_does_not_take_a_string_for_a_metric() -> None:
    assert metric_names('label_replace(up, "service", "$1", "pod", "(orders)-.*")') == ["up"]
    assert metric_names('count_values("version", build_info)') == ["build_info"]
    assert metric_names("x{path=~`a}b`, q='c\\'d'}") == ["x"]


def test_reader_skips_offsets_and_subqueries() -> None:
    assert metric_names("x offset 5m") == ["x"]
    assert metric_names("rate(x[5m] offset -1h30m) - max_over_time(y[1h:5m] @ start())") == ["x", "y"]
    assert metric_names("changes(process_start_time_seconds[$__range])") == ["process_start_time_seconds"]


def test_reader_takes_a_metric_named_in_the_braces_and_refuses_what_it_cannot_tell() -> None:
    assert metric_names('{__name__="x", job="a"} + {"y.z", job="a"}') == ["x", "y.z"]
    assert metric_names("sum(a) # comment with b\n + c") == ["a", "c"]
    for unreadable in ('{job="a"}', '{__name__=~"x.*"}', 'x{__name__="y"}', 'x{a="b"', 'x{a="b}',
                       "rate(x[5m)", "x offset 5min"):
        with pytest.raises(ValueError):
            selectors(unreadable)


def test_exported_names_include_labelled_families_without_samples() -> None:
    exported = exported_metrics()
    assert exported["choreo_records_processed_total"] == {"service"}
    assert exported["choreo_batch_seconds_bucket"] == {"service", "le"}
    assert {"choreo_batch_seconds_sum", "choreo_batch_seconds_count"} <= set(exported)
    assert exported["choreo_consumer_lag"] == {"service", "topic", "partition"}
    assert "choreo_records_processed" not in exported


# -- the dashboard -------------------------------------------------------------------------------


def test_dashboard_is_identified_and_has_its_variables() -> None:
    dashboard = _dashboard()
    assert (dashboard["uid"], dashboard["title"], dashboard["schemaVersion"]) == (
        "choreo-workers", "choreo workers", 39,
    )
    variables = _variables()
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource", "prometheus",
    )
    service = variables["service"]
    assert service["datasource"] == DATASOURCE
    assert service["multi"] and service["includeAll"]
    assert service["definition"] == (
        'label_values(choreo_last_commit_timestamp_seconds{namespace=~"$namespace"}, service)'
    )
    assert variables["outcome_service"]["query"] == "orders"
    assert variables["outcome_events"]["query"] == "OrderCompleted|OrderCompensated"
    # Two installs (staging, production) scraped by one Prometheus are told apart by namespace;
    # without the Operator there is no such label, and All (.*) matches its absence.
    namespace = variables["namespace"]
    assert namespace["includeAll"] and namespace["allValue"] == ".*"
    assert namespace["definition"] == "label_values(choreo_last_commit_timestamp_seconds, namespace)"


def test_service_variable_lists_a_label_a_worker_exports() -> None:
    query = _variables()["service"]["definition"]
    match = re.fullmatch(r"label_values\((\w+)(?:\{[^}]*\})?,\s*(\w+)\)", query)
    assert match, query
    metric, label = match.groups()
    assert label in exported_metrics()[metric]


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    panels = _dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_every_panel_reads_the_datasource_variable_and_says_what_to_look_for() -> None:
    for panel in _panels():
        title = panel["title"]
        assert panel["type"] in {"timeseries", "stat"}, title
        assert panel["datasource"] == DATASOURCE, title
        assert panel["targets"], title
        assert all(target["datasource"] == DATASOURCE for target in panel["targets"]), title
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"]), title
        assert len(panel.get("description", "")) > 40, title
        assert panel["fieldConfig"]["defaults"].get("unit") in UNITS, title


def test_every_metric_a_panel_reads_is_exported_by_a_worker_or_by_prometheus() -> None:
    known = exported_metric_names() | EXTERNAL_METRIC_NAMES
    unknown = {
        (title, name) for title, expr in _targets() for name in metric_names(expr) if name not in known
    }
    assert not unknown, f"metrics no worker exports: {sorted(unknown)}"


def test_every_selector_of_a_service_labelled_metric_follows_the_service_variable() -> None:
    exported = exported_metrics()
    unfiltered = []
    for title, expr in _targets():
        wanted = (
            Matcher("service", "=", "$outcome_service") if title == OUTCOME_PANEL
            else Matcher("service", "=~", "$service")
        )
        for selector in selectors(expr):
            if "service" in exported.get(selector.metric, frozenset()):
                if selector.matcher("service") != wanted:
                    unfiltered.append((title, selector.metric))
    assert not unfiltered, f"selectors that ignore the service variable: {unfiltered}"


def test_every_selector_of_a_worker_metric_follows_the_namespace_variable() -> None:
    # One install's panels, never two added up (staging and production in one Prometheus).
    exported = exported_metrics()
    unfiltered = [
        (title, selector.metric)
        for title, expr in _targets()
        for selector in selectors(expr)
        if selector.metric in exported
        and selector.matcher("namespace") != Matcher("namespace", "=~", "$namespace")
    ]
    assert not unfiltered, f"selectors that ignore the namespace variable: {unfiltered}"


def test_outcome_panel_reads_the_outcome_variables() -> None:
    exprs = [expr for title, expr in _targets() if title == OUTCOME_PANEL]
    assert exprs
    for expr in exprs:
        for selector in selectors(expr):
            assert selector.metric == "choreo_events_emitted_total"
            assert selector.matcher("event") == Matcher("event", "=~", "$outcome_events")


def test_every_variable_a_query_uses_is_defined() -> None:
    defined = set(_variables()) | GRAFANA_VARIABLES
    used = {
        (title, first or second) for title, expr in _targets()
        for first, second in _VARIABLE.findall(expr)
    }
    assert not {(title, name) for title, name in used if name not in defined}


def test_every_label_a_selector_matches_is_one_its_metric_carries() -> None:
    exported = exported_metrics()
    unknown = [
        (title, selector.metric, matcher.label)
        for title, expr in _targets()
        for selector in selectors(expr)
        if selector.metric in exported
        for matcher in selector.matchers
        if matcher.label not in exported[selector.metric] | SCRAPE_LABELS
    ]
    assert not unknown, f"labels the worker does not export: {unknown}"
