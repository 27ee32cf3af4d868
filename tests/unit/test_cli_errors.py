"""Each way a command used to end in a traceback now ends in one `error: ...` line, with no secret.

No broker is needed: addresses point at closed loopback ports, and every case fails before (or
instead of) talking to Kafka.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from typer.testing import CliRunner, Result

from choreo import bootstrap
from choreo.cli import ops_cmd
from choreo.cli.main import app
from choreo.domain import installation
from choreo.exceptions import RegistryUnavailableError, StoreDamagedError
from choreo.kafka import clients
from choreo.ops import state_view
from choreo.ops.log_reader import LogRecord
from choreo.ops.state_view import Document, DocumentFilter
from choreo.serde.registration import register_all
from choreo.serde.schemas import load_event_schemas
from choreo.settings import Settings, load_settings

SECRET = "hunter2-s3cret"
CLOSED = "127.0.0.1:1"  # nothing listens on port 1 of loopback: a refused connection, at once
CHOREO = Path(sys.executable).parent / "choreo"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No setting from the caller's environment; no stack, state or broker of the machine's."""
    for var in list(os.environ):
        if var.startswith(("CHOREO_KAFKA_", "KAFKA_", "SCHEMA_REGISTRY")) or var in (
            "CHOREO_CONFIG", "CHOREO_TOPIC_PREFIX", "CHOREO_STATE_DIR", "CHOREO_PARTITIONS",
            "CHOREO_METRICS_PORT", "CHOREO_METRICS_HOST", "CHOREO_BATCH_SIZE",
        ):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CHOREO_STACK_DIR", str(tmp_path / "stack"))
    monkeypatch.setenv("CHOREO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", CLOSED)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", f"http://{CLOSED}/apis/ccompat/v7")
    yield tmp_path


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def one_sentence(result: Result, *needles: str) -> str:
    """The single stderr line of a failed command, checked: `error: ...`, no traceback, no secret."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.output and SECRET not in result.output
    return lines[0]


# -- 1. worker options --------------------------------------------------------------------------


def test_an_unknown_log_level_is_one_sentence_listing_the_levels(env: Path) -> None:
    line = one_sentence(_run("worker", "orders", "--log-level", "LOUD"), "--log-level", "'LOUD'")
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in line


def test_a_metrics_port_out_of_range_is_one_sentence(env: Path) -> None:
    one_sentence(_run("worker", "orders", "--metrics-port", "70000"), "--metrics-port", "0 to 65535")


def test_a_bad_metrics_host_is_one_sentence(env: Path) -> None:
    one_sentence(_run("worker", "orders", "--metrics-host", "0.0.0.0:9100"), "--metrics-host",
                 "an IP address or a host name", "'0.0.0.0:9100'")


@pytest.mark.parametrize(
    ("args", "needles"),
    [(("--instances", "0"), ("--instances must be an integer from 1 to 6", "got 0")),
     (("--instances", "7"), ("--instances must be an integer from 1 to 6", "got 7")),
     (("--instances", "2", "--instance", "3"), ("--instance 3", "--instances 2", "ids 0 to 1"))],
)
def test_run_refuses_a_bad_instance_count_before_starting_workers(
    env: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    import choreo.runtime.supervisor

    def no_workers(*_: Any, **__: Any) -> None:
        raise AssertionError("workers were started with a bad instance count")

    monkeypatch.setattr(choreo.runtime.supervisor.Supervisor, "run", no_workers)
    monkeypatch.setattr(choreo.runtime.supervisor.Supervisor, "install_signal_handlers", lambda *_: None)
    one_sentence(_run("run", *args), *needles)


def test_run_bounds_instances_by_the_configured_partitions(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import choreo.runtime.supervisor

    monkeypatch.setattr(choreo.runtime.supervisor.Supervisor, "run", lambda *_: 0)
    # This process's own SIGINT and SIGTERM handlers stay pytest's.
    monkeypatch.setattr(choreo.runtime.supervisor.Supervisor, "install_signal_handlers", lambda *_: None)
    monkeypatch.setenv("CHOREO_PARTITIONS", "12")
    assert _run("run", "--instances", "12").exit_code == 0
    one_sentence(_run("run", "--instances", "13"), "from 1 to 12")


def test_run_refuses_a_metrics_port_range_past_65535(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHOREO_METRICS_PORT", "65530")
    one_sentence(_run("run", "--instances", "2"), "CHOREO_METRICS_PORT 65530 leaves no room for 8")


def test_topics_create_refuses_zero_partitions(env: Path) -> None:
    one_sentence(_run("topics", "create", "--partitions", "0"), "--partitions", ">= 1")


# -- 2. integer settings ------------------------------------------------------------------------


def test_run_checks_the_settings_once_before_starting_workers(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import choreo.runtime.supervisor

    def no_workers(*_: Any, **__: Any) -> None:
        raise AssertionError("workers were started with a bad setting")

    monkeypatch.setattr(choreo.runtime.supervisor, "Supervisor", no_workers)
    monkeypatch.setenv("CHOREO_BATCH_SIZE", "0")
    one_sentence(_run("run"), "CHOREO_BATCH_SIZE", "from 1 to 100000")


@pytest.mark.parametrize(
    ("var", "value", "accepted"),
    [("CHOREO_PARTITIONS", "abc", ">= 1"), ("CHOREO_METRICS_PORT", "9x", "from 0 to 65535"),
     ("CHOREO_BATCH_SIZE", "0", "from 1 to 100000")],
)
def test_a_bad_integer_setting_is_one_sentence(
    env: Path, monkeypatch: pytest.MonkeyPatch, var: str, value: str, accepted: str
) -> None:
    monkeypatch.setenv(var, value)
    one_sentence(_run("state", "orders"), var, accepted)


# -- 3. the config file, for every entry point that loads settings -------------------------------


@pytest.mark.parametrize("command", [("stack", "status"), ("state", "orders"),
                                     ("kafka", "topics", "--list"), ("schemas", "register")])
@pytest.mark.parametrize("content", [None, "partitions = [\n", "partitons = 3\n"])
def test_a_bad_config_file_is_one_sentence(
    env: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...], content: str | None
) -> None:
    config = env / "choreo.toml"
    if content is not None:
        config.write_text(content)
    monkeypatch.setenv("CHOREO_CONFIG", str(config))
    one_sentence(_run(*command), str(config))


# -- 4. and 5. the endpoints --------------------------------------------------------------------


@pytest.mark.parametrize("var", ["KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL"])
@pytest.mark.parametrize("command", [("stack", "status"), ("replay", "orders")])
def test_an_endpoint_set_but_empty_is_one_sentence(
    env: Path, monkeypatch: pytest.MonkeyPatch, var: str, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv(var, "")
    one_sentence(_run(*command), f"{var} is set but empty")


@pytest.mark.parametrize("url", [f"http://me:{SECRET}@127.0.0.1:9x/apis", f"me:{SECRET}@127.0.0.1"])
def test_a_malformed_registry_url_never_shows_its_password(
    env: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", url)
    one_sentence(_run("schemas", "register"), "SCHEMA_REGISTRY_URL", "me:***@127.0.0.1")


# -- 6. the registry down -----------------------------------------------------------------------


def _no_retries(settings: Settings) -> SchemaRegistryClient:
    # The real client, minus its retries with back-off: a refused connection fails at once.
    return SchemaRegistryClient({"url": settings.schema_registry_url, "timeout": 2, "max.retries": 0})


def test_schemas_register_with_the_registry_down_is_one_sentence(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clients, "registry_client", _no_retries)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", f"http://me:{SECRET}@{CLOSED}/apis/ccompat/v7")
    line = one_sentence(_run("schemas", "register"), "did not answer", f"http://me:***@{CLOSED}/")
    assert "SCHEMA_REGISTRY_URL" in line


class _Refusing:
    """A registry client whose every call fails as a refused connection does."""

    def set_compatibility(self, **_: Any) -> None:
        raise httpx.ConnectError(f"refused by http://me:{SECRET}@{CLOSED}/")


def test_register_all_wraps_transport_errors_with_the_cause_chained() -> None:
    settings = Settings(schema_registry_url=f"http://me:{SECRET}@{CLOSED}/apis")
    services = list(installation().services)
    schemas = load_event_schemas(bootstrap.event_classes(services), *bootstrap.schema_roots())
    with pytest.raises(RegistryUnavailableError) as caught:
        register_all(_Refusing(), settings, services, schemas)  # type: ignore[arg-type]
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert SECRET not in str(caught.value)


# -- 7. schemas check outside git ---------------------------------------------------------------


def test_schemas_check_outside_a_git_repository_is_one_sentence(env: Path) -> None:
    one_sentence(_run("schemas", "check", "--repo", str(env)), "not in a git repository", "--repo")


# -- 8. damaged stores --------------------------------------------------------------------------


def _damaged_store(state: Path) -> Path:
    path = state / "orders" / "p0000.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database, " * 512)
    return path


@pytest.mark.parametrize("flags", [(), ("--hash",)])
def test_state_on_a_damaged_store_is_one_sentence(env: Path, flags: tuple[str, ...]) -> None:
    path = _damaged_store(env / "state")
    one_sentence(_run("state", "orders", *flags), str(path), "choreo rebuild orders")


def test_state_view_raises_store_damaged_with_the_fix(env: Path) -> None:
    _damaged_store(env / "state")
    with pytest.raises(StoreDamagedError, match="choreo rebuild orders"):
        list(state_view.documents(load_settings(), "orders", DocumentFilter()))


def test_a_raw_sqlite_error_reaching_a_command_is_one_sentence(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Iterator[Document]:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(state_view, "documents", broken)
    one_sentence(_run("state", "orders"), "database disk image is malformed", "choreo rebuild orders")


# -- 9. log text with markup --------------------------------------------------------------------

MARKUP = "[/]o[bold]r[/bold]der[/]"


def test_state_prints_log_text_with_markup_as_written(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = Document(0, "orders", f"hub-north/{MARKUP}", {"order_id": MARKUP})
    monkeypatch.setattr(state_view, "documents", lambda *_: iter([doc]))
    monkeypatch.setenv("COLUMNS", "300")
    result = _run("state", "orders")
    assert result.exit_code == 0, result.output
    assert f"hub-north/{MARKUP}" in result.stdout


def test_replay_prints_log_text_with_markup_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    record = LogRecord("orders", 0, 7, 0, MARKUP.encode(), b"", {"event_type": MARKUP.encode(),
                                                                "order_id": MARKUP.encode()},
                       decode_error=f"bad [red]{MARKUP}")
    ops_cmd._print_table([record], chunk=100)
    out = capsys.readouterr().out
    assert MARKUP in out and f"bad [red]{MARKUP}" in out


# -- 10. bad arguments --------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["yesterday", "²", "2026-13-45"])
def test_replay_from_a_bad_start_is_one_sentence(env: Path, start: str) -> None:
    one_sentence(_run("replay", "orders", "--from", start), "--from", "neither an offset")


@pytest.mark.parametrize(("args", "needle"), [
    (("replay", "orders", "--code", "tests.support.packaging_out_of_stock"), "add --dry-run"),
    (("replay", "packaging", "--dry-run", "--from", "12"), "not at an offset"),
    (("replay", "packaging", "--dry-run", "--hub", "hub-north", "--max", "3"),
     "--key/--hub, --max cannot be used with --dry-run"),
    (("replay", "packaging", "--dry-run", "--key", "hub-north", "--order", "o-1"),
     "--saga/--order-id/--order, --key/--hub cannot be used with --dry-run"),
    (("replay", "nosuch", "--dry-run"), "unknown service 'nosuch'"),
    (("replay", "packaging", "--dry-run", "--code", "tests.support.nothing_here"), "cannot import"),
    (("replay", "packaging", "--dry-run", "--code", "consumers.orders.service"),
     "holds 0 services called 'packaging' (services there: orders)"),
    (("replay", "packaging", "--dry-run"), "cannot reach Kafka at 127.0.0.1:1"),
])
def test_dry_run_bad_arguments_exit_2_in_one_sentence(env: Path, args: tuple[str, ...], needle: str) -> None:
    result = _run(*args)
    one_sentence(result, needle)
    assert result.exit_code == 2  # 1 would mean "differences found"


def test_reset_to_a_bad_datetime_is_one_sentence(env: Path) -> None:
    one_sentence(_run("reset", "orders", "--to-datetime", "yesterday"), "--to-datetime", "ISO time")


# -- the installed command, end to end ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "extra_env", "needle"),
    [
        (["worker", "orders", "--log-level", "LOUD"], {}, "--log-level"),
        (["state", "orders"], {"CHOREO_PARTITIONS": "abc"}, "CHOREO_PARTITIONS"),
        (["schemas", "register"], {"SCHEMA_REGISTRY_URL": f"http://me:{SECRET}@127.0.0.1:9x/a"},
         "SCHEMA_REGISTRY_URL"),
    ],
)
def test_the_choreo_command_prints_one_sentence(
    env: Path, args: list[str], extra_env: dict[str, str], needle: str
) -> None:
    ran = subprocess.run(
        [str(CHOREO), *args], env={**os.environ, **extra_env}, capture_output=True, text=True,
        timeout=60, cwd=env,
    )
    assert ran.returncode != 0
    lines = ran.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], ran.stderr
    assert "Traceback" not in ran.stderr + ran.stdout and SECRET not in ran.stderr + ran.stdout


def test_a_domain_flag_without_its_domain_says_the_domain_did_not_load(env: Path) -> None:
    ran = subprocess.run(
        [str(CHOREO), "replay", "orders", "--hub", "hub-north"],
        env={**os.environ, "CHOREO_DOMAINS": "nope.domain:DOMAIN", "COLUMNS": "400"},
        capture_output=True, text=True, timeout=60, cwd=env,
    )
    assert ran.returncode == 2
    said = " ".join(ran.stderr.split())
    assert "No such option: --hub: the installed domain names the key and saga flags" in said
    assert "cannot import 'nope.domain'" in said and "--key and --saga work without it" in said
    assert "Traceback" not in said
