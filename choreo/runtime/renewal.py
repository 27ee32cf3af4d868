"""Fresh transactional producers in place of ones that failed or wedged, without a restart.

librdkafka can leave `send_offsets_to_transaction` waiting for ever once the group coordinator
has gone or moved (issues #5456 and #5511): the producer keeps a coordinator that no longer
exists and nothing wakes the wait. A producer made afresh has no such memory. So the commit
protocol runs that call here, in a thread of its own, and waits for it a bounded time; a call
that fails, or is still running at its deadline, ends the batch, and the batch is redone on new
producers with the same transactional ids.

Exactly-once is the same as after a restart: `init_transactions` of the new producers fences the
old ones (their epoch is now stale, so nothing they still hold can be written or committed) and
has the coordinator abort the transaction the old one left open. The stores are rolled back and
the inputs rewound by the abort path as for any failed batch. What a restart would add (a new
process, a new consumer and a rejoin of the group, about 3 s) is skipped.

A wedged call cannot be cancelled: its thread, and the old producer it holds, are left behind.
`max_wedged` bounds them; beyond it the call runs under the watchdog in the worker's own thread
again, and a call that still never returns ends the process (choreo/runtime/watchdog.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from confluent_kafka import KafkaError, KafkaException, Producer

from choreo.exceptions import FencedError
from choreo.kafka.turns import TakingTurns
from choreo.runtime.calls import guarded_call, note_if_slow
from choreo.runtime.faults import FaultInjector
from choreo.runtime.triage import is_fatal
from choreo.runtime.watchdog import Watchdog

log = logging.getLogger(__name__)

# What a call gets on top of its own timeout before it counts as wedged: librdkafka returns on
# time or not at all, so a small margin is enough.
WEDGE_MARGIN_S = 0.5
# Wedged calls (each a thread and an old producer) that may be left behind at once.
MAX_WEDGED = 2
# The longest a call's timeout grows to after failures in a row (it doubles each time).
MAX_TIMEOUT_S = 12.0
_MAX_STRIKES = 16


class RenewProducers(Exception):  # noqa: N818 - an instruction, as the abort path reads it
    """A batch failure after which the producers are replaced rather than asked to abort."""

    def __init__(self, why: str, error: KafkaError | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.error = error


class ProducerRenewal:
    """Runs the calls known to wedge with a bounded wait, and renews the producers on demand."""

    def __init__(
        self,
        producers: TakingTurns,
        make: Callable[[], Sequence[Producer]],
        watchdog: Watchdog,
        faults: FaultInjector,
        init_timeout_s: float,
        max_wedged: int = MAX_WEDGED,
    ) -> None:
        self.producers = producers
        self.make = make  # new producers, one per turn, with the same transactional ids
        self.watchdog = watchdog
        self.faults = faults
        self.init_timeout_s = init_timeout_s
        self.max_wedged = max_wedged
        self.pending = ""  # why the next batch must start on new producers ("" if it need not)
        self.renewals = 0
        self.strikes = 0  # calls in a row that failed or wedged: each doubles the next timeout
        self._wedged: list[threading.Thread] = []

    def request(self, why: str) -> None:
        """Renew before the next batch."""
        self.pending = self.pending or why

    # After an outage the producers lived through, their first send_offsets is the call that
    # wedges (they may keep a coordinator that is gone): the next batch starts on new ones.

    def on_session_lost(self) -> None:
        """The consumer's rebalance callback for lost partitions calls this."""
        self.request("the group session was lost")

    def on_client_error(self, err: KafkaError) -> None:
        """Given the consumer's errors (clients.logged_errors logs them first)."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.request("every broker was unreachable")

    def renew_if_requested(self) -> None:
        if self.pending:
            self.renew(self.pending)

    def call(
        self, name: str, timeout_s: float, fn: Callable[[float], Any], grace_s: float
    ) -> Any:
        """`fn(timeout)` bounded by that timeout plus a small margin; the timeout is `timeout_s`,
        doubled for each call before it that failed. Raises RenewProducers when it fails (a fatal
        error is raised as it is: this instance is fenced) or has not returned."""
        timeout_s = min(timeout_s * 2 ** self.strikes, max(timeout_s, MAX_TIMEOUT_S))
        # Counted until it has returned well; bounded, since the timeout stops growing anyway.
        self.strikes = min(self.strikes + 1, _MAX_STRIKES)
        self._wedged = [t for t in self._wedged if t.is_alive()]
        if len(self._wedged) >= self.max_wedged:
            # Enough left behind: wait here, under the watchdog, as for any other call.
            try:
                value = guarded_call(self.watchdog, self.faults, name, timeout_s, fn, timeout_s,
                                     attempts=1, grace_s=grace_s)
            except KafkaException as e:
                _raise_for_renewal(name, e)
            self.strikes = 0
            return value
        outcome: list[tuple[bool, Any]] = []
        done = threading.Event()
        started = time.monotonic()

        def run() -> None:
            try:
                self.faults.wedge(name)
                outcome.append((True, fn(timeout_s)))
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                outcome.append((False, e))
            finally:
                done.set()

        thread = threading.Thread(target=run, name=f"choreo-{name}", daemon=True)
        thread.start()
        if not done.wait(timeout_s + WEDGE_MARGIN_S):
            self._wedged.append(thread)
            raise RenewProducers(f"{name} has not returned after {timeout_s + WEDGE_MARGIN_S:.1f} s")
        note_if_slow(name, started)
        ok, value = outcome[0]
        if ok:
            self.strikes = 0
            return value
        if isinstance(value, KafkaException):
            _raise_for_renewal(name, value)
        raise value

    def renew(self, why: str) -> None:
        """New producers, initialised side by side (fencing the old ones and aborting what they
        left open), in place of the current ones; the old ones are released off this thread."""
        log.warning("renewing the transactional producers: %s", why)
        old = self.producers.replace(self.make())
        threading.Thread(target=_release, args=(old,), name="choreo-release", daemon=True).start()
        try:
            guarded_call(
                self.watchdog, self.faults, "init_transactions",
                self.init_timeout_s * len(self.producers.producers),
                self.producers.init_transactions, self.init_timeout_s,
            )
        except KafkaException as e:
            # Raised out of the batch: the worker exits and its successor initialises again.
            err: KafkaError = e.args[0]
            if is_fatal(err):
                raise FencedError(
                    f"new producers could not be initialised ({err.name()}: {err.str()}); "
                    "another instance with the same id took over"
                ) from e
            raise
        self.pending = ""
        self.renewals += 1
        log.info("transactional producers renewed (%d so far)", self.renewals)


def _raise_for_renewal(name: str, e: KafkaException) -> NoReturn:
    """A failed call as the commit protocol reads it: fatal as it is (this instance is fenced),
    anything else as RenewProducers."""
    err: KafkaError = e.args[0]
    if is_fatal(err):
        raise e
    raise RenewProducers(f"{name} failed: {err.name()}: {err.str()}", err) from e


def _release(producers: list[Producer]) -> None:
    """Drop the last references here, so that destroying a client never blocks the worker. A
    producer still inside a wedged call stays alive through that call's own thread."""
    producers.clear()
