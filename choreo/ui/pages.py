"""The HTML of every page, rendered on the server. Every value that comes from the log or a store is
escaped here; the only script is the few lines that let the saga list follow server-sent events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import quote, urlencode

from choreo.ops.dlq_retry import DeadLetter, RetryReport
from choreo.ops.records import event_body, short_time
from choreo.ops.trace import Trace
from choreo.ui.index import SagaSummary
from choreo.ui.queries import ServiceStatus

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2733; background: #fff; }
header { background: #243447; color: #fff; padding: 10px 20px; display: flex; gap: 22px;
  align-items: baseline; }
header a { color: #cfe3ff; text-decoration: none; } header strong { font-size: 17px; color: #fff; }
main { padding: 16px 20px; }
table { border-collapse: collapse; margin: 8px 0 18px; }
th, td { border-bottom: 1px solid #e3e8ee; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f3f6f9; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
pre { background: #f6f8fa; padding: 8px; overflow: auto; max-width: 100%; }
form.filters { display: flex; gap: 12px; flex-wrap: wrap; align-items: end; margin-bottom: 10px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: #52606d; }
.outcome-completed { color: #1a7f43; } .outcome-compensated { color: #b4530a; }
.outcome-rejected { color: #b42318; } .outcome-running { color: #52606d; }
.problem { background: #fff4e5; border-left: 4px solid #f29b30; padding: 8px 12px; margin: 8px 0; }
.live { font-size: 12px; color: #52606d; }
.timeline-box { overflow-x: auto; border: 1px solid #e3e8ee; }
.legend span { margin-right: 14px; font-size: 12px; }
tr:target { background: #fff8c5; }
button { cursor: pointer; }
"""


def layout(title: str, body: str, problem: str | None = None) -> str:
    banner = f'<p class="problem" id="index-problem">{escape(problem)}</p>' if problem else ""
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)} · choreo</title><style>{_STYLE}</style></head><body>"
        '<header><strong>choreo</strong><a href="/">sagas</a><a href="/services">services</a>'
        '<a href="/graph">graph</a></header>'
        f"<main>{banner}<h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def _select(name: str, label: str, options: Iterable[str], chosen: str | None) -> str:
    opts = ['<option value="">any</option>'] + [
        f'<option value="{escape(o)}"{" selected" if o == chosen else ""}>{escape(o)}</option>'
        for o in options
    ]
    return f'<label>{escape(label)}<select name="{name}">{"".join(opts)}</select></label>'


def saga_list(
    sagas: Sequence[SagaSummary], filters: dict[str, str], choices: tuple[list[str], list[str], list[str]],
    problem: str | None, stuck: tuple[int, float] = (0, 60.0), key_name: str = "key",
) -> str:
    outcomes, reasons, keys = choices
    form = (
        '<form class="filters" method="get" action="/">'
        + _select("outcome", "outcome", sorted({*outcomes, "running"}), filters.get("outcome"))
        + _select("reason", "failure reason", reasons, filters.get("reason"))
        + _select("key", key_name, keys, filters.get("key"))
        + f'<label>started from (UTC)<input name="since" value="{escape(filters.get("since", ""))}" '
        'placeholder="2026-11-21T10:00"></label>'
        + f'<label>until (UTC)<input name="until" value="{escape(filters.get("until", ""))}" '
        'placeholder="2026-11-21T11:00"></label>'
        + f'<label>in flight for over (s)<input name="stuck" value="{escape(filters.get("stuck", ""))}" '
        'placeholder="60" size="6"></label>'
        '<button type="submit">filter</button><a href="/">clear</a></form>'
    )
    stuck_count, stuck_s = stuck
    stuck_line = (
        f'<p class="stuck" id="stuck"><a href="/?stuck={stuck_s:g}"><strong id="stuck-count">{stuck_count}'
        f"</strong> saga(s) in flight for over {stuck_s:g} s</a> (<code>choreo sagas --stuck</code> says "
        "who they wait for)</p>"
    )
    query = urlencode({k: v for k, v in filters.items() if v})
    body = (
        form
        + stuck_line
        + '<p class="live" id="live">live: <span id="live-state">connecting</span> · '
        f'<span id="saga-count">{len(sagas)}</span> saga(s) shown (newest first, at most 500)</p>'
        f'<table id="sagas"><thead><tr><th>saga</th><th>{escape(key_name)}</th><th>started (UTC)</th>'
        '<th>last event</th><th>events</th><th>outcome</th><th>reason</th><th>took</th></tr></thead>'
        f'<tbody id="saga-rows">{saga_rows(sagas)}</tbody></table>'
        + _LIVE_SCRIPT.replace("QUERY", json.dumps(query))
    )
    return layout("Sagas", body, problem)


# Replaces the table's rows with the server's rendering on every `sagas` event; EventSource
# reconnects by itself when the server restarts.
_LIVE_SCRIPT = """<script>
(function () {
  var q = QUERY, source = new EventSource('/events' + (q ? '?' + q : ''));
  var state = document.getElementById('live-state');
  source.addEventListener('sagas', function (e) {
    var data = JSON.parse(e.data);
    document.getElementById('saga-rows').innerHTML = data.rows;
    document.getElementById('saga-count').textContent = data.count;
    state.textContent = 'updated ' + new Date().toLocaleTimeString();
  });
  source.onopen = function () { state.textContent = 'connected'; };
  source.onerror = function () { state.textContent = 'reconnecting'; };
})();
</script>"""


