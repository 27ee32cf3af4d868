"""Wiring `choreo ui`: the services, the codec, the saga index following the own topics, the app."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.applications import Starlette

from choreo import bootstrap
from choreo.domain import installation
from choreo.kafka.topic_names import topic_partitions
from choreo.ops import graph
from choreo.ops.log_reader import LogRecord, read_log
from choreo.settings import Settings
from choreo.ui.app import create_app
from choreo.ui.index import SagaIndex
from choreo.ui.queries import Queries


def build(settings: Settings) -> tuple[Starlette, Callable[[], None]]:
    """The app, and the function that starts following the log (called once the command runs).

    The own topics are checked first, so that a missing stack or topic is one sentence at the
    start rather than a banner on every page.
    """
    services = list(installation().services)
    own = {settings.topic(s.own_topic): s.name for s in services}
    topic_partitions(settings, [s.own_topic for s in services])
    codec = bootstrap.build_codec(settings, services)
    index = SagaIndex(installation(), own)

    def records() -> Iterable[LogRecord]:
        return read_log(settings, list(own), codec, follow=True)

    app = create_app(Queries(settings, codec, index), _graph)
    return app, lambda: index.follow(records)


def _graph() -> tuple[str | None, str]:
    """The installation's contract graph: SVG when graphviz is installed (else None), and Mermaid."""
    g = graph.build_graph(installation())
    return graph.to_svg(g), graph.to_mermaid(g)
