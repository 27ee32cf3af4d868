"""One saga's trace as an SVG timeline: a swimlane per emitter, each event at its time, an arrow
from each cause to its effect, failures and compensations marked, details in each event's <title>.
A saga not ended shows, after its last event, a dashed mark in the lane of each service that owes
it the next step, with a dashed arrow from the event that service has not read.

Plain SVG with classes and data- attributes (no script): the browser shows a <title> on hover,
and each event links to its row in the details table under the drawing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

from choreo.ops.records import event_body, short_time
from choreo.ops.stuck import Owing
from choreo.ops.trace import Trace, TraceStep

LANE_HEIGHT = 64
LABEL_WIDTH = 150  # the lane names on the left
MIN_GAP = 56  # px between two events: records a millisecond apart must not hide each other
PX_PER_MS = 0.6
MAX_SPAN_PX = 1100  # a saga that took minutes is scaled down to this width
RADIUS = 9
AXIS_HEIGHT = 34


def lanes_of(trace: Trace, service_order: Sequence[str], waiting: Sequence[Owing] = ()) -> list[str]:
    """The emitters the saga passed through and the services it waits for: the edge first, then
    services in the installation's order, then dead-letter lanes (any other emitter last, by name)."""
    present = {s.emitter for s in trace.steps} | {o.service for o in waiting}
    known = ["edge", *service_order, *(f"{name} (DLQ)" for name in service_order)]
    return [lane for lane in known if lane in present] + sorted(present - set(known))


def x_positions(steps: Sequence[TraceStep]) -> dict[int, float]:
    """Step number -> x: proportional to the record time, but at least MIN_GAP after the previous
    event so that a burst of events stays readable (the axis labels carry the real times)."""
    if not steps:
        return {}
    first = steps[0].record.timestamp_ms
    span = max(1, steps[-1].record.timestamp_ms - first)
    scale = min(PX_PER_MS, MAX_SPAN_PX / span)
    out: dict[int, float] = {}
    previous: float = LABEL_WIDTH + 30 - MIN_GAP
    for step in steps:
        x = LABEL_WIDTH + 30 + (step.record.timestamp_ms - first) * scale
        previous = max(x, previous + MIN_GAP)
        out[step.number] = previous
    return out


def short_type(step: TraceStep) -> str:
    return step.record.event_type.rsplit(".", 1)[-1]  # the decoded type, not the header's claim


def details(step: TraceStep) -> str:
    """What hovering an event shows: type, time, where it is in the log, and its fields."""
    body = event_body(step.record.event)
    fields = json.dumps(body, ensure_ascii=False, indent=1) if body else (step.record.decode_error or "")
    role = f" ({step.role})" if step.role else ""
    return (f"#{step.number} {step.record.type_label}{role}\n{short_time(step.record.timestamp_ms)} UTC\n"
            f"{step.logical_topic} partition {step.record.partition} offset {step.record.offset}\n{fields}")


def render(trace: Trace, service_order: Sequence[str], waiting: Sequence[Owing] = ()) -> str:
    steps = trace.steps
    lanes = lanes_of(trace, service_order, waiting)
    lane_y = {lane: AXIS_HEIGHT + i * LANE_HEIGHT + LANE_HEIGHT / 2 for i, lane in enumerate(lanes)}
    xs = x_positions(steps)
    waiting_x = max(xs.values(), default=LABEL_WIDTH) + 2 * MIN_GAP
    width = int((waiting_x if waiting else max(xs.values(), default=LABEL_WIDTH)) + 130)
    height = AXIS_HEIGHT + len(lanes) * LANE_HEIGHT + 10
    at = {s.number: (xs[s.number], lane_y[s.emitter]) for s in steps}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline of saga {escape(trace.saga_id)}">',
        _DEFS,
    ]
    for i, lane in enumerate(lanes):
        top = AXIS_HEIGHT + i * LANE_HEIGHT
        parts.append(
            f'<g class="lane" data-lane="{escape(lane)}">'
            f'<rect class="lane-band{" odd" if i % 2 else ""}" x="0" y="{top}" width="{width}" '
            f'height="{LANE_HEIGHT}"/>'
            f'<text class="lane-name" x="10" y="{top + LANE_HEIGHT / 2 + 5}">{escape(lane)}</text></g>'
        )
    first_ms = steps[0].record.timestamp_ms if steps else 0
    for s in steps:
        x = xs[s.number]
        parts.append(
            f'<g class="tick"><line x1="{x:.1f}" y1="{AXIS_HEIGHT - 6}" x2="{x:.1f}" y2="{height - 10}"/>'
            f'<text x="{x:.1f}" y="{AXIS_HEIGHT - 10}">+{s.record.timestamp_ms - first_ms} ms</text></g>'
        )
    for s in steps:
        if s.cause is not None and s.cause in at:
            (x1, y1), (x2, y2) = at[s.cause], at[s.number]
            parts.append(
                f'<path class="cause" data-from="{s.cause}" data-to="{s.number}" '
                f'd="{_arrow_path(x1, y1, x2, y2)}" marker-end="url(#arrowhead)"/>'
            )
    in_lane: dict[str, int] = {}
    for s in steps:
        x, y = at[s.number]
        role = s.role or "step"
        name, label = short_type(s), s.record.type_label
        # Names alternate below and above their mark: neighbours in a lane may be MIN_GAP apart.
        in_lane[s.emitter] = in_lane.get(s.emitter, 0) + 1
        label_y = y + RADIUS + 14 if in_lane[s.emitter] % 2 else y - RADIUS - 7
        parts.append(
            f'<a href="#step-{s.number}"><g class="event {escape(role.replace(" ", "-"))}" '
            f'data-step="{s.number}" data-type="{escape(name)}" data-role="{escape(role)}" '
            f'data-lane="{escape(s.emitter)}">'
            f'<title>{escape(details(s))}</title>'
            f'{_mark(role, x, y)}'
            f'<text class="event-name" x="{x:.1f}" y="{label_y:.1f}">{escape(label)}</text></g></a>'
        )
    parts += _waiting_marks(trace, waiting, waiting_x, lane_y, at)
    parts.append("</svg>")
    return "".join(parts)


