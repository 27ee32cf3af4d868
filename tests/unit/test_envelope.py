"""The envelope: the domain's names for key, saga, id, time and cause, and how the framework and
the operator tools read them. Broker-free."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from choreo.cli import envelope_options
from choreo.domain import DOMAINS_ENV
from choreo.envelope import Envelope
from choreo.exceptions import ConfigurationError
from choreo.ops.log_reader import LogRecord
from choreo.ops.records import RecordFilter, key_of, saga_id_of
from choreo.ops.state_view import Document, DocumentFilter
from choreo.timers import DueTimer
from consumers.domain import DOMAIN
from tests.support.ledger import DOMAIN as LEDGER
from tests.support.ledger import FundsReserved, Withdraw

AT = datetime(2026, 12, 5, tzinfo=UTC)
WITHDRAW = Withdraw(id="c-1", transfer_id="t-1", account="acct/1", at=AT, amount=5)
RESERVED = FundsReserved(id="e-1", transfer_id="t-1", account="acct/1", at=AT, cause="c-1", amount=5)


def test_the_ledger_names_every_field_its_own_way() -> None:
    env = LEDGER.envelope
    assert env.fields == ("id", "transfer_id", "account", "at", "cause")
    assert (env.key_of(RESERVED), env.saga_of(RESERVED), env.id_of(RESERVED), env.cause_of(RESERVED)) == (
        "acct/1", "t-1", "e-1", "c-1")
    assert env.cause_of(WITHDRAW) is None  # a command has no cause field at all


def test_a_timer_firing_is_read_by_its_own_id_and_its_data() -> None:
    fired = DueTimer("wait:acct/1", 1_000, {"account": "acct/1", "transfer_id": "t-1"}).fired(2_000)
    env = LEDGER.envelope
    assert (env.key_of(fired), env.saga_of(fired), env.id_of(fired)) == ("acct/1", "t-1", fired.event_id)


def _record(event: object, key: bytes | None, headers: dict[str, bytes] | None = None) -> LogRecord:
    return LogRecord("p.wallet", 0, 0, 0, key, b"", headers or {}, event)


def test_the_tools_read_the_key_from_the_field_else_from_the_record_key() -> None:
    assert key_of(_record(RESERVED, b"ignored"), "account") == "acct/1"
    undecoded = _record(None, b"acct/1", {"transfer_id": b"t-1"})  # a dead letter, say
    assert key_of(undecoded, "account") == "acct/1"
    assert saga_id_of(undecoded, "transfer_id") == "t-1"


@pytest.fixture()
def ledger_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(DOMAINS_ENV, "tests.support.ledger:DOMAIN")
    envelope_options._envelope.cache_clear()
    yield
    envelope_options._envelope.cache_clear()


@pytest.mark.usefixtures("ledger_installed")
def test_filters_match_by_the_installed_domains_fields() -> None:
    assert RecordFilter(key="acct/1").matches(_record(RESERVED, b"acct/1"))
    assert not RecordFilter(key="acct/2").matches(_record(RESERVED, b"acct/1"))
    assert RecordFilter(saga_id="t-1").matches(_record(RESERVED, b"acct/1"))


@pytest.mark.usefixtures("ledger_installed")
def test_the_flags_are_named_after_the_installed_domains_fields() -> None:
    assert envelope_options.key_flags() == ["--key", "--account"]
    assert envelope_options.saga_flags() == ["--saga", "--transfer-id", "--transfer"]
    assert envelope_options.key_name() == "account"
    assert envelope_options.named(envelope_options.key_flags()) == "--key/--account"


def test_the_reference_saga_keeps_its_hub_and_order_flags() -> None:
    envelope_options._envelope.cache_clear()
    try:
        assert envelope_options.key_flags() == ["--key", "--hub"]
        assert envelope_options.saga_flags() == ["--saga", "--order-id", "--order"]
    finally:
        envelope_options._envelope.cache_clear()


def test_an_alias_never_shadows_another_flag_or_the_keys_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for envelope, keys, sagas in (
        (Envelope(key_field="type", saga_field="json"), ["--key"], ["--saga"]),
        (Envelope(key_field="hub", saga_field="hub"), ["--key", "--hub"], ["--saga"]),
    ):
        monkeypatch.setattr(envelope_options, "_envelope", lambda e=envelope: e)
        assert (envelope_options.key_flags(), envelope_options.saga_flags()) == (keys, sagas)


def test_a_state_document_matches_a_key_that_is_its_first_key_part_or_its_key_field() -> None:
    one_part = Document(0, "balances", "acct%2F1", {"balance": 1})
    by_field = Document(0, "seen", "c-1", {"account": "acct/1"})
    other = Document(0, "transfers", "acct%2F2/t-1", {"status": "held"})
    wanted = DocumentFilter(key="acct/1", key_field="account")
    assert [wanted.matches(d) for d in (one_part, by_field, other)] == [True, True, False]


def test_the_reference_domain_declares_the_hub_and_the_order() -> None:
    assert DOMAIN.envelope == Envelope(key_field="hub", saga_field="order_id")
    assert DOMAIN.envelope.fields == ("event_id", "order_id", "hub", "occurred_at", "causation_id")


def test_nothing_in_the_framework_names_the_reference_sagas_key() -> None:
    """The key is the domain's: no file of the framework (code, schemas, templates) says `hub`."""
    import choreo

    root = Path(choreo.__file__).parent
    named = [f"{p.relative_to(root)}:{n}" for p in sorted(root.rglob("*")) if p.is_file()
             and p.suffix in (".py", ".avsc", ".xml", ".properties", ".toml", ".json")
             for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
             if re.search(r"(?<![A-Za-z])hub", line)]  # the word, not GitHub
    assert named == []


def test_the_edge_sends_each_declared_command_to_the_unwritten_topic_that_carries_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from choreo import edge
    from choreo.contract import Service
    from choreo.domain import Domain, Installation
    from tests.support import ledger

    def service(inputs: dict[str, tuple[type, ...]]) -> Service:
        return Service(name="teller", inputs=inputs, emits=(ledger.Deposited,),
                       decide=lambda state, event: [], evolve=lambda state, event: None)

    def domain(svc: Service, commands: tuple[type, ...]) -> Installation:
        return Installation((Domain(name="bank", services=(svc,), schema_dirs=(),
                                    envelope=ledger.DOMAIN.envelope, commands=commands),))

    # Named as the team likes (no ".commands"); a class on such a topic but not declared a
    # command, and the service's own topic, are not commands.
    inbox = service({"inbox": (ledger.Deposit,), "audit.commands": (ledger.Withdraw,),
                     "teller": (ledger.Deposited,)})
    monkeypatch.setattr(edge, "installation", lambda: domain(inbox, (ledger.Deposit,)))
    assert edge.command_topics() == {ledger.Deposit: "inbox"}
    two = service({"inbox": (ledger.Deposit,), "desk": (ledger.Deposit,)})
    monkeypatch.setattr(edge, "installation", lambda: domain(two, (ledger.Deposit,)))
    with pytest.raises(ConfigurationError, match="Deposit is read from two command topics"):
        edge.command_topics()
