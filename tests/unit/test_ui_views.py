"""`choreo ui` without a broker: the saga index and its filters, the SVG timeline, the list page,
and the one sentence when the ui extra is missing. The browser test (tests/e2e/test_web_ui.py)
runs the same pages on the real stack."""

from __future__ import annotations

import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any, cast

from starlette.testclient import TestClient

from choreo.domain import Installation
from choreo.ops.log_reader import LogRecord, to_millis
from choreo.ops.stuck import Owing
from choreo.ops.trace import Trace, TraceStep
from choreo.serde.codec import Codec
from choreo.settings import Settings
from choreo.ui import timeline
from choreo.ui.app import create_app
from choreo.ui.index import SagaFilter, SagaIndex
from choreo.ui.queries import Queries
from consumers.delivery.events import DeliveryFailed
from consumers.domain import DOMAIN
from consumers.drones.events import DroneAssigned, DroneReleased
from consumers.orders.events import OrderCompensated, OrderCompleted, OrderFailed, OrderPlaced
from consumers.packaging.events import PackagePrepared, StockReleased
from harness.paths import REPO
from tests.support.records import T0, record

SVG = "{http://www.w3.org/2000/svg}"
T0_MS = to_millis(T0)
TOPICS = {"p.orders": "orders", "p.packaging": "packaging", "p.drones": "drones", "p.delivery": "delivery"}
TOPIC_OF = {OrderPlaced: "orders", OrderFailed: "orders", OrderCompensated: "orders",
            OrderCompleted: "orders", PackagePrepared: "packaging", StockReleased: "packaging",
            DroneAssigned: "drones", DroneReleased: "drones", DeliveryFailed: "delivery"}


def _log(event: Any, at_ms: int, offset: int = 0) -> LogRecord:
    headers = {"event_type": type(event).SCHEMA.encode(), "order_id": event.order_id.encode()}
    return LogRecord(f"p.{TOPIC_OF[type(event)]}", 0, offset, at_ms, event.hub.encode(), b"", headers, event)


def _compensated_saga(order_id: str = "order-2", hub: str = "hub-north") -> list[Any]:
    """A failed delivery: placed, packed, a drone assigned, the address unknown, both released."""
    placed = record(OrderPlaced, order_id=order_id, hub=hub, sku="SKU-0001", quantity=1, address="<b>nowhere")
    packed = record(PackagePrepared, order_id=order_id, hub=hub, causation_id=placed.event_id,
                    package_id="pkg-1", sku="SKU-0001", quantity=1, address="<b>nowhere")
    assigned = record(DroneAssigned, order_id=order_id, hub=hub, causation_id=packed.event_id,
                      drone_id="drone-001", package_id="pkg-1", address="<b>nowhere")
    failed = record(DeliveryFailed, order_id=order_id, hub=hub, causation_id=assigned.event_id,
                    drone_id="drone-001", package_id="pkg-1", reason="ADDRESS_NOT_FOUND")
    order_failed = record(OrderFailed, order_id=order_id, hub=hub, causation_id=failed.event_id,
                          reason="ADDRESS_NOT_FOUND")
    drone_back = record(DroneReleased, order_id=order_id, hub=hub, causation_id=order_failed.event_id,
                        drone_id="drone-001", package_id="pkg-1", failure_reason="ADDRESS_NOT_FOUND")
    stock_back = record(StockReleased, order_id=order_id, hub=hub, causation_id=order_failed.event_id,
                        package_id="pkg-1", sku="SKU-0001", quantity=1, reason="ADDRESS_NOT_FOUND")
    ended = record(OrderCompensated, order_id=order_id, hub=hub, causation_id=stock_back.event_id,
                   reason="ADDRESS_NOT_FOUND")
    return [placed, packed, assigned, failed, order_failed, drone_back, stock_back, ended]


def _index() -> SagaIndex:
    index = SagaIndex(Installation((DOMAIN,)), TOPICS)
    for i, event in enumerate(_compensated_saga()):
        index.add(_log(event, T0_MS + 10 * i, i))
    placed = record(OrderPlaced, order_id="order-1", hub="hub-south", sku="SKU-0002", quantity=2, address="x")
    done = record(OrderCompleted, order_id="order-1", hub="hub-south", causation_id=placed.event_id,
                  package_id="pkg-2", drone_id="drone-002")
    index.add(_log(done, T0_MS + 60_500, 1))  # read before its cause: another topic came first
    index.add(_log(placed, T0_MS + 60_000))
    return index


