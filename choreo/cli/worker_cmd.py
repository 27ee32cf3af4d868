"""`choreo worker`, `choreo rebuild`, `choreo topics create`, `choreo schemas register|check`."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import typer

from choreo import bootstrap
from choreo.cli.context import cli_settings, setting_option
from choreo.cli.errors import fail, one_sentence_errors, option_check
from choreo.kafka import clients
from choreo.logs import LEVELS, parse_level
from choreo.settings import load_settings

log = logging.getLogger("choreo.cli")

topics_app = typer.Typer(help="Create the saga's topics.", no_args_is_help=True)
schemas_app = typer.Typer(help="Register and check the event schemas.", no_args_is_help=True)


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
        help="Serve Prometheus metrics (/metrics) and health (/healthz, /readyz) on 127.0.0.1:PORT.",
        callback=setting_option("metrics_port", "--metrics-port"),
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

    Example: choreo worker packaging --instance 1 --metrics-port 9101
    """
    from choreo.domain import installation
    from choreo.logs import configure_logging
    from choreo.runtime.watchdog import Watchdog
    from choreo.runtime.worker import Worker, run_worker_safely

    configure_logging(service, log_level, saga_field=installation().saga_id)
    settings = cli_settings()
    if metrics_port is not None:
        settings = settings.with_overrides(metrics_port=metrics_port)
    svc = bootstrap.load_service(service)
    codec = bootstrap.build_codec(settings)
    # The watchdog ends this process if a client call or a stop request overruns its deadline.
    watchdog = Watchdog(grace_s=settings.watchdog_grace_s)
    w = Worker(svc, settings, codec, instance_id=instance, watchdog=watchdog,
               saga_id=installation().saga_id)
    w.install_signal_handlers()
    watchdog.start()
    try:
        code = run_worker_safely(w)
    finally:
        watchdog.close()
    raise typer.Exit(code)


@one_sentence_errors
def rebuild(
    service: str = typer.Argument(..., help="Service whose state to rebuild."),
    partition: list[int] = typer.Option(None, "--partition", "-p", help="Only these partitions."),
    verify: bool = typer.Option(
        False, "--verify",
        help="Do not replace anything: rebuild up to the live checkpoint and compare state hashes.",
    ),
) -> None:
    """Rebuild SERVICE's local state by replaying its own topic (decide is never called).

    Example: choreo rebuild packaging --verify
    """
    from choreo.ops.rebuild import rebuild as run_rebuild

    settings = cli_settings()
    svc = bootstrap.load_service(service)
    codec = bootstrap.build_codec(settings)
    results = run_rebuild(settings, svc, codec, partition or None, verify=verify)
    bad = 0
    for r in results:
        if verify:
            status = "ok" if r.matches else "MISMATCH"
            bad += not r.matches
            typer.echo(
                f"{service}[{r.partition}] {status} events={r.events} checkpoint={r.checkpoint} "
                f"rebuilt={r.rebuilt_hash[:16]} live={(r.live_hash or '')[:16]}"
            )
        else:
            typer.echo(f"{service}[{r.partition}] rebuilt events={r.events} hash={r.rebuilt_hash[:16]}")
    if bad:
        fail(f"{bad} partition(s) of {service} differ from a rebuild of the log")


@topics_app.command("create")
@one_sentence_errors
def topics_create(
    partitions: int = typer.Option(
        None, "--partitions", help="Partitions per topic (default 6).",
        callback=setting_option("partitions", "--partitions"),
    ),
) -> None:
    """Create every saga topic (commands, events, DLQs) with one partition count, kept forever.

    Example: choreo topics create --partitions 6
    """
    from choreo.kafka.topics import create_topics, logical_topics

    settings = cli_settings()
    if partitions is not None:
        settings = settings.with_overrides(partitions=partitions)
    names = logical_topics(bootstrap.load_all_services())
    created = create_topics(clients.admin_client(settings), settings, names)
    for name in names:
        mark = "created" if settings.topic(name) in created else "exists"
        typer.echo(f"{settings.topic(name)}: {mark}")


@schemas_app.command("register")
@one_sentence_errors
def schemas_register() -> None:
    """Register every schema in schemas/ (subject <topic>-<record>) with BACKWARD_TRANSITIVE.

    Example: choreo schemas register
    """
    from choreo.serde.registration import register_all
    from choreo.serde.schemas import load_event_schemas

    settings = cli_settings()
    services = bootstrap.load_all_services()
    schemas = load_event_schemas(bootstrap.event_classes(services), *bootstrap.schema_roots())
    for r in register_all(clients.registry_client(settings), settings, services, schemas):
        typer.echo(f"{r.subject}: id {r.schema_id}")


@schemas_app.command("check")
@one_sentence_errors
def schemas_check(
    repo: Path = typer.Option(Path("."), "--repo", help="Git repository holding the schemas."),
) -> None:
    """Check that every schema can read data written by each earlier version in git history.

    Run it in the checkout that holds the schemas: an installed copy has no history.

    Example: choreo schemas check
    """
    from choreo.serde.compat import check_roots

    try:
        report = check_roots(repo, bootstrap.schema_roots())
    except subprocess.CalledProcessError as e:
        fail(f"git failed: {e.stderr.strip() if e.stderr else e}")
        return
    for root, why in report.skipped:
        typer.echo(f"not checked: {root} ({why})")
    for p in report.problems:
        typer.echo(f"INCOMPATIBLE {p.path} vs {p.commit}: {p.reason}")
    typer.echo(f"{report.checked} earlier version(s) checked, {len(report.problems)} incompatible")
    if report.problems:
        raise typer.Exit(1)


@one_sentence_errors
def run(
    service: list[str] = typer.Option(None, "--service", "-s", help="Only these services."),
    instance: str = typer.Option("0", "--instance", "-i", help="Instance id for every worker."),
) -> None:
    """Run every service as a supervised worker process until Ctrl-C or SIGTERM.

    A worker that dies is restarted; log lines are prefixed with the service name.
    Example: choreo run
    """
    from choreo.runtime.supervisor import Supervisor

    names = list(service) if service else list(bootstrap.service_names())
    for name in names:
        bootstrap.load_service(name)  # an unknown name fails here, in one sentence
    load_settings()  # so does a bad setting, once, instead of in every worker restarted forever
    sup = Supervisor(names, instance=instance)
    sup.install_signal_handlers()
    raise typer.Exit(sup.run())
