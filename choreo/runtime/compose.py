"""The one place a worker is put together from the installation and the settings.

`choreo worker` (a process of its own) and the tests that run workers in threads both build
theirs here, so both get the same service, codec, envelope, timer topics and tracing.
"""

from __future__ import annotations

from choreo import bootstrap
from choreo.domain import installation
from choreo.runtime.faults import FaultInjector
from choreo.runtime.observation import WorkerObservation
from choreo.runtime.watchdog import Watchdog
from choreo.runtime.worker import Worker
from choreo.settings import Settings


def build_worker(
    service: str,
    settings: Settings,
    instance: str = "0",
    watchdog: Watchdog | None = None,
    supervisor_pid: int | None = None,
    tracing: WorkerObservation | None = None,
) -> Worker:
    """A worker of the installed `service`. `tracing` None: spans when the OTEL_* variables ask
    for them (choreo/tracing/config.py), else none. Its injected faults, if any, are the
    CHOREO_FAULT_* variables of the environment (choreo/runtime/faults.py; the fault suite's)."""
    from choreo.tracing.config import worker_tracing

    installed = installation()
    svc = installed.service(service)
    envelope = installed.envelope
    if tracing is None:
        tracing = worker_tracing(svc.name, envelope.saga_field, settings.group(svc.name))
    return Worker(
        svc, settings, bootstrap.build_codec(settings), envelope, instance_id=instance,
        faults=FaultInjector(), watchdog=watchdog, supervisor_pid=supervisor_pid,
        timer_topics=installed.timer_topics, tracing=tracing,
    )
