"""`choreo topics create` and `choreo schemas register|check`: what a saga needs before it runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import typer

from choreo import bootstrap
from choreo.cli.context import cli_settings, setting_option
from choreo.cli.errors import fail, one_sentence_errors

topics_app = typer.Typer(help="Create the saga's topics.", no_args_is_help=True)
schemas_app = typer.Typer(help="Register and check the event schemas.", no_args_is_help=True)


@topics_app.command("create")
@one_sentence_errors
def topics_create(
    partitions: int = typer.Option(
        None, "--partitions", help="Partitions per topic (default 6).",
        callback=setting_option("partitions", "--partitions"),
    ),
) -> None:
    """Create every saga topic (commands, events, DLQs, retry topics) with one partition count,
    kept forever.

    Example: choreo topics create --partitions 6
    """
    from choreo.provision import create_all_topics

    settings = cli_settings()
    if partitions is not None:
        settings = settings.with_overrides(partitions=partitions)
    names, created = create_all_topics(settings)
    for name in names:
        mark = "created" if settings.topic(name) in created else "exists"
        typer.echo(f"{settings.topic(name)}: {mark}")


@schemas_app.command("register")
@one_sentence_errors
def schemas_register() -> None:
    """Register every schema (subject <topic>-<record>) with FULL_TRANSITIVE compatibility.

    A schema the subject's earlier versions refuse fails in one sentence; `choreo schemas check
    --registry` names the field and the rule.

    Example: choreo schemas register
    """
    from choreo.provision import register_schemas

    registered, _schemas = register_schemas(cli_settings())
    for r in registered:
        typer.echo(f"{r.subject}: id {r.schema_id}")


@schemas_app.command("check")
@one_sentence_errors
def schemas_check(
    repo: Path = typer.Option(Path("."), "--repo", help="Git repository holding the schemas."),
    registry: bool = typer.Option(
        False, "--registry",
        help="Also ask the running registry (SCHEMA_REGISTRY_URL) whether it would take each "
             "schema under its subject: its verdict, with the broken rule named.",
    ),
) -> None:
    """Check every schema against each earlier version in git history, both ways (FULL: new code
    reads old records, old code reads new ones), by Avro's resolution rules; with --registry,
    against every version its subject holds in the registry too. Exit 1 on any refusal.

    Run it in the checkout that holds the schemas: an installed copy has no history.

    Example: choreo schemas check --registry
    """
    from choreo.exceptions import ConfigurationError
    from choreo.serde.compat import check_roots

    try:
        report = check_roots(repo, bootstrap.schema_roots())
    except subprocess.CalledProcessError as e:
        fail(f"git failed: {e.stderr.strip() if e.stderr else e}")
        return
    except ConfigurationError as e:
        if not registry:
            raise
        # An environment's installed copy has no history: the registry's verdict still counts.
        typer.echo(f"not checked against git history: {e}")
        report = None
    if report is not None:
        for root, why in report.skipped:
            typer.echo(f"not checked: {root} ({why})")
        for p in report.problems:
            typer.echo(f"INCOMPATIBLE {p.path} vs {p.commit}: {p.reason}")
        typer.echo(f"{report.checked} earlier version(s) checked, {len(report.problems)} incompatible")
    refused = _check_registry() if registry else 0
    if (report is not None and report.problems) or refused:
        raise typer.Exit(1)


def _check_registry() -> int:
    """Print the registry's refusals and a summary; how many it refused."""
    from choreo.domain import installation
    from choreo.kafka import clients
    from choreo.provision import installed_schemas
    from choreo.serde.registry_check import check_against_registry

    settings = cli_settings()
    services = list(installation().services)
    verdicts = check_against_registry(
        clients.registry_client(settings), settings, services, installed_schemas(services))
    refused = [v for v in verdicts if v.refusal is not None]
    for v in refused:
        typer.echo(f"REFUSED BY THE REGISTRY {v.path} as {v.subject}: {v.refusal}")
    held = sum(1 for v in verdicts if v.versions)
    typer.echo(f"registry: {len(verdicts)} subject(s), {held} already held, {len(refused)} refused")
    return len(refused)
