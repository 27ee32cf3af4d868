"""A second saga domain on the real stack: the framework assumes none of the drone saga's names.

The ledger (tests/support/ledger) keys its records by `account`, names its sagas by
`transfer_id`, and calls its ids, times and causes `id`, `at` and `cause`. It is provisioned and
run with the CLI (`topics create`, `schemas register`, `choreo run`), fed through its own `cli`
hook (`choreo ledger deposit|withdraw`), checked by its own audit (`choreo ledger audit`), and
looked at with every operator tool by its own names: `replay --account/--transfer-id`, `trace`,
`sagas`, `graph --check`, `state --account`, the web view and `rebuild --verify`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from choreo.keys import key_parts
from choreo.stack.ports import free_port
from harness.env import child_env
from harness.processes import CHOREO, ChildProcess, start_run, wait_until
from harness.stack import StackEndpoints
from harness.topics import unique_prefix
from tests.support.stack_slice import StackSlice

pytestmark = pytest.mark.e2e

LEDGER = "tests.support.ledger:DOMAIN"
# An account holding the key separator and a non-ASCII letter: keys are values, never paths.
ODD = "acct/ü-2"


class LedgerSlice(StackSlice):
    domains = LEDGER


@pytest.fixture()
def ledger(stack: StackEndpoints, tmp_path: Path) -> Iterator[LedgerSlice]:
    run = LedgerSlice(stack.bootstrap_servers, stack.schema_registry_url, unique_prefix(), tmp_path)
    try:
        yield run
    finally:
        run.close()


def ok(run: LedgerSlice, *args: str) -> str:
    done = run.choreo(*args)
    assert done.returncode == 0, f"choreo {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_domain_keyed_by_account_runs_and_every_tool_speaks_its_names(
    ledger: LedgerSlice, tmp_path: Path
) -> None:
    ok(ledger, "topics", "create")
    ok(ledger, "schemas", "register")
    supervisor = start_run(ledger.settings, tmp_path / "run.log", domains=LEDGER)
    try:
        ok(ledger, "ledger", "deposit", "acct-1", "50000")
        ok(ledger, "ledger", "deposit", ODD, "500000")
        ok(ledger, "ledger", "withdraw", "t-paid", "acct-1", "10000")  # paid out
        ok(ledger, "ledger", "withdraw", "t-short", "acct-1", "90000")  # more than the balance
        ok(ledger, "ledger", "withdraw", "t-over", ODD, "200000")  # over payout's limit: given back

        def audited() -> str | None:
            out = ledger.choreo("ledger", "audit")
            return out.stdout if out.returncode == 0 and "3 withdrawal(s) ended" in out.stdout else None

        wait_until(lambda: audited() is not None, 120, f"three withdrawals ended\n{supervisor.tail()}")
        report = audited() or ""
        assert "compensated 1, completed 1, rejected 1" in report and "paid out 10000" in report, report
        assert "VIOLATION" not in report

        # replay by the domain's names for the key and the saga
        mine = json_lines(ok(ledger, "replay", "wallet", "--account", ODD, "--json"))
        assert mine and {r["key"] for r in mine} == {ODD}
        assert {r["event"]["account"] for r in mine} == {ODD}
        paid = json_lines(ok(ledger, "replay", "wallet", "--transfer-id", "t-paid", "--json"))
        assert [r["type"].rsplit(".", 1)[-1] for r in paid] == ["FundsReserved", "WithdrawalCompleted"]
        generic = ok(ledger, "replay", "wallet", "--key", "acct-1", "--saga", "t-paid", "--json")
        assert json_lines(generic) == paid

        # trace: with the key, and found from the saga id alone; causes linked by `cause` -> `id`
        trace = json.loads(ok(ledger, "trace", "t-over", "--account", ODD, "--json"))
        assert trace["outcome"] == "compensated" and trace["key"] == ODD
        steps = [(s["type"].rsplit(".", 1)[-1], s["emitter"], s["caused_by"], s["role"])
                 for s in trace["steps"]]
        assert steps == [
            ("Withdraw", "edge", None, None),
            ("FundsReserved", "wallet", 1, None),
            ("PayoutFailed", "payout", 2, "failure"),
            ("FundsReleased", "wallet", 3, "end"),
        ], steps
        assert json.loads(ok(ledger, "trace", "t-over", "--json")) == trace
        table = ok(ledger, "trace", "t-paid")
        assert "at account acct-1" in table and "completed" in table

        # nothing in flight; the contract graph has no loose ends
        assert json_lines(ok(ledger, "sagas", "--json")) == []
        checked = ledger.choreo("graph", "--check")
        assert checked.returncode == 0 and "no loose ends" in checked.stdout + checked.stderr, checked

        _the_web_view_labels_the_key_account(ledger)
    finally:
        assert supervisor.stop(90) == 0, supervisor.tail(60)

    # the state, by the domain's key, and rebuilt from the log
    balances = json_lines(ok(ledger, "state", "wallet", "--account", ODD, "--table", "balances", "--json"))
    assert [(key_parts(d["key"]), d["value"]) for d in balances] == [((ODD,), {"balance": 500000, "held": 0})]
    for service in ("wallet", "payout"):
        ok(ledger, "rebuild", service, "--verify")


def _the_web_view_labels_the_key_account(ledger: LedgerSlice) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = ChildProcess("ui", [*CHOREO, "ui", "--port", str(port)],
                          child_env(ledger.settings, LEDGER), ledger.log_dir / "ui.log")
    try:
        def listed() -> str | None:
            assert server.alive(), server.log()
            try:
                page = httpx.get(url + "/", params={"key": ODD}, timeout=5).text
            except httpx.TransportError:
                return None
            return page if 'data-saga="t-over"' in page else None

        wait_until(lambda: listed() is not None, 60, "the web view to list the saga")
        page = listed() or ""
        assert "<th>account</th>" in page and 'data-saga="t-paid"' not in page  # only ODD's
        saga = httpx.get(url + "/sagas/t-over", timeout=30).text
        assert re.search(r"account <strong>acct/ü-2</strong>", saga), saga[:2000]
        assert 'id="saga-outcome">compensated' in saga
    finally:
        server.stop(10)

