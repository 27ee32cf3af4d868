"""One settings object, read from the environment (and an optional TOML file) when asked, never at import.

Every value is checked as it is loaded: a bad one is a ConfigurationError of one sentence naming
where it came from (the variable, or `key in <file>`) and what is accepted.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from choreo.exceptions import ConfigurationError

# librdkafka security settings that pass through from CHOREO_KAFKA_<NAME> variables, e.g.
# CHOREO_KAFKA_SASL_PASSWORD -> sasl.password. Values are secrets: never printed or logged.
_KAFKA_PASSTHROUGH_PREFIX = "CHOREO_KAFKA_"


def user_cache_dir() -> Path:
    """choreo's folder in the user's cache: $XDG_CACHE_HOME/choreo, else ~/.cache/choreo."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "choreo"


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    # repr=False on the two fields that can hold secrets: __repr__ below shows them redacted.
    schema_registry_url: str = field(default="http://127.0.0.1:8081/apis/ccompat/v7", repr=False)
    topic_prefix: str = ""
    state_dir: Path = Path("state")
    stack_dir: Path = Path(".stack")
    # The local stack's jars (~240 MB): one cache for the user, shared by every checkout and folder.
    jars_dir: Path = field(default_factory=lambda: user_cache_dir() / "stack-jars")
    partitions: int = 6
    replication_factor: int = 1
    batch_size: int = 500
    commit_interval_ms: int = 100
    metrics_port: int = 0
    # Where /metrics, /healthz and /readyz listen: loopback by default; 0.0.0.0 in a container.
    metrics_host: str = "127.0.0.1"
    session_timeout_ms: int = 10000
    transaction_timeout_ms: int = 30000
    # Transactional producers per worker, taking turns one transaction each: with 2 a new batch
    # never waits for the coordinator to finish the last commit (choreo/kafka/turns.py).
    txn_producers: int = 2
    # Liveness: /healthz turns 503 after this long without a turn of the loop or a commit while
    # batches fail; the worker exits (code 4) after twice as long.
    stall_s: int = 60
    # Added by the watchdog to a blocking call's own timeout before it ends the worker (code 3).
    # librdkafka keeps its timeouts but for the known wedges; 5 s covers a call that returns a
    # little late on a loaded box, and a wedged one costs its timeout + 5 s and a restart.
    watchdog_grace_s: int = 5
    # How often the worker looks for due timers: a timer fires at most this long after its due
    # time plus one transaction, while the worker is up (choreo_timer_lateness_seconds).
    timer_check_ms: int = 200
    # How a worker and `choreo run` write their log lines: `text` for a person, `json` (one
    # object per line) for a log collector (choreo/logs.py).
    log_format: str = "text"
    kafka_extra: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr]
        shown.append(f"schema_registry_url={redact_url(self.schema_registry_url)!r}")
        shown.append(f"kafka_extra={ {k: '***' for k in sorted(self.kafka_extra)} }")
        return f"Settings({', '.join(shown)})"

    def topic(self, logical: str) -> str:
        """The physical topic name of a logical one (`orders` -> `<prefix>orders`)."""
        return f"{self.topic_prefix}{logical}"

    def group(self, service: str) -> str:
        return f"{self.topic_prefix}{service}"

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with `changes`, each checked like a loaded value (named by its field)."""
        checked = {k: check_value(k, v, k) if k in _CHECKS else v for k, v in changes.items()}
        return replace(self, **checked)


def redact_url(url: str) -> str:
    """`url` with its credentials replaced by `***`: the only form in which a URL is ever shown.

    Works on malformed text too (it is used in the message that says a URL is malformed): all
    between the scheme and the last `@` is user info, whatever characters the password holds.
    """
    at = url.rfind("@")
    if at < 0:
        return url
    start = url.find("://") + 3 if "://" in url[:at] else 0
    user, colon, _password = url[start:at].partition(":")
    # The user name stays, so a person can tell which account; it goes too when it looks odd.
    keep_user = colon and user and re.fullmatch(r"[\w.+%-]+", user)
    return f"{url[:start]}{user + ':***' if keep_user else '***'}{url[at:]}"


def split_host_port(entry: str) -> tuple[str, int | None]:
    """Host and port of one bootstrap entry (`[proto://]host[:port]`, `[v6]:port`); ValueError if bad."""
    hostport = entry.strip().split("://", 1)[-1]
    if hostport.startswith("["):
        host, _, rest = hostport.partition("]")
        host += "]"
        if rest and not rest.startswith(":"):
            raise ValueError(entry)
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text = hostport.rpartition(":")
        if not colon:
            host, port_text = hostport, None
    if not host or re.search(r"[\s/@,]", host):
        raise ValueError(entry)
    if port_text is None:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(entry)
    return host, int(port_text)


# -- what each setting accepts ------------------------------------------------------------------


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int | None = None

    def __str__(self) -> str:
        if self.high is None:
            return f"an integer >= {self.low}"
        return f"an integer from {self.low} to {self.high}"

    def convert(self, value: object) -> int | None:
        # bool is an int to Python, and a float would be silently truncated: neither is accepted.
        if isinstance(value, bool) or not isinstance(value, int | str):
            return None
        try:
            number = int(value)
        except ValueError:
            return None
        return number if number >= self.low and (self.high is None or number <= self.high) else None


# Session and transaction timeouts are librdkafka's ranges, capped at an hour; the brokers cap them
# further (group.max.session.timeout.ms, transaction.max.timeout.ms) and say so when they do.
INT_RANGES: dict[str, IntRange] = {
    "partitions": IntRange(1),
    "replication_factor": IntRange(1),
    "batch_size": IntRange(1, 100_000),
    "commit_interval_ms": IntRange(1, 600_000),
    "metrics_port": IntRange(0, 65_535),  # 0: no metrics server
    "session_timeout_ms": IntRange(1_000, 3_600_000),
    "transaction_timeout_ms": IntRange(1_000, 3_600_000),
    "txn_producers": IntRange(1, 2),
    "stall_s": IntRange(1, 86_400),
    "watchdog_grace_s": IntRange(1, 3_600),
    "timer_check_ms": IntRange(10, 60_000),
}

_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9._-]{0,200}")  # Kafka's topic characters, room for the name


def _as_bootstrap(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        for entry in value.split(","):
            split_host_port(entry)
    except ValueError:
        return None
    return value.strip()


def _as_registry_url(value: object) -> str | None:
    # One URL: the client would split a comma-separated list, but nothing else here would.
    if not isinstance(value, str) or re.search(r"[\s,]", value):
        return None
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return None
    ok = parts.scheme in ("http", "https") and parts.hostname and port != 0
    return value if ok and not parts.query and not parts.fragment else None


def _as_prefix(value: object) -> str | None:
    return value if isinstance(value, str) and _TOPIC_PREFIX.fullmatch(value) else None


# A DNS name (RFC 1123): dot-separated labels of letters, digits and inner hyphens, 63 at most each.
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _as_host(value: object) -> str | None:
    """An IP address (v4 or v6, as the server binds it) or a host name; None for anything else."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253 or name.replace(".", "").isdigit():
        return None  # all digits and dots is an IPv4 address that ip_address() refused (1.2.3.999)
    return text if all(_HOST_LABEL.fullmatch(label) for label in name.split(".")) else None


