"""`choreo worker` (one service as an exactly-once worker) and `choreo run` (every service, supervised)."""

from __future__ import annotations

import os

import typer

from choreo.cli.context import cli_settings, setting_option
from choreo.cli.errors import fail, one_sentence_errors, option_check
from choreo.domain import installation
from choreo.logs import LEVELS, parse_level
from choreo.settings import load_settings


@one_sentence_errors
def worker(
    service: str = typer.Argument(..., help="Service to run, e.g. packaging."),
    instance: str = typer.Option(
        "0", "--instance", "-i",
        help="Stable instance id: names the transactional.id and group.instance.id. "
        "Run up to one instance per partition, each with its own id.",
    ),
    metrics_port: int = typer.Option(
        None, "--metrics-port",
        help="Serve Prometheus metrics (/metrics) and health (/healthz, /readyz) on HOST:PORT "
        "(default CHOREO_METRICS_PORT; 0: none).",
        callback=setting_option("metrics_port", "--metrics-port"),
    ),
    metrics_host: str = typer.Option(
        None, "--metrics-host",
        help="The address the metrics and health endpoints listen on: an IP address or a host "
        "name (default CHOREO_METRICS_HOST, else 127.0.0.1; 0.0.0.0 in a container).",
        callback=setting_option("metrics_host", "--metrics-host"),
    ),
    log_level: str = typer.Option(
        "INFO", "--log-level", help=f"One of {', '.join(LEVELS)} (any case).",
        callback=option_check(parse_level),
    ),
) -> None:
    """Run one instance of SERVICE as a long-lived exactly-once worker.

    Exit codes (a supervisor such as choreo run, systemd or Kubernetes restarts it):
    0 stopped; 1 error or fenced;
    3 ended by its watchdog (a blocking call or a stop overran its deadline);
    4 no batch could commit for twice CHOREO_STALL_S.

    Example: choreo worker packaging --instance 1 --metrics-port 9101 --metrics-host 0.0.0.0
    """
    from choreo.logs import configure_logging
    from choreo.runtime.compose import build_worker
    from choreo.runtime.watchdog import Watchdog
    from choreo.runtime.worker import run_worker_safely

    settings = cli_settings()  # first: it says how to log (CHOREO_LOG_FORMAT), and logs nothing
    configure_logging(service, log_level, saga_field=installation().envelope.saga_field,
                      instance=instance, log_format=settings.log_format)
    if metrics_port is not None:
        settings = settings.with_overrides(metrics_port=metrics_port)
    if metrics_host is not None:
        settings = settings.with_overrides(metrics_host=metrics_host)
    # The watchdog ends this process if a client call or a stop request overruns its deadline.
    watchdog = Watchdog(grace_s=settings.watchdog_grace_s)
    w = build_worker(service, settings, instance, watchdog, supervisor_pid=_supervisor_pid())
    w.install_signal_handlers()
    watchdog.start()
    try:
        code = run_worker_safely(w)
    finally:
        watchdog.close()
    raise typer.Exit(code)


@one_sentence_errors
def run(
    service: list[str] = typer.Option(None, "--service", "-s", help="Only these services."),
    instances: int = typer.Option(
        1, "--instances", "-n",
        help="Worker processes per service, 1 to CHOREO_PARTITIONS (more would sit idle): "
        "instance ids 0..N-1, stable across restarts.",
    ),
    instance: str = typer.Option(
        None, "--instance", "-i",
        help="Instance id of the one worker per service (default 0); not with --instances N > 1.",
    ),
) -> None:
    """Run every service as supervised worker processes until Ctrl-C or SIGTERM.

    A worker that dies is restarted; log lines are prefixed with service/instance
    (with CHOREO_LOG_FORMAT=json: one JSON object per line, each naming its service and instance).
    Exit code: 0 once every worker has stopped, 1 if one had to be killed after 60 s.
    With CHOREO_METRICS_PORT=P, instance I of service number S (from 0, in order)
    serves on CHOREO_METRICS_HOST:P+S*N+I, so no two collide.

    Example: choreo run --instances 2
    """
    from choreo.runtime.supervisor import Supervisor, check_instances, plan_children

    names = list(service) if service else list(installation().service_names)
    for name in names:
        installation().service(name)  # an unknown name fails here, in one sentence
    # So does a bad setting, once, instead of in every worker restarted forever.
    settings = load_settings()
    check_instances(instances, settings.partitions)
    if instance is not None and instances > 1:
        fail(f"--instance {instance} names the one worker of each service, but --instances "
             f"{instances} runs ids 0 to {instances - 1}: give one or the other")
    plan = plan_children(names, instances, settings.metrics_port, instance or "0")
    sup = Supervisor(plan, log_format=settings.log_format)
    sup.install_signal_handlers()
    raise typer.Exit(sup.run())


def _supervisor_pid() -> int | None:
    """The pid of the `choreo run` that started this worker, if one did."""
    from choreo.runtime.supervisor import SUPERVISOR_PID_ENV

    value = os.environ.get(SUPERVISOR_PID_ENV, "")
    return int(value) if value.isdigit() else None