def saga_rows(sagas: Sequence[SagaSummary]) -> str:
    rows = []
    for s in sagas:
        outcome = s.outcome or "running"
        rows.append(
            f'<tr class="saga" data-saga="{escape(s.saga_id)}" data-outcome="{escape(outcome)}">'
            f'<td class="mono"><a href="/sagas/{quote(s.saga_id, safe="")}">{escape(s.saga_id)}</a></td>'
            f"<td>{escape(s.key)}</td><td>{short_time(s.started_ms)}</td><td>{escape(s.last_type)}</td>"
            f'<td class="num">{s.events}</td><td class="outcome-{escape(outcome)}">{escape(outcome)}</td>'
            f'<td>{escape(s.reason or "")}</td><td class="num">{s.last_ms - s.started_ms} ms</td></tr>'
        )
    return "".join(rows) or '<tr><td colspan="8">no saga matches (yet)</td></tr>'


def saga_page(
    trace: Trace, svg: str, problem: str | None, waiting: str | None = None, key_name: str = "key",
) -> str:
    outcome = trace.outcome or "not ended yet"
    rows = []
    for s in trace.steps:
        decoded = event_body(s.record.event)
        fields = s.record.decode_error or ""
        if decoded:
            fields = json.dumps(decoded, ensure_ascii=False, indent=1)
        cause = f'<a href="#step-{s.cause}">#{s.cause}</a>' if s.cause else ""
        rows.append(
            f'<tr id="step-{s.number}"><td class="num">{s.number}</td>'
            f"<td>{short_time(s.record.timestamp_ms)[11:]}</td><td>{escape(s.emitter)}</td>"
            f'<td class="mono">{escape(s.logical_topic)}@{s.record.partition}:{s.record.offset}</td>'
            f"<td>{escape(s.record.type_label)}</td><td>{cause}</td>"
            f'<td>{escape(s.role or "")}</td><td><pre>{escape(fields)}</pre></td></tr>'
        )
    body = (
        f'<p>{escape(key_name)} <strong>{escape(trace.key)}</strong> '
        f"(partition {trace.partition} of {trace.partitions}) · "
        f'outcome <strong class="outcome-{escape(trace.outcome or "running")}" id="saga-outcome">'
        f"{escape(outcome)}</strong> · {len(trace.steps)} event(s)</p>"
        + (f'<p class="waiting" id="saga-waiting">waiting: {escape(waiting)}</p>' if waiting else "")
        + '<p class="legend"><span>● step</span><span style="color:#e04848">⊗ failure</span>'
        '<span style="color:#f29b30">◆ compensation</span><span style="color:#2e9d5b">◉ end</span>'
        '<span style="color:#7a4fd1">■ dead letter</span><span>◌ waiting (not read yet)</span>'
        '<span>→ caused</span>'
        "<span>(hover an event for its fields, click it for its row below)</span></p>"
        f'<div class="timeline-box">{svg}</div><h2>Events</h2>'
        "<table><thead><tr><th>#</th><th>time (UTC)</th><th>emitter</th><th>topic@partition:offset</th>"
        "<th>event</th><th>caused by</th><th>role</th><th>fields</th></tr></thead>"
        f'<tbody>{"".join(rows)}</tbody></table>'
    )
    return layout(f"Saga {trace.saga_id}", body, problem)


def services_page(rows: Sequence[tuple[str, str, float, int]], problem: str | None) -> str:
    table = "".join(
        f'<tr><td><a href="/services/{quote(name)}">{escape(name)}</a></td><td>{escape(description)}</td>'
        f'<td class="num">{rate:.2f}</td><td class="num">{written}</td></tr>'
        for name, description, rate, written in rows
    )
    body = (
        "<table><thead><tr><th>service</th><th>what it does</th><th>events/s (last minute)</th>"
        f"<th>events written</th></tr></thead><tbody>{table}</tbody></table>"
    )
    return layout("Services", body, problem)


