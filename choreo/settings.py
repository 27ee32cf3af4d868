"""One settings object, read from the environment (and an optional TOML file) when asked, never at import."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# librdkafka security settings that pass through from CHOREO_KAFKA_<NAME> variables, e.g.
# CHOREO_KAFKA_SASL_PASSWORD -> sasl.password. Values are secrets: never printed or logged.
_KAFKA_PASSTHROUGH_PREFIX = "CHOREO_KAFKA_"


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    schema_registry_url: str = "http://127.0.0.1:8081/apis/ccompat/v7"
    topic_prefix: str = ""
    state_dir: Path = Path("state")
    stack_dir: Path = Path(".stack")
    partitions: int = 6
    replication_factor: int = 1
    batch_size: int = 500
    commit_interval_ms: int = 100
    metrics_port: int = 0
    session_timeout_ms: int = 10000
    transaction_timeout_ms: int = 30000
    # Liveness: /healthz turns 503 after this long without a turn of the loop or a commit while
    # batches fail; the worker exits (code 4) after twice as long.
    stall_s: int = 60
    # Added by the watchdog to a blocking call's own timeout before it ends the worker (code 3).
    watchdog_grace_s: int = 30
    kafka_extra: dict[str, str] = field(default_factory=dict)

    def topic(self, logical: str) -> str:
        """The physical topic name of a logical one (`orders` -> `<prefix>orders`)."""
        return f"{self.topic_prefix}{logical}"

    def group(self, service: str) -> str:
        return f"{self.topic_prefix}{service}"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)



def load_settings(env: dict[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Settings from an optional TOML file (CHOREO_CONFIG), overridden by environment variables."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    path = config_file or (Path(env["CHOREO_CONFIG"]) if env.get("CHOREO_CONFIG") else None)
    if path is not None:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        values.update({k.replace("-", "_"): v for k, v in data.get("choreo", data).items()})
    mapping = {
        "KAFKA_BOOTSTRAP_SERVERS": "bootstrap_servers",
        "SCHEMA_REGISTRY_URL": "schema_registry_url",
        "CHOREO_TOPIC_PREFIX": "topic_prefix",
        "CHOREO_STATE_DIR": "state_dir",
        "CHOREO_STACK_DIR": "stack_dir",
        "CHOREO_PARTITIONS": "partitions",
        "CHOREO_REPLICATION_FACTOR": "replication_factor",
        "CHOREO_BATCH_SIZE": "batch_size",
        "CHOREO_COMMIT_INTERVAL_MS": "commit_interval_ms",
        "CHOREO_METRICS_PORT": "metrics_port",
        "CHOREO_SESSION_TIMEOUT_MS": "session_timeout_ms",
        "CHOREO_TRANSACTION_TIMEOUT_MS": "transaction_timeout_ms",
        "CHOREO_STALL_S": "stall_s",
        "CHOREO_WATCHDOG_GRACE_S": "watchdog_grace_s",
    }
    for var, name in mapping.items():
        if env.get(var):
            values[name] = env[var]
    extra = dict(values.pop("kafka", {}) or {})
    for var, value in env.items():
        if var.startswith(_KAFKA_PASSTHROUGH_PREFIX):
            extra[var[len(_KAFKA_PASSTHROUGH_PREFIX):].lower().replace("_", ".")] = value
    base = Settings()
    typed: dict[str, Any] = {}
    for name, value in values.items():
        if not hasattr(base, name):
            continue
        current = getattr(base, name)
        if isinstance(current, bool):
            typed[name] = str(value).lower() in ("1", "true", "yes")
        elif isinstance(current, int):
            typed[name] = int(value)
        elif isinstance(current, Path):
            typed[name] = Path(value)
        else:
            typed[name] = str(value)
    return replace(base, kafka_extra=extra, **typed)
