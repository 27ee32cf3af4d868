"""The `choreo` command: one Typer app that mounts each verb group from its own module."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from choreo.optional_imports import installed_classes

# Why the installed domain did not load, when it did not (set by _mount_plugins).
_domain_failure: str | None = None


# What the option parser raises for an unknown flag: the copy of Click that newer Typer releases
# carry inside them (typer._click, with no dependency on Click), or Click's own for older ones.
_NO_SUCH_OPTION = installed_classes(("typer._click.exceptions", "click.exceptions"), "NoSuchOption")


class _Commands(TyperGroup):
    """choreo's commands. A flag named after the domain's fields (`--site` for a key named site)
    is unknown when the domain did not load: the refusal then says why, and that `--key` and
    `--saga` still work."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _NO_SUCH_OPTION as e:
            if _domain_failure is not None and _takes_key_or_saga(getattr(e, "ctx", None)):
                said = getattr(e, "message", str(e))
                e.message = (  # type: ignore[attr-defined]  # both classes print it
                    f"{said}: the installed domain names the key and saga flags, and it did "
                    f"not load ({_domain_failure}); --key and --saga work without it"
                )
            raise


def _takes_key_or_saga(ctx: Any) -> bool:
    """Whether the refused command is one of those whose flags the domain names."""
    params = getattr(getattr(ctx, "command", None), "params", ())
    return any(opt in ("--key", "--saga") for p in params for opt in getattr(p, "opts", ()))


app = typer.Typer(
    name="choreo",
    cls=_Commands,
    help="Run and operate choreographed sagas on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _mount() -> None:
    # Imported here so that `choreo --help` stays fast and nothing runs at import time elsewhere.
    from choreo.cli import kafka_cmd, rebuild_cmd, run_cmd, setup_cmd, stack_cmd

    app.add_typer(stack_cmd.app, name="stack")
    app.command(
        "kafka",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(kafka_cmd.kafka)
    app.command("worker")(run_cmd.worker)
    app.command("rebuild")(rebuild_cmd.rebuild)
    app.add_typer(setup_cmd.topics_app, name="topics")
    app.add_typer(setup_cmd.schemas_app, name="schemas")
    app.command("run")(run_cmd.run)
    _mount_operator_tools()
    _mount_plugins()


def _mount_operator_tools() -> None:
    from choreo.cli import graph_cmd, ops_cmd, repair_cmd, ui_cmd

    app.command("replay")(ops_cmd.replay)
    app.command("trace")(ops_cmd.trace)
    app.command("sagas")(ops_cmd.sagas)
    app.command("state")(ops_cmd.state)
    app.add_typer(repair_cmd.dlq_app, name="dlq")
    app.command("reset")(repair_cmd.reset)
    app.command("graph")(graph_cmd.graph)
    app.command("ui")(ui_cmd.ui)


def _mount_plugins() -> None:
    # Domain commands (placing orders, auditing the saga) live with the domain: each installed
    # domain may name a `register(app)` function (Domain.cli) that adds them.
    global _domain_failure
    from choreo.domain import installation
    from choreo.exceptions import ChoreoError

    try:
        plugins = installation().cli_plugins()
    except ChoreoError as e:
        # The runtime's own commands (stack, kafka, --help) must work without a domain.
        _domain_failure = " ".join(str(e).split())
        typer.echo(f"warning: {_domain_failure}; no domain commands are available", err=True)
        return
    for register in plugins:
        register(app)


_mount()


if __name__ == "__main__":
    app()
