"""`choreo graph [--check]`: the choreography's contract graph, drawn or checked, from the declarations."""

from __future__ import annotations

from pathlib import Path

import typer

from choreo.cli.errors import fail, one_sentence_errors

FORMATS = ("mermaid", "dot", "svg")


def _format(value: str) -> str:
    if value not in FORMATS:
        fail(f"--format {value!r} is not one of {', '.join(FORMATS)}", code=2)
    return value


@one_sentence_errors
def graph(
    output_format: str = typer.Option(
        "mermaid", "--format", "-f", callback=_format,
        help="mermaid (GitHub renders it in a ```mermaid block), dot (graphviz), or svg (needs "
        "graphviz's `dot` on PATH).",
    ),
    output: Path = typer.Option(
        None, "--output", "-o", dir_okay=False, help="Write the graph to this file instead of stdout."
    ),
    check_only: bool = typer.Option(
        False, "--check",
        help="Check the graph instead of printing it (with --output it is still written): one "
        "sentence per problem and exit 1, exit 0 when there is none.",
    ),
) -> None:
    """Draw the contract graph of the installed services: services, topics,
    event types, and who emits and who consumes each. It is read from the
    declarations; no broker is needed.

    --check finds three kinds of loose ends, one sentence each:

    1. a failure event (Domain.failures) with no consumer that compensates;

    2. an emitted event that nobody consumes, unless it is terminal: a saga
    end (Domain.ends) or declared in Domain.terminal;

    3. an input type that nobody emits on the topic it is taken from, unless
    it is a command sent from outside the services (Domain.commands).

    A consumer compensates when it takes the failure event from the topic it
    is emitted on and emits an event declared a compensation
    (Domain.compensations) or a saga end whose outcome is "compensated"
    (Domain.ends).

    Example: choreo graph --format svg --output graph.svg
    """
    from choreo.domain import installation
    from choreo.ops.graph import build_graph, check, to_dot, to_mermaid, to_svg

    contract = build_graph(installation())
    if output is not None or not check_only:
        if output_format == "svg":
            drawn = to_svg(contract)
            if drawn is None:
                fail("--format svg needs graphviz's `dot` on PATH: install graphviz (e.g. "
                     "`apt-get install graphviz`), or use --format mermaid or dot", code=2)
        else:
            drawn = to_mermaid(contract) if output_format == "mermaid" else to_dot(contract)
        if output is None:
            typer.echo(drawn, nl=False)
        else:
            try:
                output.write_text(drawn, encoding="utf-8")
            except OSError as e:
                fail(f"cannot write {output}: {e.strerror or e}")
            typer.echo(f"wrote the {output_format} graph to {output}", err=True)
    if check_only:
        problems = check(contract)
        for problem in problems:
            typer.echo(problem.message)
        if problems:
            raise typer.Exit(1)
        typer.echo(f"the contract graph of {len(contract.services)} service(s) has no loose ends", err=True)