def _waiting_marks(
    trace: Trace, waiting: Sequence[Owing], x: float, lane_y: dict[str, float],
    at: dict[int, tuple[float, float]],
) -> list[str]:
    """A dashed ring in each owing service's lane, after the last event, and a dashed arrow from
    the event it has not read (when that event is one of the trace's steps)."""
    step_at = {(s.logical_topic, s.record.partition, s.record.offset): s.number for s in trace.steps}
    parts = []
    for o in waiting:
        y = lane_y[o.service]
        unread = step_at.get((o.topic, o.partition, o.offset))
        if unread is not None:
            x1, y1 = at[unread]
            parts.append(f'<path class="cause unread" data-from="{unread}" data-to="waiting" '
                         f'd="{_arrow_path(x1, y1, x, y)}" marker-end="url(#arrowhead)"/>')
        state = "running" if o.running else "NOT RUNNING"
        parts.append(
            f'<g class="event waiting{"" if o.running else " down"}" data-lane="{escape(o.service)}" '
            f'data-role="waiting" data-unread="{unread if unread is not None else ""}">'
            f"<title>{escape(f'{o.service} has not read {o.event} on {o.topic} (lag {o.lag}, {state})')}"
            f'</title><circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS}"/>'
            f'<text class="event-name" x="{x:.1f}" y="{y + RADIUS + 14:.1f}">'
            f"waiting{'' if o.running else ' (not running)'}</text></g>"
        )
    return parts


def _arrow_path(x1: float, y1: float, x2: float, y2: float) -> str:
    # Start and end on the circles' rims, bent a little so arrows between the same lanes part.
    if y1 == y2:
        return f"M{x1 + RADIUS:.1f},{y1:.1f} L{x2 - RADIUS - 2:.1f},{y2:.1f}"
    down = 1 if y2 > y1 else -1
    sy, ey = y1 + down * RADIUS, y2 - down * (RADIUS + 2)
    mid = (sy + ey) / 2
    return f"M{x1:.1f},{sy:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{ey:.1f}"


def _mark(role: str, x: float, y: float) -> str:
    """A circle for a step, a cross-marked red circle for a failure, an orange diamond for a
    compensation, a double ring for the saga's end, a square for a dead letter."""
    if role == "failure":
        d = RADIUS * 0.55
        return (f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS}"/>'
                f'<path class="cross" d="M{x - d:.1f},{y - d:.1f} L{x + d:.1f},{y + d:.1f} '
                f'M{x + d:.1f},{y - d:.1f} L{x - d:.1f},{y + d:.1f}"/>')
    if role == "compensation":
        r = RADIUS + 2
        return (f'<path class="mark" d="M{x:.1f},{y - r:.1f} L{x + r:.1f},{y:.1f} L{x:.1f},{y + r:.1f} '
                f'L{x - r:.1f},{y:.1f} Z"/>')
    if role == "end":
        return (f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS}"/>'
                f'<circle class="ring" cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS + 4}"/>')
    if role == "dead letter":
        return (f'<rect class="mark" x="{x - RADIUS:.1f}" y="{y - RADIUS:.1f}" '
                f'width="{2 * RADIUS}" height="{2 * RADIUS}"/>')
    return f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="{RADIUS}"/>'


# Styles live in the SVG so that a saved drawing looks the same outside the page.
_DEFS = """<defs><marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" \
markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#5b6b7b"/></marker>
<style>
.lane-band { fill: #f7f9fb; } .lane-band.odd { fill: #eef2f6; }
.lane-name { font: 600 13px sans-serif; fill: #243447; }
.tick line { stroke: #d5dde5; stroke-dasharray: 2 3; } .tick text { font: 10px sans-serif; fill: #6b7b8b; \
text-anchor: middle; }
.cause { fill: none; stroke: #5b6b7b; stroke-width: 1.4; }
.event .mark { fill: #2f7dd1; stroke: #1d4f86; stroke-width: 1.5; }
.event.failure .mark { fill: #e04848; stroke: #8c1d1d; } .event .cross { stroke: #fff; stroke-width: 2; }
.event.compensation .mark { fill: #f29b30; stroke: #9a5a0c; }
.event.end .mark { fill: #2e9d5b; stroke: #1a5e36; } .event .ring { fill: none; stroke: #1a5e36; \
stroke-width: 1.5; }
.event.dead-letter .mark { fill: #7a4fd1; stroke: #3f2380; }
.event.waiting .mark { fill: #fff; stroke: #5b6b7b; stroke-width: 2; stroke-dasharray: 4 3; }
.event.waiting.down .mark { stroke: #e04848; } .cause.unread { stroke-dasharray: 5 4; }
.event-name { font: 11px sans-serif; fill: #243447; text-anchor: middle; }
.event:hover .mark { stroke-width: 3; }
</style></defs>"""
