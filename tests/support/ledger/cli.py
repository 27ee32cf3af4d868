"""`choreo ledger deposit|withdraw|audit`: the ledger domain's edge and its own check of its log,
mounted through its `cli` hook."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import typer

from choreo import bootstrap
from choreo.cli.context import cli_settings
from choreo.cli.errors import one_sentence_errors
from choreo.edge import CommandSender
from choreo.ops.log_reader import read_log
from tests.support.ledger import (
    ENDS,
    PAYOUT,
    WALLET,
    Deposit,
    Deposited,
    FundsReleased,
    FundsReserved,
    Withdraw,
    WithdrawalCompleted,
)

ledger_app = typer.Typer(help="The ledger's own tools.", no_args_is_help=True)


def violations(events: Iterable[Any]) -> tuple[Counter[str], list[str]]:
    """How the withdrawals ended, and what breaks the ledger's rules: each withdrawal ends once;
    a held amount is paid out or given back, once; no account goes below zero."""
    ends: dict[str, list[str]] = defaultdict(list)
    held: dict[str, int] = {}
    balance: Counter[str] = Counter()
    for e in events:
        if isinstance(e, Deposited):
            balance[e.account] += e.amount
        elif isinstance(e, FundsReserved):
            held[e.transfer_id] = e.amount
            balance[e.account] -= e.amount
        elif isinstance(e, FundsReleased):
            balance[e.account] += e.amount
        if type(e) in ENDS:
            ends[e.transfer_id].append(ENDS[type(e)])
    problems = [f"withdrawal {t} ended {len(o)} times: {', '.join(o)}" for t, o in ends.items() if len(o) > 1]
    problems += [f"withdrawal {t} holds {a} and never ended" for t, a in held.items() if t not in ends]
    problems += [f"account {a} is below zero ({b})" for a, b in balance.items() if b < 0]
    outcomes = Counter(o[0] for o in ends.values())
    return outcomes, problems


def _send(command: Any) -> None:
    settings = cli_settings()
    sender = CommandSender(settings, bootstrap.build_codec(settings))
    sender.send_all([command])
    typer.echo(f"sent {type(command).__name__} {command.id}")


@one_sentence_errors
def deposit(account: str, amount: int) -> None:
    """Put AMOUNT cents on ACCOUNT."""
    _send(Deposit(id=str(uuid.uuid4()), account=account, at=datetime.now(UTC), amount=amount))


@one_sentence_errors
def withdraw(transfer_id: str, account: str, amount: int) -> None:
    """Withdraw AMOUNT cents from ACCOUNT and pay them out: the saga TRANSFER_ID."""
    _send(Withdraw(id=str(uuid.uuid4()), transfer_id=transfer_id, account=account,
                   at=datetime.now(UTC), amount=amount))


@one_sentence_errors
def audit() -> None:
    """Check the ledger's rules on the services' own topics; exit 1 on a violation."""
    settings = cli_settings()
    codec = bootstrap.build_codec(settings)
    topics = [settings.topic(s.own_topic) for s in (WALLET, PAYOUT)]
    # Wallet's topic in log order is enough: it holds every reservation and every end.
    events = [r.event for r in read_log(settings, topics[:1], codec) if r.event is not None]
    outcomes, problems = violations(events)
    paid = sum(e.amount for e in events if isinstance(e, WithdrawalCompleted))
    typer.echo(f"ledger audit: {sum(outcomes.values())} withdrawal(s) ended "
               f"({', '.join(f'{k} {v}' for k, v in sorted(outcomes.items())) or 'none'}); paid out {paid}")
    for p in problems:
        typer.echo(f"VIOLATION: {p}")
    if problems:
        raise typer.Exit(1)


ledger_app.command("deposit")(deposit)
ledger_app.command("withdraw")(withdraw)
ledger_app.command("audit")(audit)


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")
