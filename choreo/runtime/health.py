"""A worker's progress signal, and the HTTP endpoint that serves it next to its metrics.

A liveness probe must tell "idle" from "stuck". An idle worker keeps polling and has nothing to
commit; a stuck one either stops polling (wedged in a call) or keeps failing its batches. So the
worker reports both: every pass of its loop (`polled`) and every committed or failed batch.
`/healthz` answers 503 when the loop has not turned for `stall_s` (except while it restores
state, which happens inside a poll), or when batches have been failing without a single commit
for `stall_s`; `/readyz` answers 200 once the worker has restored its state and is consuming, and 503 while
a partition is held back: its state could not be restored (an `evolve` that raises on the
service's own event, or a record that may be its own but names a schema this process cannot
read), so the worker serves its other partitions and says which one it does not serve instead of
restarting for ever (and, for a record that may be junk, the `choreo rebuild --skip-offset` that
gets past it); a restart or a rebalance tries it again.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


@dataclass
class Progress:
    """What the loop last managed to do; read by the health endpoint from another thread."""

    stall_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    ready: bool = False
    last_poll: float = field(default=0.0)
    last_commit_wall: float = 0.0  # epoch seconds of the last committed batch, 0 = none yet
    failing_since: float | None = None  # first failed batch since the last commit
    held_back: dict[int, str] = field(default_factory=dict)  # partition -> why it is not served
    # Own partitions with a transaction that never ends (stable_watch.py): partition -> why.
    hanging: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.last_poll = self.clock()

    def polled(self) -> None:
        self.last_poll = self.clock()

    def committed(self) -> None:
        self.last_commit_wall = self.wall()
        self.failing_since = None

    def idle(self) -> None:
        """Nothing to process: a failure before this is over (its records were revoked)."""
        self.failing_since = None

    def failed(self) -> None:
        if self.failing_since is None:
            self.failing_since = self.clock()

    def failing_for(self) -> float:
        """Seconds that batches have failed without a commit in between (0 when not failing)."""
        return 0.0 if self.failing_since is None else self.clock() - self.failing_since

    def problem(self) -> str | None:
        """Why the worker is not live, or None."""
        now = self.clock()
        # While restoring (not ready) the loop does not turn: the restore runs inside the poll.
        # Its own calls are under the watchdog, so a restore that stops moving ends the worker.
        if self.ready and now - self.last_poll > self.stall_s:
            return f"the worker loop has not turned for {now - self.last_poll:.0f} s"
        if self.failing_for() > self.stall_s:
            return f"every batch has failed for {self.failing_for():.0f} s (no commit)"
        return None

    def report(self) -> dict[str, Any]:
        held_back = dict(self.held_back)  # copied: the loop's thread changes it
        hanging = dict(self.hanging)
        return {
            "live": self.problem() is None,
            "ready": self.ready and not held_back and not hanging,
            "held_back_partitions": {str(p): why for p, why in sorted(held_back.items())},
            "hanging_transactions": {str(p): why for p, why in sorted(hanging.items())},
            "problem": self.problem(),
            "last_commit_at": self.last_commit_wall or None,
            "seconds_since_poll": round(self.clock() - self.last_poll, 3),
            "failing_for_s": round(self.failing_for(), 3),
        }


def serve_endpoints(
    registry: CollectorRegistry, progress: Progress, port: int, host: str = "127.0.0.1"
) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz on host:port in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                report = progress.report()
                ok = report["live"] if path == "/healthz" else report["ready"] and report["live"]
                self._send(200 if ok else 503, json.dumps(report).encode(), "application/json")
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None  # a probe every few seconds would flood the worker's log

    server_class = _V6Server if ":" in host else ThreadingHTTPServer
    server = server_class((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="choreo-endpoints", daemon=True).start()
    return server


class _V6Server(ThreadingHTTPServer):
    """The same server on an IPv6 address (`::` also takes IPv4 where the system maps it)."""

    address_family = socket.AF_INET6