LOG_FORMATS = ("text", "json")


def _as_log_format(value: object) -> str | None:
    # Any case, as --log-level takes its names: JSON is as clear as json.
    name = value.strip().lower() if isinstance(value, str) else None
    return name if name in LOG_FORMATS else None


def _as_path(value: object) -> Path | None:
    return Path(value) if isinstance(value, str | Path) and str(value).strip() else None


_CHECKS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "bootstrap_servers": ("a comma-separated list of host[:port] (ports 1 to 65535)", _as_bootstrap),
    "schema_registry_url": ("one http(s)://host[:port][/path] URL (port 1 to 65535)", _as_registry_url),
    "topic_prefix": ("at most 200 of the characters a-z, A-Z, 0-9, '.', '_' and '-'", _as_prefix),
    "metrics_host": ("an IP address or a host name, e.g. 127.0.0.1, 0.0.0.0, :: or localhost", _as_host),
    "state_dir": ("a folder path", _as_path),
    "stack_dir": ("a folder path", _as_path),
    "jars_dir": ("a folder path", _as_path),
    "log_format": (f"one of {', '.join(LOG_FORMATS)} (any case)", _as_log_format),
    **{name: (str(rng), rng.convert) for name, rng in INT_RANGES.items()},
}


def accepted(name: str) -> str:
    """What setting `name` accepts, as the end of a sentence (`an integer from 1 to 100000`)."""
    return _CHECKS[name][0]


def check_value(name: str, value: object, where: str) -> Any:
    """`value` converted for setting `name`, or a ConfigurationError naming `where` and the range."""
    description, convert = _CHECKS[name]
    converted = convert(value)
    if converted is None:
        shown = redact_url(str(value)) if isinstance(value, str) else value
        raise ConfigurationError(f"{where} must be {description}, got {shown!r}")
    return converted


# -- loading ------------------------------------------------------------------------------------

