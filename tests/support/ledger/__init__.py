"""A second saga domain, unlike the drone saga in every envelope name: withdrawals from accounts.

Its records are keyed by `account` (not a hub), name their saga by `transfer_id`, and call their
own id `id`, their time `at` and their cause `cause`: nothing of the framework may assume the
reference saga's names. Point CHOREO_DOMAINS at `tests.support.ledger:DOMAIN` to run it.

The saga: `Withdraw` -> wallet holds the amount (`FundsReserved`) or refuses it
(`WithdrawalRefused`, not enough money) -> payout sends it (`PayoutSent`, then wallet ends the
saga with `WithdrawalCompleted`) or refuses an amount over its limit (`PayoutFailed`, then
wallet gives the amount back: `FundsReleased`). `Deposit` puts money on an account (no saga).
Its `cli` hook adds `choreo ledger audit`: the domain's own check, as `choreo audit` is the drone
saga's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from choreo.contract import Service, State, StateView, derive_id, saga_ended, saga_started
from choreo.domain import Domain
from choreo.envelope import Envelope
from choreo.keys import compose_key

PAYOUT_LIMIT = 1_000_00  # cents: payout refuses more, and the saga is compensated


@dataclass(frozen=True, slots=True, kw_only=True)
class Deposit:
    SCHEMA: ClassVar[str] = "ledger.wallet.Deposit"
    id: str
    account: str
    at: datetime
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Withdraw:
    SCHEMA: ClassVar[str] = "ledger.wallet.Withdraw"
    id: str
    transfer_id: str
    account: str
    at: datetime
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Deposited:
    SCHEMA: ClassVar[str] = "ledger.wallet.Deposited"
    id: str
    account: str
    at: datetime
    cause: str | None
    amount: int
    balance: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FundsReserved:
    SCHEMA: ClassVar[str] = "ledger.wallet.FundsReserved"
    id: str
    transfer_id: str
    account: str
    at: datetime
    cause: str | None
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawalRefused:
    SCHEMA: ClassVar[str] = "ledger.wallet.WithdrawalRefused"
    id: str
    transfer_id: str
    account: str
    at: datetime
    cause: str | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FundsReleased:
    SCHEMA: ClassVar[str] = "ledger.wallet.FundsReleased"
    id: str
    transfer_id: str
    account: str
    at: datetime
    cause: str | None
    amount: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawalCompleted:
    SCHEMA: ClassVar[str] = "ledger.wallet.WithdrawalCompleted"
    id: str
    transfer_id: str
    account: str
    at: datetime
    cause: str | None
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PayoutSent:
    SCHEMA: ClassVar[str] = "ledger.payout.PayoutSent"
    id: str
    transfer_id: str
    account: str
    at: datetime
    cause: str | None
    amount: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PayoutFailed:
    SCHEMA: ClassVar[str] = "ledger.payout.PayoutFailed"
    id: str
    transfer_id: str
    account: str
    at: datetime
    cause: str | None
    reason: str


WALLET_EVENTS = (Deposited, FundsReserved, WithdrawalRefused, FundsReleased, WithdrawalCompleted)
PAYOUT_EVENTS = (PayoutSent, PayoutFailed)

BALANCES = "balances"  # compose_key(account) -> {"balance", "held"}
TRANSFERS = "transfers"  # account/transfer_id -> {"status", "amount"}


def _then(cause: Any, cls: type, **fields: Any) -> Any:
    """An event caused by `cause`: same account, saga and time; its id derived from the cause's."""
    saga = {"transfer_id": cause.transfer_id} if hasattr(cause, "transfer_id") else {}
    return cls(id=derive_id(cause.id, cls.__name__), account=cause.account, at=cause.at,
               cause=cause.id, **saga, **fields)


def _transfer(state: StateView, event: Any) -> dict[str, Any] | None:
    return state.get(TRANSFERS, compose_key(event.account, event.transfer_id))


