"""A changed version of the packaging service for dry runs: every new order finds its shelf empty.

`choreo replay packaging --dry-run --code tests.support.packaging_out_of_stock` tries it on the
recorded history; only `decide` differs from the installed service.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from choreo.contract import StateView
from consumers.orders.events import OrderPlaced
from consumers.packaging import service as packaging
from consumers.packaging.events import PackagingFailed
from consumers.saga import caused_by, saga_key


def decide(state: StateView, event: Any) -> list[Any]:
    if isinstance(event, OrderPlaced) and state.get(
        packaging.RESERVATIONS, saga_key(event.hub, event.order_id)
    ) is None:
        return [PackagingFailed(**caused_by(event, "PackagingFailed"), sku=event.sku,
                                quantity=event.quantity, available=0, reason="OUT_OF_STOCK")]
    return packaging.decide(state, event)


SERVICE = dataclasses.replace(packaging.SERVICE, decide=decide)