def test_the_index_sums_each_saga_up_and_filters_by_outcome_reason_hub_and_time() -> None:
    index = _index()
    sagas = {s.saga_id: s for s in index.sagas()}
    assert [s.saga_id for s in index.sagas()] == ["order-1", "order-2"]  # newest first
    failed = sagas["order-2"]
    assert (failed.outcome, failed.reason, failed.key, failed.events) == (
        "compensated", "ADDRESS_NOT_FOUND", "hub-north", 8)
    assert failed.last_ms - failed.started_ms == 70 and failed.last_type == "OrderCompensated"
    assert (sagas["order-1"].outcome, sagas["order-1"].reason) == ("completed", None)
    assert (sagas["order-1"].last_type, sagas["order-1"].started_ms) == ("OrderCompleted", T0_MS + 60_000)

    def ids(**where: Any) -> list[str]:
        return [s.saga_id for s in index.sagas(SagaFilter(**where))]

    assert ids(outcome="compensated") == ["order-2"]
    assert ids(outcome="running") == []
    assert ids(reason="ADDRESS_NOT_FOUND") == ["order-2"]
    assert ids(key="hub-south") == ["order-1"]
    assert ids(since=T0 + timedelta(seconds=30)) == ["order-1"]
    assert ids(until=T0 + timedelta(seconds=30)) == ["order-2"]
    outcomes, reasons, hubs = index.choices()
    assert (outcomes, reasons, hubs) == (["compensated", "completed"], ["ADDRESS_NOT_FOUND"],
                                         ["hub-north", "hub-south"])


def test_a_saga_without_its_end_is_running() -> None:
    index = SagaIndex(Installation((DOMAIN,)), TOPICS)
    for i, event in enumerate(_compensated_saga()[:4]):
        index.add(_log(event, T0_MS + i, i))
    (saga,) = index.sagas(SagaFilter(outcome="running"))
    assert saga.outcome is None and saga.reason == "ADDRESS_NOT_FOUND"  # the first failure's, until the end


