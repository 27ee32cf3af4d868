"""The Starlette application of `choreo ui`: routes to pages, the live list's event stream, and the
one write, a confirmed dead-letter retry (POST only)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from confluent_kafka import KafkaException
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from choreo.exceptions import ChoreoError, ConfigurationError
from choreo.ops.records import parse_time
from choreo.ops.stuck import waiting_for
from choreo.ops.trace import NoSuchSagaError
from choreo.ui import pages, timeline
from choreo.ui.index import SagaFilter, SagaIndex
from choreo.ui.queries import Queries

_FILTERS = ("outcome", "reason", "key", "since", "until", "stuck")
STUCK_S = 60.0  # the list's count of sagas in flight for longer than this
_LIVE_POLL_S = 0.5  # how often the event stream looks at the index's version


def create_app(queries: Queries, graph: Callable[[], tuple[str | None, str]] | None = None) -> Starlette:
    """The app over `queries`; `graph` gives (SVG or None, Mermaid text) for the graph page."""
    index: SagaIndex = queries.index

    def filters_of(request: Request) -> tuple[dict[str, str], SagaFilter]:
        given = {k: request.query_params.get(k, "").strip() for k in _FILTERS}
        if not given["key"] and index.key_name not in _FILTERS:
            # The key under the domain's own name (`?site=...`), as the CLI's alias takes it.
            given["key"] = request.query_params.get(index.key_name, "").strip()
        given = {k: v for k, v in given.items() if v}
        return given, SagaFilter(
            outcome=given.get("outcome"), reason=given.get("reason"), key=given.get("key"),
            since=_time(given.get("since"), "since"), until=_time(given.get("until"), "until"),
            stuck_s=_seconds(given.get("stuck"), "stuck"),
        )

    async def saga_list(request: Request) -> Response:
        try:
            given, where = filters_of(request)
        except ConfigurationError as e:
            return HTMLResponse(pages.message("Sagas", str(e), index.error), status_code=400)
        stuck = index.count(SagaFilter(stuck_s=STUCK_S))
        return HTMLResponse(pages.saga_list(index.sagas(where), given, index.choices(), index.error,
                                            stuck=(stuck, STUCK_S), key_name=index.key_name))

    async def events(request: Request) -> Response:
        try:
            _given, where = filters_of(request)
        except ConfigurationError as e:
            return Response(str(e), status_code=400)

        async def stream() -> AsyncIterator[str]:
            seen = -1
            while not await request.is_disconnected():
                if index.version != seen:
                    seen = index.version
                    sagas = index.sagas(where)
                    data = json.dumps({"rows": pages.saga_rows(sagas), "count": len(sagas)})
                    yield f"event: sagas\ndata: {data}\n\n"
                await asyncio.sleep(_LIVE_POLL_S)  # polling the version; updates are at most this late

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def saga(request: Request) -> Response:
        saga_id = request.path_params["saga_id"]
        try:
            trace = await run_in_threadpool(queries.trace, saga_id)
        except NoSuchSagaError as e:
            return HTMLResponse(pages.message("No such saga", str(e), index.error), status_code=404)
        except ChoreoError as e:
            return HTMLResponse(pages.message("Saga", str(e), index.error), status_code=503)
        waiting, owing = None, []
        if trace.outcome is None:  # who owes it the next step (a broker question: may fail)
            try:
                owing = await run_in_threadpool(queries.owing, trace)
                waiting = waiting_for(owing)
            except (ChoreoError, KafkaException) as e:
                waiting = f"cannot tell who it waits for: {e}"
        svg = timeline.render(trace, [s.name for s in queries.services], owing)
        return HTMLResponse(pages.saga_page(trace, svg, index.error, waiting, index.key_name))

    async def services(request: Request) -> Response:
        rows = [(s.name, s.description, *index.rate(s.name)) for s in queries.services]
        return HTMLResponse(pages.services_page(rows, index.error))

    async def service(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in {s.name for s in queries.services}:
            return _unknown_service(name)
        status = await run_in_threadpool(queries.status, name)
        return HTMLResponse(pages.service_page(status, index.error))

    async def retry(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in {s.name for s in queries.services}:
            return _unknown_service(name)
        service_ = queries.service(name)
        if request.method == "GET":
            try:
                partition, offset = _coordinates(dict(request.query_params))
                letters = await run_in_threadpool(
                    queries.dead_letters_at, service_, partition, offset)
            except ChoreoError as e:
                return HTMLResponse(pages.message("Retry", str(e)), status_code=400)
            return HTMLResponse(pages.retry_confirm(name, letters, partition, offset))
        if not _same_origin(request):
            return HTMLResponse(pages.message("Retry", "refused: the request came from another site"),
                                status_code=403)
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("confirm") != "yes":
            return HTMLResponse(pages.message("Retry", "not confirmed: nothing was sent"), status_code=400)
        try:
            partition, offset = _coordinates(form)
            report = await run_in_threadpool(queries.retry_dead_letters, service_, partition, offset)
        except ChoreoError as e:
            return HTMLResponse(pages.message("Retry", str(e)), status_code=400)
        return HTMLResponse(pages.retry_done(name, report))

    async def graph_view(request: Request) -> Response:
        if graph is None:
            text = "the graph is not available here"
            return HTMLResponse(pages.message("Choreography graph", text), status_code=404)
        try:
            svg, mermaid = await run_in_threadpool(graph)
        except ChoreoError as e:  # graphviz failed to draw it
            return HTMLResponse(pages.message("Choreography graph", str(e)), status_code=500)
        return HTMLResponse(pages.graph_page(svg, mermaid))

    return Starlette(routes=[
        Route("/", saga_list),
        Route("/events", events),
        Route("/sagas/{saga_id:path}", saga),  # path: a saga id may hold a slash
        Route("/services", services),
        Route("/services/{name:str}", service),
        Route("/services/{name:str}/retry", retry, methods=["GET", "POST"]),
        Route("/graph", graph_view),
    ])


def _unknown_service(name: str) -> Response:
    return HTMLResponse(pages.message("No such service", f"unknown service {name!r}"), status_code=404)


def _same_origin(request: Request) -> bool:
    """Whether a POST came from this app's own pages. Browsers name the page's origin on a POST;
    a page of another site must not be able to make a visitor's browser retry dead letters."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def _time(text: str | None, name: str) -> datetime | None:
    return None if text is None else parse_time(text, name)


def _seconds(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10**9:
        raise ConfigurationError(f"{name} must be a number of seconds, not {text!r}")
    return value


def _coordinates(given: dict[str, Any]) -> tuple[int | None, int | None]:
    """The dead letter a retry names (partition and offset), or neither: all of them."""
    try:
        partition = int(given["partition"]) if given.get("partition") not in (None, "") else None
        offset = int(given["offset"]) if given.get("offset") not in (None, "") else None
    except ValueError:
        raise ConfigurationError("partition and offset must be whole numbers") from None
    if (partition is None) != (offset is None):
        raise ConfigurationError("name a dead letter by both partition and offset, or neither for all")
    return partition, offset