_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "bootstrap_servers",
    "SCHEMA_REGISTRY_URL": "schema_registry_url",
    "CHOREO_TOPIC_PREFIX": "topic_prefix",
    "CHOREO_STATE_DIR": "state_dir",
    "CHOREO_STACK_DIR": "stack_dir",
    "CHOREO_JARS_DIR": "jars_dir",
    "CHOREO_PARTITIONS": "partitions",
    "CHOREO_REPLICATION_FACTOR": "replication_factor",
    "CHOREO_BATCH_SIZE": "batch_size",
    "CHOREO_COMMIT_INTERVAL_MS": "commit_interval_ms",
    "CHOREO_METRICS_PORT": "metrics_port",
    "CHOREO_METRICS_HOST": "metrics_host",
    "CHOREO_SESSION_TIMEOUT_MS": "session_timeout_ms",
    "CHOREO_TRANSACTION_TIMEOUT_MS": "transaction_timeout_ms",
    "CHOREO_TXN_PRODUCERS": "txn_producers",
    "CHOREO_STALL_S": "stall_s",
    "CHOREO_WATCHDOG_GRACE_S": "watchdog_grace_s",
    "CHOREO_TIMER_CHECK_MS": "timer_check_ms",
    "CHOREO_LOG_FORMAT": "log_format",
}
# An empty prefix is a real value (no prefix). For every other variable, set-but-empty is a slip
# (an empty $VAR in a script, say): unsetting is how to ask for the default, so it is refused.
_EMPTY_ALLOWED = frozenset({"topic_prefix"})


def load_settings(env: dict[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Settings from an optional TOML file (CHOREO_CONFIG), overridden by environment variables."""
    env = dict(os.environ) if env is None else env
    raw: dict[str, tuple[object, str]] = {}  # setting -> (value, where it was set)
    extra: dict[str, str] = {}
    path = config_file or _config_path(env)
    if path is not None:
        raw, extra = _read_config(path, "" if config_file else " (CHOREO_CONFIG)")
    for var, name in _ENV.items():
        if var not in env:
            continue
        if not env[var].strip() and name not in _EMPTY_ALLOWED:
            raise ConfigurationError(
                f"{var} is set but empty: set it to {accepted(name)}, or unset it for the default"
            )
        raw[name] = (env[var], var)
    for var, value in env.items():
        if var.startswith(_KAFKA_PASSTHROUGH_PREFIX):
            extra[var[len(_KAFKA_PASSTHROUGH_PREFIX):].lower().replace("_", ".")] = value
    typed = {name: check_value(name, value, where) for name, (value, where) in raw.items()}
    return replace(Settings(), kafka_extra=extra, **typed)


def _config_path(env: dict[str, str]) -> Path | None:
    if "CHOREO_CONFIG" not in env:
        return None
    if not env["CHOREO_CONFIG"].strip():
        raise ConfigurationError(
            "CHOREO_CONFIG is set but empty: set it to a TOML file, or unset it to use none"
        )
    return Path(env["CHOREO_CONFIG"])


def _read_config(path: Path, named_by: str) -> tuple[dict[str, tuple[object, str]], dict[str, str]]:
    """(setting -> (value, `key in file`), librdkafka passthrough) from a TOML settings file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as e:
        raise ConfigurationError(
            f"the settings file {path}{named_by} cannot be read: {e.strerror or e}"
        ) from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"the settings file {path}{named_by} is not valid TOML: {e}") from e
    table = _settings_table(data, path)
    known = {f.name for f in fields(Settings)} - {"kafka_extra"}
    values: dict[str, tuple[object, str]] = {}
    extra: dict[str, str] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name == "kafka":
            extra = _kafka_table(value, f"kafka in {path}")
        elif name in known:
            values[name] = (value, f"{key} in {path}")
        else:
            raise ConfigurationError(
                f"unknown key {key!r} in {path}; known keys: {', '.join(sorted(known | {'kafka'}))}"
            )
    return values, extra


def _settings_table(data: dict[str, Any], path: Path) -> dict[str, Any]:
    # Settings sit either in a [choreo] table or at the top level, never both.
    if "choreo" not in data:
        return data
    others = sorted(set(data) - {"choreo"})
    if others:
        raise ConfigurationError(
            f"unknown key {others[0]!r} in {path}: with a [choreo] table, every setting goes in it"
        )
    if not isinstance(data["choreo"], dict):
        raise ConfigurationError(f"choreo in {path} must be a table of settings")
    return data["choreo"]  # type: ignore[no-any-return]


def _kafka_table(value: object, where: str, prefix: str = "") -> dict[str, str]:
    # TOML reads `sasl.mechanism = "PLAIN"` as a nested table; librdkafka wants the dotted name.
    if not isinstance(value, dict):
        raise ConfigurationError(f"{where} must be a table of librdkafka settings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            out.update(_kafka_table(item, where, f"{prefix}{key}."))
        elif isinstance(item, bool):
            out[f"{prefix}{key}"] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            out[f"{prefix}{key}"] = str(item)
        else:  # the value may be a secret: name the key only
            raise ConfigurationError(f"{prefix}{key} of {where} must be a string, number or boolean")
    return out
