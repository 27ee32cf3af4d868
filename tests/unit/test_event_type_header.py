"""The tools show the type of the decoded record, as the worker acts on it, and flag an
`event_type` header that claims another one."""

from __future__ import annotations

import json

import pytest

from choreo.cli import ops_cmd
from choreo.ops.log_reader import LogRecord
from choreo.ops.records import RecordFilter, as_json
from choreo.ops.trace import TraceStep
from choreo.ui import timeline
from consumers.orders.events import CancelOrder, PlaceOrder
from tests.support.records import record


def _record(header: bytes | None) -> LogRecord:
    order = record(PlaceOrder, sku="SKU-0001", quantity=1, address="1 Harbour Street")
    headers = {"order_id": order.order_id.encode()}
    if header is not None:
        headers["event_type"] = header
    return LogRecord("p.orders.commands", 0, 7, 0, b"hub-north", b"", headers, order)


LYING = _record(CancelOrder.SCHEMA.encode())


def test_the_type_is_the_decoded_records_and_a_lying_header_is_named_beside_it() -> None:
    assert LYING.event_type == PlaceOrder.SCHEMA
    assert LYING.header_lies
    assert LYING.type_label == "PlaceOrder (header says CancelOrder)"


@pytest.mark.parametrize("header", [PlaceOrder.SCHEMA.encode(), b"PlaceOrder", None])
def test_a_true_short_or_missing_header_is_not_flagged(header: bytes | None) -> None:
    honest = _record(header)
    assert not honest.header_lies and honest.type_label == "PlaceOrder"


def test_an_undecodable_record_still_shows_what_its_header_claims() -> None:
    junk = LogRecord("p.orders.commands", 0, 8, 0, b"hub-north", b"\x00junk",
                     {"event_type": CancelOrder.SCHEMA.encode()}, decode_error="malformed Avro body")
    assert junk.event_type == CancelOrder.SCHEMA and not junk.header_lies


def test_replay_filters_and_prints_the_decoded_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert RecordFilter(event_type="PlaceOrder").matches(LYING)
    assert not RecordFilter(event_type="CancelOrder").matches(LYING)
    line = json.loads(json.dumps(as_json(LYING, "orders.commands")))
    assert line["type"] == PlaceOrder.SCHEMA and line["header_says"] == CancelOrder.SCHEMA
    assert as_json(_record(PlaceOrder.SCHEMA.encode()), "orders.commands")["header_says"] is None
    ops_cmd._print_table([LYING], chunk=100)
    out = capsys.readouterr().out  # the type column wraps the flag onto a second line
    assert "PlaceOrder (header" in out and "says CancelOrder)" in out


def test_the_ui_timeline_shows_the_decoded_type_and_the_flag() -> None:
    step = TraceStep(1, LYING, "orders.commands", "edge", None, None)
    assert timeline.short_type(step) == "PlaceOrder"
    assert timeline.details(step).startswith("#1 PlaceOrder (header says CancelOrder)")
