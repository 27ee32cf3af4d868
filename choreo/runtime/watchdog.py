"""A deadline for every blocking client call, and for SIGTERM, that holds even when the call ignores it.

librdkafka can wait without bound inside a transactional call after a coordinator dies (issues
#5456 and #5511: `send_offsets_to_transaction` sits in an untimed condition wait). Nothing
inside the process can unblock such a call, and Python signal handlers only run once it returns.
The worker is crash-only (its state is derived from the log and Kafka transactions fence a dead
producer), so the safe answer is to end the process and let the supervisor start it again.

The watchdog is a daemon thread. The worker wraps each blocking call in `guard(name, seconds)`;
a call still running past its deadline ends the process with `EXIT_WEDGED` after one ERROR line.
SIGTERM/SIGINT reach the thread through the signal wakeup fd (written by the C-level handler,
so even while the main thread is blocked): a stop that is not honoured within `stop_grace_s`
ends the process the same way.

Time the whole process did not run is not a call's fault. A process stopped (SIGSTOP, a frozen
cgroup, a paused VM) and then continued finds every deadline passed; whether its calls return
before this thread looks is a race, and losing it would end a healthy worker. The thread ticks
every `tick_s`, so a tick that comes `frozen_after_s` late means this thread, and so the process,
was not running: that time is added to every deadline. A wedged call does not stop the ticks,
so it is still caught.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

EXIT_WEDGED = 3  # a blocking call overran its deadline, or a stop request was not honoured
EXIT_NO_PROGRESS = 4  # batches kept failing for longer than the stall limit

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class _Call:
    name: str
    started: float
    deadline: float


class Watchdog:
    """Ends the process (after one log line) when a guarded call or a stop request overruns."""

    def __init__(
        self,
        grace_s: float = 30.0,
        stop_grace_s: float = 30.0,
        tick_s: float = 0.5,
        exit_process: Callable[[int], None] = os._exit,
        clock: Callable[[], float] = time.monotonic,
        frozen_after_s: float = 2.0,
    ) -> None:
        self.grace_s = grace_s
        self.stop_grace_s = stop_grace_s
        self.tick_s = tick_s
        self.frozen_after_s = frozen_after_s
        self._last_tick: float | None = None
        self._exit = exit_process
        self._clock = clock
        self._calls: dict[int, list[_Call]] = {}  # per thread: a stack (calls can nest)
        # Reentrant: stop_requested() runs in a SIGTERM handler, which can interrupt the main
        # thread while its own guard() holds the lock; a plain Lock deadlocks both threads there.
        self._lock = threading.RLock()
        self._stop_requested_at: float | None = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self.fired: str | None = None  # why the watchdog ended the process (for tests)

    # -- what the worker calls ------------------------------------------------------------------

    @contextmanager
    def guard(self, name: str, timeout_s: float, grace_s: float | None = None) -> Iterator[None]:
        """Run the body with a deadline of `timeout_s` (the call's own timeout) plus the grace;
        `grace_s` replaces the grace for a call known to overrun (send_offsets_to_transaction)."""
        ident = threading.get_ident()
        now = self._clock()
        grace = self.grace_s if grace_s is None else grace_s
        with self._lock:
            self._calls.setdefault(ident, []).append(_Call(name, now, now + timeout_s + grace))
        try:
            yield
        finally:
            with self._lock:
                stack = self._calls.get(ident, [])
                if stack:
                    stack.pop()
                if stack:
                    # Calls nest when librdkafka runs a callback (e.g. restore on assignment)
                    # inside consume(): the outer call's clock starts again when the inner ends.
                    outer, now = stack[-1], self._clock()
                    stack[-1] = _Call(outer.name, now, now + (outer.deadline - outer.started))
                else:
                    self._calls.pop(ident, None)

    def stop_requested(self) -> None:
        """Start the stop deadline (the signal wakeup fd does this for SIGTERM and SIGINT)."""
        with self._lock:
            if self._stop_requested_at is None:
                self._stop_requested_at = self._clock()

    # -- the thread -----------------------------------------------------------------------------

    def start(self, watch_signals: bool = True) -> None:
        """Start the thread; with `watch_signals`, also see SIGTERM/SIGINT (main thread only)."""
        if watch_signals:
            reader, writer = socket.socketpair()
            reader.setblocking(False)
            writer.setblocking(False)
            signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
            self._wakeup = (reader, writer)
        self._thread = threading.Thread(target=self._watch, name="choreo-watchdog", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._wakeup is not None:
            if threading.current_thread() is threading.main_thread():
                signal.set_wakeup_fd(-1)
            for sock in self._wakeup:
                sock.close()
            self._wakeup = None

    def _watch(self) -> None:
        self._last_tick = self._clock()
        while not self._closed.is_set():
            self._wait_for_signal_or_tick()
            self.ticked()
            verdict = self.check()
            if verdict is not None:
                self.fired = verdict
                _last_words(f"{verdict}; exiting with code {EXIT_WEDGED} so that the worker is restarted")
                self._exit(EXIT_WEDGED)
                return

    def _wait_for_signal_or_tick(self) -> None:
        if self._wakeup is None:
            self._closed.wait(self.tick_s)
            return
        reader = self._wakeup[0]
        ready, _, _ = select.select([reader], [], [], self.tick_s)
        if not ready:
            return
        try:
            data = reader.recv(64)
        except BlockingIOError:
            return
        if any(b in {int(s) for s in _STOP_SIGNALS} for b in data):
            self.stop_requested()

    def ticked(self) -> float:
        """Note a tick of the thread; if it came `frozen_after_s` late, the process was not
        running meanwhile: move every deadline on by that time. Returns the time forgiven."""
        now = self._clock()
        last, self._last_tick = self._last_tick, now
        if last is None:
            return 0.0
        frozen = now - last - self.tick_s
        if frozen < self.frozen_after_s:
            return 0.0
        with self._lock:
            for stack in self._calls.values():
                stack[:] = [_Call(c.name, c.started + frozen, c.deadline + frozen) for c in stack]
            if self._stop_requested_at is not None:
                self._stop_requested_at += frozen
        return frozen

    def check(self) -> str | None:
        """Why the process must end now, or None (one pass of the thread; tests call it directly)."""
        now = self._clock()
        with self._lock:
            calls = [stack[-1] for stack in self._calls.values() if stack]
            stop_at = self._stop_requested_at
        for call in calls:
            if now > call.deadline:
                return f"{call.name} has not returned after {now - call.started:.0f} s (deadline passed)"
        if stop_at is not None and now - stop_at > self.stop_grace_s:
            busy = f" (inside {calls[0].name} for {now - calls[0].started:.0f} s)" if calls else ""
            return f"asked to stop {now - stop_at:.0f} s ago and still running{busy}"
        return None


def _last_words(message: str) -> None:
    """One ERROR line on stderr that never blocks: if nobody reads the worker's output (a full
    pipe), waiting for the logging lock or the write would keep the watchdog from exiting."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    line = f"{stamp} ERROR choreo.runtime.watchdog: {message}\n".encode(errors="replace")
    try:
        os.set_blocking(2, False)
        os.write(2, line)
    except OSError:
        pass  # the line is lost; the exit code still says why


class NoWatchdog(Watchdog):
    """The same interface with no thread and no deadlines: in-process use such as tests and tools."""

    def start(self, watch_signals: bool = True) -> None:
        return None

    def check(self) -> str | None:
        return None