def service_page(status: ServiceStatus, problem: str | None) -> str:
    name = status.service.name
    parts = [
        f"<p>{escape(status.service.description)}</p>",
        f'<p>rate <strong id="rate">{status.rate_per_s:.2f}</strong> events/s over the last minute · '
        f"{status.written} event(s) written to <code>{escape(status.service.own_topic)}</code></p>",
        "<h2>Lag</h2>",
    ]
    if status.lag is None:
        parts.append(f'<p class="problem">{escape(status.lag_error or "")}</p>')
    else:
        rows = "".join(f'<tr><td>{escape(t)}</td><td class="num">{n}</td></tr>'
                       for t, n in sorted(status.lag.by_topic.items()))
        parts.append(
            f'<p>not yet processed: <strong id="lag">{status.lag.total}</strong> offset(s) past the '
            "group's committed offsets (transaction markers count as offsets too)</p>"
            f"<table><thead><tr><th>input topic</th><th>lag</th></tr></thead><tbody>{rows}</tbody></table>"
        )
        if status.lag.never_committed:
            parts.append(f"<p>never committed on: {escape(', '.join(status.lag.never_committed))}</p>")
    parts.append(_dead_letters(name, status))
    parts.append("<h2>State</h2><p>The local stores of this machine, read-only.</p>")
    if status.state_error:
        parts.append(f'<p class="problem">{escape(status.state_error)}</p>')
    for table in status.state:
        rows = "".join(
            f'<tr><td class="num">{d.partition}</td><td class="mono">{escape(d.key)}</td>'
            f'<td class="mono">{escape(json.dumps(d.value, sort_keys=True))}</td></tr>'
            for d in table.rows
        )
        more = f"<p>and {table.more} more</p>" if table.more else ""
        parts.append(
            f'<h3>{escape(table.name)}</h3><table class="state" data-table="{escape(table.name)}">'
            f"<thead><tr><th>p</th><th>key</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>{more}"
        )
    return layout(f"Service {name}", "".join(parts), problem)


def _dead_letters(name: str, status: ServiceStatus) -> str:
    head = f"<h2>Dead letters (<code>{escape(status.service.dlq_topic)}</code>)</h2>"
    if status.dead_letters_error:
        return head + f'<p class="problem">{escape(status.dead_letters_error)}</p>'
    if not status.dead_letters:
        return head + "<p>none</p>"
    rows = []
    for d in status.dead_letters:
        r = d.record
        link = f"/services/{quote(name)}/retry?partition={r.partition}&amp;offset={r.offset}"
        action = "retried" if d.retried else f'<a href="{link}">retry…</a>'
        rows.append(
            f'<tr class="dead-letter"><td class="num">{r.partition}</td><td class="num">{r.offset}</td>'
            f"<td>{short_time(r.timestamp_ms)}</td><td>{escape(r.type_label)}</td>"
            f"<td>{escape(d.error_class)}</td><td>{escape(d.error_message)}</td><td>{action}</td></tr>"
        )
    pending = sum(not d.retried for d in status.dead_letters)
    retry_all = f'<p><a href="/services/{quote(name)}/retry">retry all {pending} not yet retried…</a></p>' \
        if pending else ""
    return (
        head + "<table><thead><tr><th>p</th><th>offset</th><th>time (UTC)</th><th>type</th><th>error</th>"
        f'<th>reason</th><th></th></tr></thead><tbody>{"".join(rows)}</tbody></table>{retry_all}'
    )


def retry_confirm(name: str, letters: Sequence[DeadLetter], partition: int | None, offset: int | None) -> str:
    pending = [d for d in letters if not d.retried]
    what = "every dead letter not yet retried"
    if offset is not None:
        what = f"the dead letter at {partition}:{offset}"
    chosen = (("partition", partition), ("offset", offset))
    hidden = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in chosen if v is not None)
    listing = "".join(
        f"<li>{d.record.partition}:{d.record.offset} {escape(d.error_class)}: {escape(d.error_message)}</li>"
        for d in pending
    )
    body = (
        f"<p>This sends {what} of <strong>{escape(name)}</strong> back to {escape(name)} alone "
        "(through its retry topic, on the partition of its key), once: each retry is recorded "
        "and never repeated. It is the one thing this view writes.</p>"
        f"<ul>{listing}</ul>"
        + (f'<form method="post" action="/services/{quote(name)}/retry">{hidden}'
           '<input type="hidden" name="confirm" value="yes">'
           f'<button type="submit" id="confirm-retry">Send {len(pending)} dead letter(s) back</button> '
           f'<a href="/services/{quote(name)}">cancel</a></form>'
           if pending else "<p>Nothing to retry: every selected dead letter was retried already.</p>")
    )
    return layout(f"Retry dead letters of {name}?", body)


def retry_done(name: str, report: RetryReport) -> str:
    body = (
        f'<p id="retried">{len(report.sent)} dead letter(s) sent back; '
        f"{len(report.already_retried)} had been retried before; "
        f"{len(report.refused)} cannot be retried.</p>"
        + "".join(f'<p class="refused">{escape(why)}</p>' for _d, why in report.refused) +
        f'<p><a href="/services/{quote(name)}">back to {escape(name)}</a></p>'
    )
    return layout(f"Dead letters of {name} retried", body)


def graph_page(svg: str | None, mermaid: str) -> str:
    if svg is not None:
        svg = svg[svg.find("<svg"):]  # graphviz's XML declaration and doctype have no place inline
        body = (f'<div class="graph">{svg}</div>'
                f"<details><summary>Mermaid</summary><pre>{escape(mermaid)}</pre></details>")
    else:
        body = ("<p>Graphviz (<code>dot</code>) is not installed, so here is the Mermaid text; paste it "
                f'into any Mermaid viewer.</p><pre class="mermaid">{escape(mermaid)}</pre>')
    return layout("Choreography graph", body)


def message(title: str, text: str, problem: str | None = None) -> str:
    return layout(title, f'<p class="problem">{escape(text)}</p>', problem)
