"""Settings are checked as they load: each bad value is one sentence naming it and what is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from choreo.exceptions import ConfigurationError
from choreo.logs import parse_level
from choreo.settings import Settings, load_settings, redact_url

SECRET = "hunter2-s3cret"

# variable -> (a value below the range, the lowest accepted, the highest accepted or None, above it)
INT_VARIABLES = {
    "CHOREO_PARTITIONS": ("0", "1", None, None),
    "CHOREO_REPLICATION_FACTOR": ("0", "1", None, None),
    "CHOREO_BATCH_SIZE": ("0", "1", "100000", "100001"),
    "CHOREO_COMMIT_INTERVAL_MS": ("0", "1", "600000", "600001"),
    "CHOREO_METRICS_PORT": ("-1", "0", "65535", "65536"),
    "CHOREO_SESSION_TIMEOUT_MS": ("999", "1000", "3600000", "3600001"),
    "CHOREO_TRANSACTION_TIMEOUT_MS": ("999", "1000", "3600000", "3600001"),
    "CHOREO_STALL_S": ("0", "1", "86400", "86401"),
    "CHOREO_WATCHDOG_GRACE_S": ("0", "1", "3600", "3601"),
}


def _error(env: dict[str, str], config_file: Path | None = None) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env, config_file)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_load_from_an_empty_environment() -> None:
    assert load_settings({}) == Settings()


@pytest.mark.parametrize("var", sorted(INT_VARIABLES))
@pytest.mark.parametrize("bad", ["abc", "9x", "1.5", "0x10"])
def test_an_integer_setting_that_is_not_an_integer_names_the_variable_and_range(
    var: str, bad: str
) -> None:
    message = _error({var: bad})
    assert message.startswith(f"{var} must be an integer ")
    assert repr(bad) in message


@pytest.mark.parametrize("var", sorted(INT_VARIABLES))
def test_integer_settings_accept_their_range_and_refuse_outside_it(var: str) -> None:
    below, low, high, above = INT_VARIABLES[var]
    assert _error({var: below}).startswith(f"{var} must be an integer")
    expected = f"from {low} to {high}" if high is not None else f">= {low}"
    assert expected in _error({var: below})
    load_settings({var: low})
    if high is not None and above is not None:
        load_settings({var: high})
        assert _error({var: above}).startswith(f"{var} must be an integer from {low} to {high}")


def test_batch_size_zero_is_refused_before_it_reaches_consume() -> None:
    assert _error({"CHOREO_BATCH_SIZE": "0"}) == (
        "CHOREO_BATCH_SIZE must be an integer from 1 to 100000, got '0'"
    )


@pytest.mark.parametrize("var", ["KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "CHOREO_PARTITIONS",
                                 "CHOREO_STATE_DIR", "CHOREO_CONFIG"])
@pytest.mark.parametrize("empty", ["", "  "])
def test_a_variable_set_but_empty_is_an_error_not_the_default(var: str, empty: str) -> None:
    assert _error({var: empty}).startswith(f"{var} is set but empty")


def test_an_empty_topic_prefix_means_no_prefix() -> None:
    assert load_settings({"CHOREO_TOPIC_PREFIX": ""}).topic_prefix == ""


@pytest.mark.parametrize("value", ["h:9x", "h:0", "h:65536", "a:1,,b:2", "a b:1", "/x:1"])
def test_malformed_bootstrap_servers_are_one_sentence(value: str) -> None:
    assert _error({"KAFKA_BOOTSTRAP_SERVERS": value}).startswith(
        "KAFKA_BOOTSTRAP_SERVERS must be a comma-separated list of host[:port]"
    )


@pytest.mark.parametrize("value", ["broker", "a:9092,b:9093", "[::1]:9092", "SASL_SSL://b.example:9094"])
def test_wellformed_bootstrap_servers_load(value: str) -> None:
    assert load_settings({"KAFKA_BOOTSTRAP_SERVERS": value}).bootstrap_servers == value


@pytest.mark.parametrize(
    "url",
    [
        f"http://me:{SECRET}@127.0.0.1:9x/apis",
        f"http://me:{SECRET}@127.0.0.1:70000/apis",
        f"http://me:{SECRET}@127.0.0.1:0/apis",
        f"ftp://me:{SECRET}@127.0.0.1/apis",
        f"me:{SECRET}@127.0.0.1:8081",
        f"http://me:{SECRET.replace('-', '/')}@127.0.0.1:8081/apis",  # a raw '/' in the password
        f"http://me:{SECRET} x@127.0.0.1:8081/apis",
        f"http://me:{SECRET}@a:1/x,http://me:{SECRET}@b:1/x",
        "http:///apis",
    ],
)
def test_a_malformed_registry_url_is_one_sentence_without_its_password(url: str) -> None:
    message = _error({"SCHEMA_REGISTRY_URL": url})
    assert message.startswith("SCHEMA_REGISTRY_URL must be one http(s)://host[:port][/path] URL")
    for part in (SECRET, "hunter2", "s3cret"):
        assert part not in message


def test_a_registry_url_with_credentials_loads_and_repr_shows_neither_secret() -> None:
    settings = load_settings({
        "SCHEMA_REGISTRY_URL": f"https://me:{SECRET}@registry.example:8081/apis/ccompat/v7",
        "CHOREO_KAFKA_SASL_PASSWORD": SECRET,
    })
    assert settings.schema_registry_url.endswith("@registry.example:8081/apis/ccompat/v7")
    assert settings.kafka_extra == {"sasl.password": SECRET}
    for shown in (repr(settings), str(settings)):
        assert SECRET not in shown
        assert "https://me:***@registry.example:8081/apis/ccompat/v7" in shown
        assert "'sasl.password': '***'" in shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8081/apis", "http://127.0.0.1:8081/apis"),
        (f"http://me:{SECRET}@h:1/a", "http://me:***@h:1/a"),
        (f"https://{SECRET}@h/a", "https://***@h/a"),
        (f"http://me:pa@ss{SECRET}@h/a", "http://me:***@h/a"),
        (f"me:{SECRET}@h", "me:***@h"),
        (f"http://m e:{SECRET}@h", "http://***@h"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_with_overrides_checks_the_value_by_its_field_name() -> None:
    assert Settings().with_overrides(metrics_port=9100).metrics_port == 9100
    with pytest.raises(ConfigurationError, match="metrics_port must be an integer from 0 to 65535"):
        Settings().with_overrides(metrics_port=70000)


def test_a_missing_config_file_is_one_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    message = _error({"CHOREO_CONFIG": str(missing)})
    assert message == f"the settings file {missing} (CHOREO_CONFIG) cannot be read: No such file or directory"


def test_a_malformed_config_file_is_one_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("partitions = [\n")
    assert _error({"CHOREO_CONFIG": str(bad)}).startswith(
        f"the settings file {bad} (CHOREO_CONFIG) is not valid TOML"
    )


def test_an_unknown_key_in_the_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[choreo]\npartitons = 3\n")
    assert _error({"CHOREO_CONFIG": str(config)}).startswith(f"unknown key 'partitons' in {config}")
    config.write_text("partitions = 3\n[other]\nx = 1\n")
    assert _error({"CHOREO_CONFIG": str(config)}).startswith(f"unknown key 'other' in {config}")


@pytest.mark.parametrize("value", ["0", "true", "2.5", '"many"'])
def test_a_bad_value_in_the_config_file_names_the_key_and_file(tmp_path: Path, value: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[choreo]\nbatch-size = {value}\n")
    assert _error({}, config).startswith(f"batch-size in {config} must be an integer from 1 to 100000")


def test_config_file_values_load_and_the_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[choreo]\npartitions = 12\ntopic-prefix = "dev."\n'
        '[choreo.kafka]\nsecurity.protocol = "SASL_SSL"\n"sasl.mechanism" = "PLAIN"\n'
        "enable.ssl.certificate.verification = false\n"
    )
    settings = load_settings({"CHOREO_CONFIG": str(config), "CHOREO_PARTITIONS": "3"})
    assert (settings.partitions, settings.topic_prefix) == (3, "dev.")
    assert settings.kafka_extra == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
        "enable.ssl.certificate.verification": "false",
    }


def test_the_metrics_host_is_loopback_unless_set() -> None:
    assert Settings().metrics_host == "127.0.0.1"
    assert load_settings({}).metrics_host == "127.0.0.1"


@pytest.mark.parametrize(
    ("value", "loaded"),
    [("0.0.0.0", "0.0.0.0"), ("127.0.0.1", "127.0.0.1"), ("10.1.2.3", "10.1.2.3"), ("::", "::"),
     ("::1", "::1"), ("fe80:0:0::1", "fe80::1"), ("localhost", "localhost"),
     ("worker-0.choreo.svc.cluster.local", "worker-0.choreo.svc.cluster.local"),
     ("metrics.example.", "metrics.example."), (" 0.0.0.0 ", "0.0.0.0")],
)
def test_the_metrics_host_accepts_an_ip_address_or_a_host_name(value: str, loaded: str) -> None:
    assert load_settings({"CHOREO_METRICS_HOST": value}).metrics_host == loaded


@pytest.mark.parametrize(
    "value",
    ["256.0.0.1", "1.2.3", "10.0.0.999", "0.0.0.0:9100", "[::1]", "http://0.0.0.0", "-host",
     "host-", "a..b", "under_score", "two words", "a/b", "x" * 64, ".".join(["abc"] * 64)],
)
def test_a_bad_metrics_host_is_one_sentence(value: str) -> None:
    message = _error({"CHOREO_METRICS_HOST": value})
    assert message == (
        "CHOREO_METRICS_HOST must be an IP address or a host name, e.g. 127.0.0.1, 0.0.0.0, :: or "
        f"localhost, got {value!r}"
    )


def test_the_metrics_host_is_checked_in_the_config_file_and_by_override(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[choreo]\nmetrics-host = "0.0.0.0"\n')
    assert load_settings({"CHOREO_CONFIG": str(config)}).metrics_host == "0.0.0.0"
    config.write_text("[choreo]\nmetrics-host = 0\n")
    assert _error({}, config).startswith(f"metrics-host in {config} must be an IP address or a host name")
    assert Settings().with_overrides(metrics_host="::").metrics_host == "::"
    with pytest.raises(ConfigurationError, match="^metrics_host must be an IP address"):
        Settings().with_overrides(metrics_host="nope!")


def test_an_empty_metrics_host_is_an_error_not_the_default() -> None:
    assert _error({"CHOREO_METRICS_HOST": ""}).startswith("CHOREO_METRICS_HOST is set but empty")


def test_a_topic_prefix_must_be_a_topic_name_part() -> None:
    assert _error({"CHOREO_TOPIC_PREFIX": "../x"}).startswith("CHOREO_TOPIC_PREFIX must be at most 200")


@pytest.mark.parametrize(("text", "level"), [("debug", "DEBUG"), ("Info", "INFO"), ("warn", "WARNING"),
                                             ("ERROR", "ERROR"), ("critical", "CRITICAL")])
def test_log_levels_are_the_standard_names_in_any_case(text: str, level: str) -> None:
    assert parse_level(text) == level


def test_an_unknown_log_level_lists_the_standard_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_level("LOUD")
    assert str(caught.value) == (
        "--log-level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case), got 'LOUD'"
    )
