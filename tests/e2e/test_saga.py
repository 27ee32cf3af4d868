"""The drone-delivery saga end to end on the real broker and registry."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from choreo.domain import installation
from producers import commands, seed
from producers.load_plan import plan_orders
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.e2e


def _now() -> datetime:
    return datetime.now(UTC)


def test_the_four_paths_end_with_the_right_events_and_compensations(saga: SagaRun) -> None:
    saga.seed(_now())
    saga.start_all()
    north = "hub-north"
    good_address = seed.deliverable_addresses(north)[0]
    sku = seed.stocked_skus(north)[0]
    orders = {
        "completed": commands.place_order(north, sku, 2, good_address, _now()),
        "out_of_stock": commands.place_order(north, seed.UNSTOCKED_SKU, 1, good_address, _now()),
        "no_drone": commands.place_order(
            "hub-west", seed.stocked_skus("hub-west")[0], 1,
            seed.deliverable_addresses("hub-west")[0], _now(),
        ),
        "no_address": commands.place_order(north, sku, 1, seed.UNKNOWN_ADDRESSES[0], _now()),
    }
    saga.send(orders.values())
    ends = saga.wait_for_ends([o.order_id for o in orders.values()])
    assert ends[orders["completed"].order_id] == "completed"
    for path in ("out_of_stock", "no_drone", "no_address"):
        assert ends[orders[path].order_id] == "compensated", path

    expected = {
        "completed": ["OrderPlaced", "OrderCompleted", "PackagePrepared", "StockShipped",
                      "DroneAssigned", "DroneReleased", "DeliveryCompleted"],
        "out_of_stock": ["OrderPlaced", "OrderFailed", "OrderCompensated", "PackagingFailed"],
        "no_drone": ["OrderPlaced", "OrderFailed", "OrderCompensated", "PackagePrepared",
                     "StockReleased", "DroneUnavailable"],
        "no_address": ["OrderPlaced", "OrderFailed", "OrderCompensated", "PackagePrepared",
                       "StockReleased", "DroneAssigned", "DroneReleased", "DeliveryFailed"],
    }
    for path, names in expected.items():
        assert Counter(saga.saga(orders[path].order_id)) == Counter(names), path
    reasons = {
        r.event.order_id: r.event.reason for r in saga.events("orders")
        if type(r.event).__name__ == "OrderFailed"
    }
    assert reasons[orders["out_of_stock"].order_id] == "OUT_OF_STOCK"
    assert reasons[orders["no_drone"].order_id] == "NO_DRONE"
    assert reasons[orders["no_address"].order_id] == "ADDRESS_NOT_FOUND"


def test_500_mixed_orders_all_end_the_audit_passes_and_state_rebuilds(saga: SagaRun) -> None:
    saga.seed(_now())
    saga.start_all()
    plan = list(plan_orders(500, 0.1, 0.1, seed=11, at=_now(), no_drone_share=0.05))
    saga.send(p.command for p in plan)
    ends = saga.wait_for_ends([p.command.order_id for p in plan], timeout=300)
    assert len(ends) == 500
    saga.stop_workers()
    audit = saga.choreo("audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "ended_once" in audit.stdout and "VIOLATED" not in audit.stdout
    for name in installation().service_names:
        verify = saga.rebuild_verify(name)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert verify.stdout.count(" ok ") == saga.settings.partitions, verify.stdout


def test_bad_input_is_rejected_or_dead_lettered_and_nothing_else_changes(saga: SagaRun) -> None:
    saga.seed(_now())
    saga.start_all()
    north = "hub-north"
    address = seed.deliverable_addresses(north)[0]
    sku = seed.stocked_skus(north)[0]
    invalid = {
        "UNKNOWN_HUB": commands.place_order("hub-atlantis", sku, 1, address, _now()),
        "INVALID_QUANTITY": commands.place_order(north, sku, 0, address, _now()),
        "EMPTY_ADDRESS": commands.place_order(north, sku, 1, "   ", _now()),
        "INVALID_SKU": commands.place_order(north, "banana", 1, address, _now()),
    }
    saga.send(invalid.values())
    # Malformed bytes on the command topic, then a good order behind them on the same partition.
    saga.sender._producer.produce(saga.topic("orders.commands"), key=north.encode(), value=b"\x00junk")
    good = commands.place_order(north, sku, 1, address, _now())
    saga.send([good])
    ends = saga.wait_for_ends([good.order_id, *(c.order_id for c in invalid.values())])
    assert ends[good.order_id] == "completed"
    rejected = {
        r.event.order_id: r.event for r in saga.events("orders")
        if type(r.event).__name__ == "OrderRejected"
    }
    for reason, cmd in invalid.items():
        assert ends[cmd.order_id] == "rejected"
        assert rejected[cmd.order_id].reason == reason
        assert len(rejected[cmd.order_id].detail) > 10  # a sentence a person can read
    dlq = saga.raw("orders.dlq")
    assert [r.value for r in dlq] == [b"\x00junk"]
    # A zero byte and then an id the registry never issued: a DecodeError of the kind that names
    # a schema which cannot be read (restore tells it apart from junk: docs/architecture.md).
    assert dlq[0].headers["dlq.error.class"] == b"UnreadableSchemaError"
    # The rejected orders took nothing: packaging saw only the good order.
    prepared = [r.event.order_id for r in saga.events("packaging")
                if type(r.event).__name__ == "PackagePrepared"]
    assert prepared == [good.order_id]
