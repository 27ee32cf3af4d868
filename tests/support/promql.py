"""What a PromQL expression reads, and what a worker exports: for tests of dashboards and alert rules.

    selectors(expr)          the vector selectors of an expression: metric name + label matchers
    metric_names(expr)       the metric names it reads, each once, in order of appearance
    exported_metrics()       every sample name a worker can expose -> the label names it carries
    exported_metric_names()  the names alone
    EXTERNAL_METRIC_NAMES    names from Prometheus itself and kube-state-metrics that may be read

The reader is a tokenizer, not a parser: it finds every metric name an expression reads but does
not check that the expression is valid PromQL (promtool and Grafana do that). It skips function
and aggregation names (an identifier followed by `(`), keywords (`by`, `on`, `offset`, `bool`,
`and`, ...), the label lists after `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`,
string literals, numbers and durations, range and subquery brackets (`[5m]`, `[$__rate_interval]`,
`[1h:5m]`) and Grafana variables (`$service`, `${datasource}`, `$__range`). A name given as a
matcher (`{__name__="x"}`, or quoted first in the braces, `{"x"}`) counts as the metric's name.
It raises ValueError where it cannot tell what is read: an unterminated string or bracket, a
selector with no metric name (`{job="x"}`), a `__name__` matched by a regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.samples import Sample

from choreo.runtime.metrics import WorkerMetrics

# Names a dashboard or rule may read that no worker exports: Prometheus's own per-target series
# and alert state, and kube-state-metrics' container and StatefulSet status (only where it runs).
EXTERNAL_METRIC_NAMES: frozenset[str] = frozenset({
    "up",
    "ALERTS",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_last_terminated_exitcode",
    "kube_pod_container_status_last_terminated_reason",
    "kube_statefulset_status_replicas",
    "kube_statefulset_status_replicas_ready",
})

# Words PromQL reserves (matched case-insensitively, as Prometheus's lexer does): binary and set
# operators, aggregation operators, modifiers, the @ preprocessors and the number literals.
KEYWORDS: frozenset[str] = frozenset({
    "and", "or", "unless", "atan2",
    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
    "count_values", "quantile", "limitk", "limit_ratio",
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "offset", "smoothed", "anchored",
    "start", "end",
    "inf", "nan",
})
# Keywords that may be followed by a parenthesised list of label names (not metric names).
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})

_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Hex, a duration (5m, 1h30m, 500ms) or a float (1, 0.5, .5, 1e-3); longest forms first.
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+|(?:[0-9]+(?:ms|[smhdwy]))+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
_MATCH_OPS = ("=~", "!~", "!=", "=")
_OPERATOR_CHARS = set("+-*/%^=!<>,()@")


@dataclass(frozen=True)
class Matcher:
    """One label matcher: `label op "value"`, the value as written between its quotes."""

    label: str
    op: str  # =, !=, =~ or !~
    value: str


@dataclass(frozen=True)
class Selector:
    """A vector selector: a metric name and the matchers in its braces (none without braces)."""

    metric: str
    matchers: tuple[Matcher, ...] = ()

    def matcher(self, label: str) -> Matcher | None:
        """The (first) matcher on `label`, or None if the selector does not match on it."""
        return next((m for m in self.matchers if m.label == label), None)


def selectors(expr: str) -> list[Selector]:
    """The vector selectors of a PromQL expression, in order of appearance (see the module doc)."""
    return _Reader(expr).read()


def metric_names(expr: str) -> list[str]:
    """The metric names a PromQL expression reads, each once, in order of appearance."""
    return list(dict.fromkeys(s.metric for s in selectors(expr)))


def exported_metrics() -> dict[str, frozenset[str]]:
    """Every sample name a worker's registry can expose -> the label names its samples carry
    (Prometheus's `job`, `instance` and the like not included).

    Built from a fresh `WorkerMetrics`. A family whose metric has labels has no samples until a
    label set is used, so its names come from its name and type: a counter exposes `<name>_total`
    (and `<name>_created`), a histogram `_bucket` (with `le`), `_sum`, `_count` (and `_created`),
    a summary `<name>`, `_sum`, `_count`; the `_created` forms only when prometheus_client exports
    them (PROMETHEUS_DISABLE_CREATED_SERIES unset). Families that do have samples (the
    ProcessCollector's `process_*`, where /proc exists) are read from their samples.
    """
    metrics = WorkerMetrics("x")
    label_names = {
        family.name: frozenset(getattr(wrapper, "_labelnames", ()))  # prometheus_client's own field
        for wrapper in vars(metrics).values()
        if isinstance(wrapper, MetricWrapperBase)
        for family in wrapper.describe()
    }
    created = _created_series_exported()
    exported: dict[str, frozenset[str]] = {}
    for family in metrics.registry.collect():
        if family.samples:
            for sample in family.samples:
                exported[sample.name] = exported.get(sample.name, frozenset()) | frozenset(sample.labels)
            continue
        labels = label_names.get(family.name, frozenset())
        for suffix, extra in _SUFFIXES.get(family.type, (("", ()),)):
            if suffix != "_created" or created:
                exported[family.name + suffix] = labels | frozenset(extra)
    return exported


def exported_metric_names() -> frozenset[str]:
    """The sample names a worker can expose (the keys of `exported_metrics()`)."""
    return frozenset(exported_metrics())


# Sample name suffixes (and labels they add) by family type, as prometheus_client exposes them.
_SUFFIXES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "counter": (("_total", ()), ("_created", ())),
    "histogram": (("_bucket", ("le",)), ("_sum", ()), ("_count", ()), ("_created", ())),
    "gaugehistogram": (("_bucket", ("le",)), ("_gsum", ()), ("_gcount", ())),
    "summary": (("", ("quantile",)), ("_sum", ()), ("_count", ()), ("_created", ())),
    "info": (("_info", ()),),
}


def _created_series_exported() -> bool:
    probe = Counter("probe", "Whether counters export <name>_created", registry=CollectorRegistry())
    samples: list[Sample] = [s for family in probe.collect() for s in family.samples]
    return any(s.name == "probe_created" for s in samples)


class _Reader:
    def __init__(self, expr: str) -> None:
        self.text = expr
        self.pos = 0
        self.found: list[Selector] = []

    def read(self) -> list[Selector]:
        text = self.text
        while True:
            self._skip_space()
            if self.pos >= len(text):
                return self.found
            char = text[self.pos]
            if char in "\"'`":
                self._string()
            elif char == "$":
                self._variable()
            elif char == "[":
                self._skip_balanced("[", "]")
            elif char == "{":
                self._selector(None)
            elif char.isdigit() or (char == "." and text[self.pos + 1 : self.pos + 2].isdigit()):
                self._number()
            elif _IDENTIFIER.match(text, self.pos):
                self._identifier()
            elif char in _OPERATOR_CHARS:
                self.pos += 1
            else:
                raise ValueError(f"unexpected {char!r} at {self.pos} in {text!r}")

    def _identifier(self) -> None:
        word = self._take(_IDENTIFIER)
        after = self._peek_after_space()
        if word.lower() in KEYWORDS:
            if word.lower() in _LABEL_LIST_KEYWORDS and after == "(":
                self._skip_space()
                self._skip_balanced("(", ")")  # by (service, le): label names
        elif after != "(":  # not a function call: a metric name
            self._skip_space()
            if after == "{":
                self._selector(word)
            else:
                self.found.append(Selector(word))

    def _selector(self, metric: str | None) -> None:
        """Read `{...}` (self.pos at the brace) and record its selector."""
        start = self.pos
        self.pos += 1
        matchers: list[Matcher] = []
        while True:
            self._skip_space()
            if self.pos >= len(self.text):
                raise ValueError(f"unclosed {{ at {start} in {self.text!r}")
            char = self.text[self.pos]
            if char == "}":
                self.pos += 1
                break
            if char == ",":
                self.pos += 1
                continue
            if char in "\"'`":
                label = self._string()
            elif _LABEL_NAME.match(self.text, self.pos):
                label = self._take(_LABEL_NAME)
            else:
                raise ValueError(f"unexpected {char!r} at {self.pos} in the braces of {self.text!r}")
            self._skip_space()
            op = next((o for o in _MATCH_OPS if self.text.startswith(o, self.pos)), None)
            if op is None:  # {"name", ...}: a quoted metric name
                metric = self._name_once(metric, label, start)
                continue
            self.pos += len(op)
            self._skip_space()
            if self.pos >= len(self.text) or self.text[self.pos] not in "\"'`":
                raise ValueError(f"label {label!r} at {start} is not matched against a string")
            value = self._string()
            if label == "__name__":
                if op != "=":
                    raise ValueError(f"__name__{op}{value!r}: cannot tell which metrics it reads")
                metric = self._name_once(metric, value, start)
            else:
                matchers.append(Matcher(label, op, value))
        if metric is None:
            raise ValueError(f"the selector at {start} of {self.text!r} has no metric name")
        self.found.append(Selector(metric, tuple(matchers)))

    def _name_once(self, metric: str | None, name: str, start: int) -> str:
        if metric is not None:
            raise ValueError(f"the selector at {start} of {self.text!r} names its metric twice")
        return name

    def _string(self) -> str:
        """Read a string literal (self.pos at its quote); return its contents as written."""
        quote = self.text[self.pos]
        start = self.pos
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and quote != "`":
                self.pos += 2
                continue
            self.pos += 1
            if char == quote:
                return self.text[start + 1 : self.pos - 1]
        raise ValueError(f"unterminated string at {start} in {self.text!r}")

    def _variable(self) -> None:
        """Skip a Grafana variable: $name, ${name} or ${name:format}."""
        start = self.pos
        self.pos += 1
        if self.text.startswith("{", self.pos):
            end = self.text.find("}", self.pos)
            if end < 0:
                raise ValueError(f"unclosed ${{ at {start} in {self.text!r}")
            self.pos = end + 1
        elif not self._take(re.compile(r"[A-Za-z0-9_]+")):
            raise ValueError(f"a lone $ at {start} in {self.text!r}")

    def _number(self) -> None:
        start = self.pos
        self._take(_NUMBER)
        if _IDENTIFIER.match(self.text, self.pos) or self.text[self.pos : self.pos + 1].isdigit():
            raise ValueError(f"malformed number or duration at {start} in {self.text!r}")

    def _skip_balanced(self, opening: str, closing: str) -> None:
        """Skip from an opening bracket to its closing one; strings inside may hold either."""
        start = self.pos
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in "\"'`":
                self._string()
                continue
            self.pos += 1
            if char == opening:
                depth += 1
            elif char == closing:
                depth -= 1
                if depth == 0:
                    return
        raise ValueError(f"unclosed {opening} at {start} in {self.text!r}")

    def _take(self, pattern: re.Pattern[str]) -> str:
        match = pattern.match(self.text, self.pos)
        if match is None:
            return ""
        self.pos = match.end()
        return match.group()

    def _skip_space(self) -> None:
        while self.pos < len(self.text):
            if self.text[self.pos].isspace():
                self.pos += 1
            elif self.text[self.pos] == "#":  # a comment, to the end of the line
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end + 1
            else:
                return

    def _peek_after_space(self) -> str:
        saved = self.pos
        self._skip_space()
        char = self.text[self.pos : self.pos + 1]
        self.pos = saved
        return char
