"""The saga under a fault: supervised workers, orders before and after the fault, and the verdict.

Every scenario of the fault suite runs the same way: the four services run under `choreo run`
(restarted when they die, as in production), a first wave of orders ends, the fault is injected,
a second wave is placed at once, and the scenario waits until every order has ended. Then it
counts, from the log alone: orders that ended more than once or never, events written twice,
audit violations, and `rebuild --verify` of every service. The seconds from the fault to the
first end of a second-wave order are how long progress stopped.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import TopicPartition

from choreo.domain import installation
from choreo.exceptions import ChoreoError
from choreo.kafka import clients
from choreo.settings import Settings
from consumers.audit import audit
from consumers.domain import SAGA_ENDS
from harness.processes import ChildProcess, start_run
from producers.commands import edge_time
from producers.load_plan import plan_orders
from producers.report import saga_events
from producers.saga_watch import SagaWatcher
from tests.support.saga_run import SagaRun
from tests.support.timeline import Step, format_timeline, log_steps

# What a worker logs for a hanging transaction on its own topic (choreo/runtime/stable_watch.py).
_HANGING_LINE = re.compile(r"ERROR .*?(\S+\[\d+\])@(\d+): a transaction open for \d+ s")


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    orders: int
    duplicates: int
    lost: int
    violations: int
    recovery_s: float
    watchdog_exits: int = 0  # workers the watchdog ended (exit code 3) during the scenario
    timeline: tuple[str, ...] = ()  # the recovery steps, seconds from the fault (timeline.py)


RESULTS: list[ScenarioResult] = []  # printed as a table at the end of the run (conftest)


class FaultySaga(SagaRun):
    """A test's own saga (topics, schemas, seed) run by a supervisor, ready for a fault.

    Every setting is the shipped default (timeouts, watchdog grace, batch size, partitions): the
    seconds the suite prints are the seconds a user's sagas wait.
    """

    quick_timeouts: dict[str, int] = {}

    def __init__(
        self, bootstrap: str, registry_url: str, prefix: str, tmp: Path, replication_factor: int = 1
    ) -> None:
        super().__init__(
            bootstrap, registry_url, prefix, tmp, replication_factor=replication_factor,
            partitions=Settings.partitions,
        )
        self.run_log = tmp / "run.log"
        self.supervisor: ChildProcess | None = None
        self.watcher: SagaWatcher | None = None
        self._waves = 0
        self.marks: list[Step] = []  # the scenario's own steps: the fault, the first end after it

    def start_supervised(self, **env: str) -> None:
        self.seed(datetime.now(UTC))
        self.supervisor = start_run(self.settings, self.run_log, self.domains, **env)
        self.wait_seeded(180)
        self.watcher = SagaWatcher(self.settings, self.codec)

    def mark(self, what: str) -> None:
        """Note a step of the scenario for its timeline (the first mark is the fault)."""
        self.marks.append(Step(datetime.now(), "scenario", what))

    def timeline(self) -> tuple[str, ...]:
        if not self.marks:
            return ()
        fault, end = self.marks[0].at, self.marks[-1].at
        steps = log_steps(self.run_log, fault - timedelta(seconds=1), end + timedelta(seconds=1))
        return tuple(format_timeline(fault, [*self.marks, *steps]))

    def wave(self, n: int, deadline_s: float | None = None) -> list[str]:
        """Place `n` orders, most of which complete (stock and drones are plentiful); with
        `deadline_s`, each must end within that many seconds (else the orders service's default)."""
        self._waves += 1
        now = datetime.now(UTC)
        plan = plan_orders(n, 0.05, 0.05, seed=self._waves, at=now)
        deadline = None if deadline_s is None else edge_time(now + timedelta(seconds=deadline_s))
        commands = [replace(p.command, deadline=deadline) for p in plan]
        self.send(commands)
        return [c.order_id for c in commands]

    def load(self, n: int, rate: float) -> tuple[threading.Thread, list[tuple[float, str]]]:
        """Place `n` orders at `rate` per second in a thread, paced open-loop like `choreo load`
        (order i leaves at start + i/rate however slow the broker is); the list fills with
        (monotonic time placed, order id)."""
        self._waves += 1
        plan = plan_orders(n, 0.05, 0.05, seed=self._waves, at=datetime.now(UTC))
        placed: list[tuple[float, str]] = []

        def place() -> None:
            started = time.monotonic()
            for i, planned in enumerate(plan):
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing the load, not waiting for an outcome
                self.sender.send(planned.command)
                placed.append((time.monotonic(), planned.command.order_id))
            self.sender.flush()

        thread = threading.Thread(target=place, name="load", daemon=True)
        thread.start()
        return thread, placed

    def wait_settled(self, timeout_s: float) -> None:
        """Wait until the log passes the audit: every saga ended and everything taken given back
        (a drone assigned after its saga's deadline comes back only later)."""
        deadline = time.monotonic() + timeout_s
        while not audit(saga_events(self.settings)).ok:
            if time.monotonic() > deadline:
                self.mark("gave up waiting for the audit to pass")
                return  # the verdict counts what is wrong
            time.sleep(1)  # polling the log with a deadline; each poll reads every topic

    def wait_ended(self, order_ids: list[str], timeout_s: float) -> None:
        assert self.watcher is not None
        try:
            self.watcher.wait_ended(set(order_ids), timeout_s)
        except ChoreoError as e:
            self.mark("gave up waiting")
            raise AssertionError("\n".join(
                [str(e), *self.timeline(), *self.undecided(), self.ended_in_log(order_ids)]
            )) from e

    def first_end_after(self, order_ids: list[str], since: float, timeout_s: float) -> float:
        """Seconds from `since` until the first of `order_ids` ends."""
        assert self.watcher is not None
        ids, deadline = set(order_ids), time.monotonic() + timeout_s
        while not ids & self.watcher.ended.keys():
            if time.monotonic() > deadline:
                self.mark("gave up waiting")
                raise AssertionError(
                    f"no order ended within {timeout_s:.0f} s of the fault:\n{self.tail()}\n"
                    + "\n".join([*self.timeline(), *self.undecided(), self.ended_in_log(order_ids)])
                )
            self.watcher.poll(0.2)
        self.mark("first order placed after the fault ended")
        return time.monotonic() - since

    def ended_in_log(self, order_ids: list[str]) -> str:
        """How many of `order_ids` a fresh read of the log finds ended: tells a saga that did
        not end from a watcher that did not see it end."""
        events = saga_events(self.settings)
        ended = {e.order_id for e in events if type(e) in SAGA_ENDS}  # type: ignore[attr-defined]
        return f"a fresh read of the log finds {len(ended & set(order_ids))} of {len(order_ids)} ended"

    def stuck_partitions(self) -> dict[str, int]:
        """`topic[p]` -> stable offset, for the test's partitions whose stable offset is short
        of their end (transactions not decided)."""
        committed = clients.reader_consumer(self.settings)
        written = clients.reader_consumer(self.settings, committed_only=False)
        stuck = {}
        try:
            topics = committed.list_topics(timeout=10).topics
            for topic in sorted(t for t in topics if t.startswith(self.settings.topic_prefix)):
                for p in sorted(topics[topic].partitions):
                    tp = TopicPartition(topic, p)
                    stable = committed.get_watermark_offsets(tp, timeout=10)[1]
                    if stable < written.get_watermark_offsets(tp, timeout=10)[1]:
                        stuck[f"{topic}[{p}]"] = stable
        finally:
            committed.close()
            written.close()
        return stuck

    def undecided(self) -> list[str]:
        """The partitions whose stable offset lags, and what the brokers say of the producers
        and transactions behind them: why a saga may wait."""
        stuck = self.stuck_partitions()
        found = [f"{where}: stable offset {stable}, short of its end" for where, stable in stuck.items()]
        if stuck:
            topic, _, rest = next(iter(stuck)).partition("[")
            said = [self.choreo("kafka", "transactions", "describe-producers", "--topic", topic,
                                "--partition", rest.rstrip("]"), timeout=120)]
            listed = self.choreo("kafka", "transactions", "list", timeout=120)
            said.append(listed)
            for tid in sorted({w for line in listed.stdout.splitlines() for w in line.split()
                               if w.startswith(self.settings.topic_prefix)}):
                said.append(self.choreo("kafka", "transactions", "describe",
                                        "--transactional-id", tid, timeout=120))
            found += [r.stdout + r.stderr for r in said]
        return found

    def hanging_reported(self) -> dict[str, int]:
        """`topic[p]` -> offset, for each hanging transaction a worker reported (stable_watch)."""
        text = self.run_log.read_text(errors="replace")
        return {m.group(1): int(m.group(2)) for m in _HANGING_LINE.finditer(text)}

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.run_log.read_text(errors="replace").splitlines()[-lines:])

    def stop_supervised(self) -> None:
        if self.supervisor is None:
            return
        code = self.supervisor.stop(120)
        self.supervisor = None
        assert code == 0, f"the supervisor stopped with {code}:\n{self.tail()}"

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
        if self.supervisor is not None:
            self.supervisor.close()
        super().close()

    def run_scenario(
        self, name: str, inject: Callable[[], None], before: int = 100, after: int = 200,
        bound_s: float = 120.0, after_fault: Callable[[], None] | None = None,
        from_repair: bool = False, deadline_s: float | None = None,
    ) -> ScenarioResult:
        """Orders, the fault, more orders, every end, then the verdict (recorded in RESULTS).

        The seconds count from the fault, or with `from_repair` from when `inject` returns (it
        killed something and brought it back: the wait before that is the fault's own). With
        `deadline_s` the orders placed after the fault have that deadline."""
        first = self.wave(before)
        self.wait_ended(first, 240)
        started = time.monotonic()
        self.mark(f"fault: {name}")
        inject()
        if from_repair:
            started = time.monotonic()
            self.mark("repaired: the seconds count from here")
        second = self.wave(after, deadline_s)
        recovery = self.first_end_after(second, started, bound_s)
        if after_fault is not None:
            after_fault()
        self.wait_ended(second, 300)
        self.stop_supervised()
        result = self.verdict(name, first + second, recovery)
        RESULTS.append(result)
        return result

    def verdict(
        self, name: str, order_ids: list[str], recovery_s: float, stalled: bool = False
    ) -> ScenarioResult:
        """What the log says of the scenario's orders. `stalled`: sagas wait behind a reported
        hanging transaction, so one without an end is counted (as lost), not a violation, and
        the rebuilds are not compared (a store stops where its partition does)."""
        events = saga_events(self.settings)
        ends = Counter(
            e.order_id for e in events if type(e) in SAGA_ENDS  # type: ignore[attr-defined]
        )
        ids = Counter(e.event_id for e in events)  # type: ignore[attr-defined]
        report = audit(events, in_flight_ok=stalled)
        violations = sum(len(i.violations) for i in report.invariants)
        for service in () if stalled else installation().service_names:
            verify = self.rebuild_verify(service)
            assert verify.returncode == 0, verify.stdout + verify.stderr
            violations += verify.stdout.count("MISMATCH")
        return ScenarioResult(
            name=name,
            orders=len(order_ids),
            duplicates=sum(n - 1 for n in ends.values() if n > 1)
            + sum(n - 1 for n in ids.values() if n > 1),
            lost=sum(1 for o in order_ids if ends[o] == 0),
            violations=violations,
            recovery_s=round(recovery_s, 1),
            watchdog_exits=self.run_log.read_text(errors="replace").count("exited with 3 "),
            timeline=self.timeline(),
        )


def assert_clean(result: ScenarioResult) -> None:
    assert (result.duplicates, result.lost, result.violations) == (0, 0, 0), result


def format_table(results: list[ScenarioResult]) -> str:
    head = (f"{'scenario':<48} {'orders':>6} {'dupl.':>5} {'lost':>5} {'viol.':>5} "
            f"{'watchdog':>8} {'resumed (s)':>11}")
    rows = [
        f"{r.name:<48} {r.orders:>6} {r.duplicates:>5} {r.lost:>5} {r.violations:>5} "
        f"{r.watchdog_exits:>8} {r.recovery_s:>11.1f}"
        for r in results
    ]
    return "\n".join([head, "-" * len(head), *rows])


def format_timelines(results: list[ScenarioResult]) -> str:
    """Each scenario's recovery steps, the slowest first."""
    blocks = [
        "\n".join([f"{r.name} (resumed after {r.recovery_s:.1f} s)", *r.timeline])
        for r in sorted(results, key=lambda r: -r.recovery_s)
    ]
    return "\n\n".join(blocks)
