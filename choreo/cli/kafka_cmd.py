"""`choreo kafka <tool> [args]`: the Kafka console tools, from the stack's jars, against our cluster."""

from __future__ import annotations

import subprocess

import typer

from choreo.cli.context import cli_settings
from choreo.cli.errors import one_sentence_errors
from choreo.stack.discovery import layout_for
from choreo.stack.errors import StackError
from choreo.stack.tools import TOOLS, tool_command


@one_sentence_errors
def kafka(
    ctx: typer.Context,
    tool: str = typer.Argument(..., help=f"One of: {', '.join(TOOLS)}"),
) -> None:
    """Run a Kafka console tool (kafka-<tool>.sh) with --bootstrap-server set from the settings.

    Every argument after the tool name is passed through, e.g.
    `choreo kafka topics --list` or `choreo kafka consumer-groups --describe --all-groups`.
    """
    settings = cli_settings()
    try:
        cmd = tool_command(layout_for(settings), tool, list(ctx.args), settings.bootstrap_servers)
    except StackError as error:
        typer.secho(str(error), fg="red", err=True)
        raise typer.Exit(1) from None
    try:
        code = subprocess.call(cmd)
    except KeyboardInterrupt:  # console-consumer runs until interrupted; that is not an error
        code = 130
    raise typer.Exit(code)
