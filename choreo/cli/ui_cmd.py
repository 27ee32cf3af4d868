"""`choreo ui`: the local web view (choreo/ui), served by uvicorn until Ctrl-C."""

from __future__ import annotations

import socket

import typer

from choreo.cli.context import cli_settings, setting_option
from choreo.cli.errors import fail, one_sentence_errors, option_check
from choreo.exceptions import ConfigurationError

DEFAULT_PORT = 8321


def _port(value: int) -> int:
    if not 1 <= value <= 65_535:
        raise ConfigurationError(f"--port must be 1 to 65535, got {value}")
    return value


@one_sentence_errors
def ui(
    host: str = typer.Option(
        "127.0.0.1", "--host",
        help="The address to listen on: an IP address or a host name. Anyone who can reach it can "
        "read the log and retry dead letters, so keep the default unless you mean otherwise.",
        callback=setting_option("metrics_host", "--host"),
    ),
    port: int = typer.Option(
        DEFAULT_PORT, "--port", help="The port to listen on.", callback=option_check(_port)
    ),
) -> None:
    """Serve a web view of the sagas on http://HOST:PORT/ until Ctrl-C.

    Sagas: a live list, filtered by outcome, failure reason, partition key and time.
    A saga: its timeline, a lane per service, arrows from cause to effect, failures and compensations marked.
    A service: its rate, lag, dead letters (retried after a confirmation) and local state.
    It reads the log and this machine's stores, and writes nothing but a confirmed dead-letter retry.
    Needs the optional ui extra of the choreo package (Starlette and uvicorn).

    Example: choreo ui --port 8321
    """
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        fail("choreo ui needs its extra: pip install 'choreo[ui]' (Starlette and uvicorn)")
    from choreo.ui.server import build

    _require_free(host, port)  # before the log is read: a port in use is one sentence, early
    app, index_start = build(cli_settings())
    index_start()
    typer.echo(f"choreo ui on http://{_url_host(host)}:{port}/ (Ctrl-C to stop)", err=True)
    # A short graceful timeout: the live list keeps its event stream open until told to stop.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


def _require_free(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        fail(f"--host {host!r} cannot be resolved ({e})")
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            fail(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port or --host")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
