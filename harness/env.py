"""The environment of a child process (`choreo worker`, `choreo run`, the CLI, a bench script)
that points it at one slice of the stack: endpoints, topic prefix, state folder, domains."""

from __future__ import annotations

import os

from choreo.settings import Settings
from harness.paths import REPO

SAGA_DOMAINS = "consumers.domain:DOMAIN"


def python_env(**extra: str) -> dict[str, str]:
    """This process's environment with the repository importable (harness, tests, bench)."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def child_env(settings: Settings, domains: str = SAGA_DOMAINS, **extra: str) -> dict[str, str]:
    """`settings` as the variables choreo reads, so the child sees the same slice; `extra` last."""
    return python_env(**{
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "CHOREO_TOPIC_PREFIX": settings.topic_prefix,
        "CHOREO_STATE_DIR": str(settings.state_dir),
        "CHOREO_DOMAINS": domains,
        "CHOREO_PARTITIONS": str(settings.partitions),
        "CHOREO_REPLICATION_FACTOR": str(settings.replication_factor),
        "CHOREO_BATCH_SIZE": str(settings.batch_size),
        "CHOREO_COMMIT_INTERVAL_MS": str(settings.commit_interval_ms),
        "CHOREO_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        "CHOREO_TRANSACTION_TIMEOUT_MS": str(settings.transaction_timeout_ms),
        "CHOREO_TXN_PRODUCERS": str(settings.txn_producers),
        **extra,
    })