def wallet_decide(state: StateView, event: Any) -> list[Any]:
    balance = state.get(BALANCES, compose_key(event.account)) or {"balance": 0, "held": 0}
    match event:
        case Deposit():
            return [_then(event, Deposited, amount=event.amount, balance=balance["balance"] + event.amount)]
        case Withdraw():
            if _transfer(state, event) is not None:
                return []  # the same withdrawal sent again: it has its answer
            if event.amount <= 0 or balance["balance"] < event.amount:
                return [_then(event, WithdrawalRefused, reason="INSUFFICIENT_FUNDS")]
            return [_then(event, FundsReserved, amount=event.amount)]
        case PayoutSent():
            held = _transfer(state, event)
            if held is None or held["status"] != "held":
                return []
            return [_then(event, WithdrawalCompleted, amount=held["amount"])]
        case PayoutFailed():
            held = _transfer(state, event)
            if held is None or held["status"] != "held":
                return []
            return [_then(event, FundsReleased, amount=held["amount"], reason=event.reason)]
    return []


def wallet_evolve(state: State, event: Any) -> None:
    balance = dict(state.get(BALANCES, compose_key(event.account)) or {"balance": 0, "held": 0})
    match event:
        case Deposited():
            balance["balance"] = event.balance
        case FundsReserved():
            balance["balance"] -= event.amount
            balance["held"] += event.amount
            _status(state, event, "held", event.amount)
            saga_started(state, compose_key(event.account, event.transfer_id), event.at)
        case WithdrawalRefused():
            _status(state, event, "refused", 0)
            return
        case FundsReleased():
            balance["balance"] += event.amount
            balance["held"] -= event.amount
            _status(state, event, "released", event.amount)
            saga_ended(state, compose_key(event.account, event.transfer_id))
        case WithdrawalCompleted():
            balance["held"] -= event.amount
            _status(state, event, "paid", event.amount)
            saga_ended(state, compose_key(event.account, event.transfer_id))
    state.put(BALANCES, compose_key(event.account), balance)


def _status(state: State, event: Any, status: str, amount: int) -> None:
    state.put(TRANSFERS, compose_key(event.account, event.transfer_id), {"status": status, "amount": amount})


def payout_decide(state: StateView, event: Any) -> list[Any]:
    if not isinstance(event, FundsReserved):
        return []
    if state.get(TRANSFERS, compose_key(event.account, event.transfer_id)) is not None:
        return []
    if event.amount > PAYOUT_LIMIT:
        return [_then(event, PayoutFailed, reason="OVER_LIMIT")]
    return [_then(event, PayoutSent, amount=event.amount)]


def payout_evolve(state: State, event: Any) -> None:
    sent = isinstance(event, PayoutSent)
    state.put(TRANSFERS, compose_key(event.account, event.transfer_id), {"sent": sent})


WALLET = Service(
    name="wallet",
    inputs={"wallet.commands": (Deposit, Withdraw), "payout": PAYOUT_EVENTS},
    emits=WALLET_EVENTS,
    decide=wallet_decide,
    evolve=wallet_evolve,
    description="Keeps each account's balance; holds a withdrawal's amount until it is paid out.",
)
PAYOUT = Service(
    name="payout",
    inputs={"wallet": WALLET_EVENTS},
    emits=PAYOUT_EVENTS,
    decide=payout_decide,
    evolve=payout_evolve,
    description="Pays held amounts out, up to its limit.",
)

ENDS: dict[type, str] = {
    WithdrawalCompleted: "completed",
    WithdrawalRefused: "rejected",
    FundsReleased: "compensated",
}

DOMAIN = Domain(
    name="ledger",
    services=(WALLET, PAYOUT),
    schema_dirs=(Path(__file__).parent / "schemas",),
    envelope=Envelope(key_field="account", saga_field="transfer_id", id_field="id", time_field="at",
                      cause_field="cause"),
    ends=ENDS,
    cli="tests.support.ledger.cli:register",
    failures=(PayoutFailed,),
    compensations=(FundsReleased,),
    commands=(Deposit, Withdraw),
    terminal=(Deposited,),
)