def _trace(steps: int | None = None) -> Trace:
    """The compensated saga's trace; its first `steps` only, not ended, when given."""
    events = _compensated_saga()[:steps]
    trace = Trace("order-2", "hub-north", 0, 4, outcome="compensated" if steps is None else None)
    number_of: dict[str, int] = {}
    for i, event in enumerate(events, start=1):
        role = DOMAIN.roles(event) if DOMAIN.roles else None
        if type(event) in DOMAIN.ends:
            role = "end"
        cause = number_of.get(event.causation_id) if event.causation_id else None
        trace.steps.append(TraceStep(i, _log(event, T0_MS + (i // 3), i), TOPIC_OF[type(event)],
                                     TOPIC_OF[type(event)], cause, role))
        number_of[event.event_id] = i
    return trace


def test_the_timeline_has_a_lane_per_emitter_an_event_per_step_and_an_arrow_per_cause() -> None:
    trace = _trace()
    svg = ET.fromstring(timeline.render(trace, ["orders", "packaging", "drones", "delivery"]))
    lanes = [g.get("data-lane") for g in svg.iter(f"{SVG}g") if g.get("class") == "lane"]
    assert lanes == ["orders", "packaging", "drones", "delivery"]
    events = {g.get("data-step") or "": g for g in svg.iter(f"{SVG}g")
              if (g.get("class") or "").startswith("event")}
    assert sorted(events, key=int) == [str(s.number) for s in trace.steps]
    roles = {g.get("data-type"): g.get("data-role") for g in events.values()}
    assert roles["DeliveryFailed"] == roles["OrderFailed"] == "failure"
    assert roles["DroneReleased"] == roles["StockReleased"] == "compensation"
    assert roles["OrderCompensated"] == "end" and roles["OrderPlaced"] == "step"
    arrows = {(p.get("data-from"), p.get("data-to")) for p in svg.iter(f"{SVG}path")
              if p.get("class") == "cause"}
    assert arrows == {(str(s.cause), str(s.number)) for s in trace.steps if s.cause}
    assert len(arrows) == len(trace.steps) - 1
    # The hover text carries the fields, escaped: a hostile address stays text.
    title = events["1"].find(f"{SVG}title")
    assert title is not None and "<b>nowhere" in (title.text or "")


def test_a_saga_not_ended_marks_the_service_that_has_not_read_its_event() -> None:
    trace = _trace(steps=3)  # placed, packed, a drone assigned: delivery has not read it
    assigned = trace.steps[-1]
    owing = [Owing("delivery", lag=7, running=False, topic="drones", event=assigned.record.type_label,
                   partition=assigned.record.partition, offset=assigned.record.offset)]
    svg = ET.fromstring(timeline.render(trace, ["orders", "packaging", "drones", "delivery"], owing))
    lanes = [g.get("data-lane") for g in svg.iter(f"{SVG}g") if g.get("class") == "lane"]
    assert lanes == ["orders", "packaging", "drones", "delivery"]  # delivery emitted nothing yet
    (mark,) = [g for g in svg.iter(f"{SVG}g") if g.get("data-role") == "waiting"]
    assert mark.get("data-lane") == "delivery" and mark.get("data-unread") == str(assigned.number)
    assert "down" in (mark.get("class") or "")
    title = mark.find(f"{SVG}title")
    hover = title.text if title is not None else ""
    assert hover and "delivery has not read" in hover and "NOT RUNNING" in hover
    (arrow,) = [p for p in svg.iter(f"{SVG}path") if "unread" in (p.get("class") or "")]
    assert arrow.get("data-from") == str(assigned.number)
    circle = mark.find(f"{SVG}circle")
    assert circle is not None
    assert float(circle.get("cx") or 0) > max(timeline.x_positions(trace.steps).values())  # after the last


def test_a_saga_waiting_on_nobody_or_ended_has_no_waiting_mark() -> None:
    for trace in (_trace(steps=3), _trace()):
        svg = ET.fromstring(timeline.render(trace, ["orders", "packaging", "drones", "delivery"]))
        assert not [g for g in svg.iter(f"{SVG}g") if g.get("data-role") == "waiting"]


def test_events_a_millisecond_apart_stay_apart_and_in_time_order() -> None:
    xs = timeline.x_positions(_trace().steps)
    ordered = [xs[n] for n in sorted(xs)]
    assert all(b - a >= timeline.MIN_GAP for a, b in zip(ordered, ordered[1:], strict=False))


def _client(index: SagaIndex) -> TestClient:
    # The list pages read only the index; a codec is never asked for here.
    queries = Queries(Settings(), cast(Codec, None), index)
    return TestClient(create_app(queries, lambda: (None, "flowchart LR\n  orders --> packaging")))


def test_the_list_page_shows_the_filtered_sagas_and_refuses_a_bad_time_in_one_sentence() -> None:
    client = _client(_index())
    page = client.get("/?outcome=completed").text
    assert 'data-saga="order-1"' in page and 'data-saga="order-2"' not in page
    assert "new EventSource('/events' + (q ? '?' + q : ''))" in page
    bad = client.get("/?since=yesterday")
    assert bad.status_code == 400 and "since &#x27;yesterday&#x27; is not an ISO time" in bad.text
    assert client.get("/services/nobody").status_code == 404


def test_a_retry_is_never_sent_without_its_confirmation() -> None:
    client = _client(_index())
    refused = client.post("/services/packaging/retry", content=b"partition=0&offset=1",
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert refused.status_code == 400 and "not confirmed" in refused.text
    assert client.get("/services/packaging/retry?partition=0").status_code == 400  # offset missing
    elsewhere = client.post("/services/packaging/retry", content=b"confirm=yes",
                            headers={"content-type": "application/x-www-form-urlencoded",
                                     "origin": "http://evil.example"})
    assert elsewhere.status_code == 403 and "another site" in elsewhere.text


def test_without_the_ui_extra_choreo_ui_says_what_to_install() -> None:
    # The extra's packages made unimportable, as in an install without choreo[ui].
    script = ("import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None; "
              "from choreo.cli.main import app; app(['ui'])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "error: choreo ui needs its extra: pip install 'choreo[ui]' (Starlette and uvicorn)")
    assert "Traceback" not in out.stderr


def test_without_graphviz_the_graph_page_shows_the_mermaid_text() -> None:
    page = _client(_index()).get("/graph")
    assert page.status_code == 200 and "orders --&gt; packaging" in page.text


def test_a_port_in_use_is_one_sentence_before_anything_is_read() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "choreo.cli.main", "ui", "--port", str(port)],
                             capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use); choose another --port or --host")


def test_the_pages_label_the_key_with_the_domains_name_for_it() -> None:
    from choreo.ui import pages

    sagas = _index().sagas()
    listed = pages.saga_list(sagas, {"key": "hub-south"}, _index().choices(), None, key_name="account")
    assert "<th>account</th>" in listed and '<label>account<select name="key">' in listed
    assert '<option value="hub-south" selected>' in listed
    page = pages.saga_page(_trace(), "<svg/>", None, key_name="account")
    assert "account <strong>hub-north</strong>" in page


def test_an_event_written_after_the_saga_ended_does_not_move_its_end() -> None:
    index = _index()
    late = record(DroneReleased, order_id="order-2", hub="hub-north", drone_id="drone-001",
                  package_id="pkg-1", failure_reason=None)  # e.g. a plug-in's event, a minute on
    index.add(_log(late, T0_MS + 60_000, 99))
    saga = index.saga("order-2")
    assert saga is not None and saga.events == 9
    assert (saga.last_type.rsplit(".", 1)[-1], saga.last_ms - saga.started_ms) == ("OrderCompensated", 70)


def test_the_list_filters_by_key_under_the_domains_name_for_it_too() -> None:
    client = _client(_index())
    for query in ("/?key=hub-south", "/?hub=hub-south"):  # ?hub=: as the CLI's --hub alias
        page = client.get(query).text
        assert 'data-saga="order-1"' in page and 'data-saga="order-2"' not in page, query
