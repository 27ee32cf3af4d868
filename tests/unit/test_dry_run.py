"""The dry run's decisions and diffs, on recorded histories made in memory (no Kafka)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import pytest

from choreo.contract import Service
from choreo.exceptions import ConfigurationError
from choreo.ops.dry_run import (
    ADDED,
    CHANGED,
    IDENTICAL,
    REMOVED,
    DryRunError,
    DryRunReport,
    Recorded,
    compare_events,
    dry_run_partition,
    replay_order,
)
from choreo.ops.dry_run_report import as_json, text_lines
from choreo.ops.service_version import load_version
from choreo.testing import MemoryState, handle
from consumers.delivery.events import DeliveryCompleted
from consumers.domain import DOMAIN
from consumers.orders.events import OrderPlaced
from consumers.packaging.events import PackagePrepared, PackagingFailed, StockAdded, StockShipped
from consumers.packaging.service import SERVICE as PACKAGING
from consumers.packaging.service import package_id_for
from producers.commands import add_stock
from tests.support.packaging_out_of_stock import SERVICE as OUT_OF_STOCK
from tests.support.records import T0, record


class Log:
    """A recorded history of one partition, written the way a worker writes it."""

    def __init__(self, service: Service = PACKAGING) -> None:
        self.service = service
        self.state = MemoryState()
        self.inputs: dict[str, list[Recorded]] = {t: [] for t in service.inputs}
        self.own: list[Recorded] = []
        self.clock = 0

    def take(self, topic: str, event: Any, answer: bool = True) -> Recorded:
        """Record `event` on `topic`; the worker answers it at once unless `answer` is False."""
        self.clock += 10
        r = Recorded(topic, 0, len(self.inputs[topic]), self.clock, event)
        self.inputs[topic].append(r)
        if answer:
            self.answer(r)
        return r

    def answer(self, r: Recorded) -> None:
        for out in handle(self.service, self.state, r.event):
            self.clock += 1
            self.own.append(Recorded(self.service.own_topic, 0, len(self.own), self.clock, out))


def order(order_id: str, quantity: int = 2) -> OrderPlaced:
    return record(OrderPlaced, order_id=order_id, sku="SKU-0001", quantity=quantity, address="1 Main St")


def delivered(placed: OrderPlaced) -> DeliveryCompleted:
    return record(DeliveryCompleted, order_id=placed.order_id, drone_id="drone-001",
                  package_id=package_id_for(placed.order_id), address=placed.address)


def history() -> tuple[Log, list[OrderPlaced]]:
    """Stock for three orders of two, four orders (the last one finds the shelf short), one delivery."""
    log = Log()
    log.take("packaging.commands", add_stock("hub-north", "SKU-0001", 6, T0))
    orders = [order(f"order-{i}") for i in range(4)]
    for o in orders:
        log.take("orders", o)
    log.take("delivery", delivered(orders[0]))
    return log, orders


def run(log: Log, service: Service = PACKAGING, start_at: int = 0, dead: Sequence[Any] = ()) -> Any:
    inputs = {t: [r for r in rs if r.timestamp_ms >= start_at] for t, rs in log.inputs.items()}
    return dry_run_partition(service, 0, log.own, inputs, dead)


def kinds(result: Any) -> list[tuple[str, str, str]]:
    """(input type, change kind, event type) of every non-identical change."""
    return [(o.input.type_name, c.kind, c.type_name)
            for o in result.outcomes for c in o.changes if c.kind != IDENTICAL]


# -- unchanged code ---------------------------------------------------------------------------------


def test_the_installed_code_on_its_own_history_reports_no_difference() -> None:
    log, _ = history()
    result = run(log)
    assert len(result.outcomes) == 6
    assert not any(o.differs for o in result.outcomes)
    assert result.state_changes == ()
    assert sum(len(o.changes) for o in result.outcomes) == len(log.own)
    assert result.initial_events == 0


def test_from_a_starting_point_the_state_is_the_fold_of_the_own_events_before_it() -> None:
    log, orders = history()
    start = log.inputs["orders"][2].timestamp_ms  # orders 2 and 3 and the delivery are replayed
    result = run(log, start_at=start)
    assert [o.input.type_name for o in result.outcomes] == ["OrderPlaced", "OrderPlaced", "DeliveryCompleted"]
    assert result.initial_events == 3  # StockAdded and two PackagePrepared
    # Order 3 still finds the shelf short only because orders 0 and 1 are in the starting state.
    assert not any(o.differs for o in result.outcomes) and result.state_changes == ()


# -- a changed decide -------------------------------------------------------------------------------


def test_a_changed_decide_shows_each_answer_that_differs_and_the_state_it_leaves() -> None:
    log, orders = history()
    result = run(log, OUT_OF_STOCK)
    assert kinds(result) == [
        ("OrderPlaced", REMOVED, "PackagePrepared"), ("OrderPlaced", ADDED, "PackagingFailed"),
        ("OrderPlaced", REMOVED, "PackagePrepared"), ("OrderPlaced", ADDED, "PackagingFailed"),
        ("OrderPlaced", REMOVED, "PackagePrepared"), ("OrderPlaced", ADDED, "PackagingFailed"),
        # The delivered order was never packed in this version: nothing to ship.
        ("DeliveryCompleted", REMOVED, "StockShipped"),
    ]
    fourth = result.outcomes[4]
    assert fourth.input.event == orders[3] and not fourth.differs
    (same,) = fourth.changes
    assert same.kind == IDENTICAL and isinstance(same.dry, PackagingFailed)
    changes = {(c.table, c.key): c for c in result.state_changes}
    shelf = changes[("stock", "hub-north/SKU-0001")]
    assert shelf.actual == {"on_hand": 0, "reserved": 4, "shipped": 2}
    assert shelf.dry == {"on_hand": 6, "reserved": 0, "shipped": 0}
    assert shelf.fields == {"on_hand": (0, 6), "reserved": (4, 0), "shipped": (2, 0)}
    for i in range(3):
        reservation = changes[("reservations", f"hub-north/order-{i}")]
        assert reservation.dry is not None and reservation.dry["status"] == "refused"


def test_later_decisions_see_the_state_of_the_version_not_the_recorded_one() -> None:
    # A version that packs one item fewer leaves more on the shelf, so the last order is packed.
    def one_less(state: Any, event: Any) -> list[Any]:
        if isinstance(event, OrderPlaced):
            event = dataclasses.replace(event, quantity=event.quantity - 1)
        return list(PACKAGING.decide(state, event))

    log, orders = history()
    result = run(log, dataclasses.replace(PACKAGING, decide=one_less))
    last = result.outcomes[4]
    assert [(c.kind, c.type_name) for c in last.changes] == [
        (REMOVED, "PackagingFailed"), (ADDED, "PackagePrepared")]
    first = result.outcomes[1]
    (change,) = first.changes
    # One item fewer weighs one item less (SKU-0001: 250 g).
    assert change.kind == CHANGED and change.fields == {"quantity": (2, 1), "weight_grams": (500, 250)}


# -- pairing and order ------------------------------------------------------------------------------


def test_events_pair_by_id_then_by_type_and_the_rest_is_removed_or_added() -> None:
    placed = order("order-9")
    prepared = PACKAGING.decide(MemoryState(), placed)
    assert prepared and isinstance(prepared[0], PackagingFailed)  # empty shelf
    a = record(StockAdded, sku="SKU-0001", quantity=3)
    renamed = dataclasses.replace(a, event_id="other", quantity=4)
    (c,) = compare_events([a], [renamed])  # no id in common: paired by type
    assert c.kind == CHANGED and c.fields == {"event_id": (a.event_id, "other"), "quantity": (3, 4)}
    shipped = record(StockShipped, package_id="p", sku="SKU-0001", quantity=1)
    out = compare_events([a, shipped], [a, prepared[0]])
    assert [(x.kind, x.type_name) for x in out] == [
        (IDENTICAL, "StockAdded"), (REMOVED, "StockShipped"), (ADDED, "PackagingFailed")]
    same_id = dataclasses.replace(prepared[0], event_id=shipped.event_id)
    (typed,) = compare_events([shipped], [same_id])  # the same id across types: one change
    assert typed.kind == CHANGED and typed.fields["type"] == ("StockShipped", "PackagingFailed")


def test_inputs_go_in_the_order_the_worker_answered_them_else_by_time() -> None:
    def r(topic: str, offset: int, ts: int) -> Recorded:
        return Recorded(topic, 0, offset, ts, None)

    a0, a1 = r("a", 0, 10), r("a", 1, 50)
    b0, b1 = r("b", 0, 20), r("b", 1, 30)
    assert replay_order([[a0, a1], [b0, b1]], {}) == [a0, b0, b1, a1]
    # The worker answered a1 before b0 although b0 is older: its own log says so.
    assert replay_order([[a0, a1], [b0, b1]], {a1.coords: 5, b0.coords: 7}) == [a0, a1, b0, b1]
    # An unranked record waits for nothing; a ranked one waits for every lower rank.
    assert replay_order([[a0, a1], [b0, b1]], {b1.coords: 1, a0.coords: 2}) == [b0, b1, a0, a1]


# -- dead letters -----------------------------------------------------------------------------------


def test_an_input_the_version_cannot_handle_is_a_dead_letter_and_its_state_is_untouched() -> None:
    def bad_address(state: Any, event: Any) -> list[Any]:
        if isinstance(event, OrderPlaced) and event.order_id == "order-1":
            event = dataclasses.replace(event, address="bad")
        return list(PACKAGING.decide(state, event))

    def broken_evolve(state: Any, event: Any) -> None:
        PACKAGING.evolve(state, event)  # half applied when it raises below
        if isinstance(event, PackagePrepared) and event.address == "bad":
            raise ValueError("no shelf for you")

    log, _ = history()
    result = run(log, dataclasses.replace(PACKAGING, decide=bad_address, evolve=broken_evolve))
    bad = result.outcomes[2]
    assert bad.differs and bad.dry_error == "ValueError: no shelf for you"
    assert [(c.kind, c.type_name) for c in bad.changes] == [(REMOVED, "PackagePrepared")]
    # Its half-applied evolve was undone: the next order finds the two items it would have taken.
    assert [(c.kind, c.type_name) for c in result.outcomes[4].changes] == [
        (REMOVED, "PackagingFailed"), (ADDED, "PackagePrepared")]


def test_an_event_the_version_does_not_declare_is_a_dead_letter() -> None:
    def shouts(state: Any, event: Any) -> list[Any]:
        return [event] if isinstance(event, OrderPlaced) else list(PACKAGING.decide(state, event))

    log, _ = history()
    result = run(log, dataclasses.replace(PACKAGING, decide=shouts))
    assert result.outcomes[1].dry_error == "TypeError: OrderPlaced is not among the events packaging emits"


def test_a_version_whose_evolve_fails_on_the_recorded_log_cannot_be_run() -> None:
    def broken_evolve(state: Any, event: Any) -> None:
        if isinstance(event, StockShipped):
            raise KeyError("shipped")
        PACKAGING.evolve(state, event)

    log, _ = history()
    with pytest.raises(DryRunError, match=r"evolve fails on the recorded StockShipped at packaging\[0\]@5"):
        run(log, dataclasses.replace(PACKAGING, evolve=broken_evolve))


def test_an_input_dead_lettered_then_and_now_is_no_difference() -> None:
    log, _ = history()
    stray = log.take("delivery", record(StockAdded, sku="SKU-0001", quantity=1), answer=False)
    result = run(log, dead=[stray.coords])
    (outcome,) = [o for o in result.outcomes if o.input is stray]
    assert outcome.actual_dead and outcome.dry_error is not None and not outcome.differs
    assert "StockAdded is not an event packaging takes on delivery" in outcome.dry_error
    alive = run(log)  # the same record, but the worker had not dead-lettered it
    assert [o.differs for o in alive.outcomes if o.input is stray] == [True]


def test_an_input_recorded_twice_is_compared_once_with_its_answer() -> None:
    log, orders = history()
    again = log.take("orders", orders[1])  # the worker sees the duplicate and answers nothing
    result = run(log)
    assert not any(o.differs for o in result.outcomes)
    (dup,) = [o for o in result.outcomes if o.input is again]
    assert dup.changes == ()


# -- the report -------------------------------------------------------------------------------------


def test_the_report_counts_and_prints_every_difference() -> None:
    log, orders = history()
    report = DryRunReport("packaging", "tests.support.packaging_out_of_stock", None,
                          (run(log, OUT_OF_STOCK),))
    assert report.differs
    doc = json.loads(json.dumps(as_json(report, DOMAIN.envelope)))
    assert doc["inputs"] == 6 and doc["inputs_differing"] == 4 and doc["differs"] is True
    assert doc["events"] == {IDENTICAL: 2, CHANGED: 0, REMOVED: 4, ADDED: 3}
    first = doc["differences"][0]
    assert first["input"]["order_id"] == orders[0].order_id and first["input"]["topic"] == "orders"
    assert [e["kind"] for e in first["events"]] == [REMOVED, ADDED]
    assert first["events"][1]["dry"]["reason"] == "OUT_OF_STOCK"
    assert {s["key"] for s in doc["state"]} >= {"hub-north/SKU-0001", "hub-north/order-0"}
    text = "\n".join(text_lines(report, DOMAIN.envelope))
    assert f"orders[0]@0 OrderPlaced order_id={orders[0].order_id}" in text
    assert "- would no longer emit PackagePrepared" in text
    assert "+ would newly emit PackagingFailed" in text and "reason=OUT_OF_STOCK" in text
    assert "stock hub-north/SKU-0001: on_hand 0 -> 6" in text
    assert text.endswith("differences found")
    same = DryRunReport("packaging", "installed", None, (run(log),))
    assert not same.differs and "\n".join(text_lines(same, DOMAIN.envelope)).endswith("no difference")


# -- --code -----------------------------------------------------------------------------------------


def test_code_names_a_service_by_module_or_module_and_attribute() -> None:
    assert load_version("tests.support.packaging_out_of_stock", "packaging") is OUT_OF_STOCK
    assert load_version("tests.support.packaging_out_of_stock:SERVICE", "packaging") is OUT_OF_STOCK


@pytest.mark.parametrize(("reference", "words"), [
    ("tests.support.no_such_module", "cannot import 'tests.support.no_such_module'"),
    ("tests.support.packaging_out_of_stock:NOPE", "has no 'NOPE'"),
    ("tests.support.packaging_out_of_stock:decide", "is a function, not a choreo.contract.Service"),
    ("tests.support.records", "holds 0 services called 'packaging'"),
    ("consumers.drones.service:SERVICE", "is service 'drones', not 'packaging'"),
    ("module:", "is not of the form module or module:attribute"),
])
def test_code_that_does_not_name_the_service_is_one_sentence(reference: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as e:
        load_version(reference, "packaging")
    assert words in str(e.value) and "\n" not in str(e.value)
