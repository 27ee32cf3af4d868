"""Small payment sagas for `choreo graph --check`: one whose contract is whole, and one per loose end.

`billing` charges a card on a command from outside and refunds it when shipping fails; `shipping`
ships what was paid. Only the declarations matter to the graph, so decide and evolve do nothing.
Point CHOREO_DOMAINS at `tests.support.graph_domains:<NAME>` to run the command on one of them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from choreo.contract import Service, State, StateView
from choreo.domain import Domain
from choreo.envelope import Envelope


class ChargeCard:
    """A command from outside the services."""


class CardCharged:
    """Billing took the money."""


class CardDeclined:
    """Billing could not take the money: the saga ends there."""


class PaymentRefunded:
    """Billing gave the money back: the compensation, and the saga's compensated end."""


class Shipped:
    """Shipping sent the parcel: the saga is completed."""


class ShipmentFailed:
    """Shipping could not send the parcel: a failure that billing must compensate."""


class ShipmentLogged:
    """An auditor noted a failed shipment (and undid nothing)."""


def _decide(state: StateView, event: Any) -> list[Any]:
    return []


def _evolve(state: State, event: Any) -> None:
    return None


BILLING = Service(
    name="billing",
    inputs={"billing.commands": (ChargeCard,), "shipping": (ShipmentFailed,)},
    emits=(CardCharged, CardDeclined, PaymentRefunded),
    decide=_decide,
    evolve=_evolve,
)
SHIPPING = Service(
    name="shipping",
    inputs={"billing": (CardCharged,)},
    emits=(Shipped, ShipmentFailed),
    decide=_decide,
    evolve=_evolve,
)
AUDITOR = Service(
    name="auditor",
    inputs={"shipping": (ShipmentFailed,)},
    emits=(ShipmentLogged,),
    decide=_decide,
    evolve=_evolve,
)

WHOLE = Domain(
    name="payments",
    services=(BILLING, SHIPPING),
    schema_dirs=(),
    envelope=Envelope(key_field="hub", saga_field="order_id"),
    ends={Shipped: "completed", CardDeclined: "rejected", PaymentRefunded: "compensated"},
    failures=(ShipmentFailed,),
    compensations=(PaymentRefunded,),
    commands=(ChargeCard,),
)

# Billing no longer listens to shipping: nobody hears of ShipmentFailed.
UNHEARD_FAILURE = replace(
    WHOLE, services=(replace(BILLING, inputs={"billing.commands": (ChargeCard,)}), SHIPPING)
)
# Only an auditor hears of ShipmentFailed, and it compensates nothing.
UNCOMPENSATED_FAILURE = replace(
    UNHEARD_FAILURE, services=(*UNHEARD_FAILURE.services, AUDITOR), terminal=(ShipmentLogged,)
)
# ChargeCard is no longer declared a command: nobody emits it.
UNSENT_COMMAND = replace(WHOLE, commands=())
# Shipped is no longer a saga end, and nobody consumes it.
UNREAD_EVENT = replace(WHOLE, ends={CardDeclined: "rejected", PaymentRefunded: "compensated"})
