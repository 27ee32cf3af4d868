"""Where a fault scenario's seconds went: the steps of recovery read from the `choreo run` log.

Each worker line carries its time (the log format's asctime, the watchdog's last words, or
librdkafka's epoch seconds); a supervisor line has none and takes its previous line's. The
timeline keeps the steps that explain a wait (session loss, fatal client errors, the watchdog,
exits and restarts, assignment and restore, renewed producers, aborted batches) beside the
scenario's own marks (the fault, the first order that ended after it), each in seconds from the
fault.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# What a log line says, by the text that marks it; first match wins.
_STEPS = (
    ("|FATAL|", "fatal client error"),
    ("|SESSTMOUT|", "session timed out"),
    ("choreo.runtime.watchdog:", "watchdog"),
    ("exited with", "exited"),
    (" started: inputs=", "started"),
    ("choreo.runtime.assignment: lost ", "partitions lost"),
    ("choreo.runtime.assignment: assigned ", "assigned and restored"),
    ("waits for transactions", "restore waits for open transactions"),
    ("stalled; refreshing", "restore stalled"),
    ("not serving partition", "partition held back"),
    ("renewing the transactional producers", "producers renewed"),
    ("aborting the batch", "batch aborted"),
    ("retrying ", "call retried"),
    (" returned after ", "slow call"),
)
_PER_WORKER = 3  # occurrences of a step kept per worker: enough to see a restart loop
_ASCTIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:,(\d{3}))?")
_EPOCH = re.compile(r"\|(\d{10}\.\d{3})\|")


@dataclass(frozen=True)
class Step:
    at: datetime
    who: str
    what: str
    detail: str = ""


def _time_of(line: str) -> datetime | None:
    if m := _EPOCH.search(line):
        return datetime.fromtimestamp(float(m.group(1)))  # local, like asctime
    if m := _ASCTIME.search(line):
        stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
        return stamp.replace(microsecond=int(m.group(2) or 0) * 1000)
    return None


def log_steps(run_log: Path, since: datetime, until: datetime) -> list[Step]:
    """The recovery steps logged between `since` and `until`."""
    steps: list[Step] = []
    seen: Counter[tuple[str, str]] = Counter()
    last: datetime | None = None
    for line in run_log.read_text(errors="replace").splitlines():
        last = _time_of(line) or last
        if last is None or not since <= last <= until:
            continue
        who, _, text = line.partition(" | ")
        what = next((name for mark, name in _STEPS if mark in text), None)
        if what is None:
            continue
        seen[(who.strip(), what)] += 1
        if seen[(who.strip(), what)] <= _PER_WORKER:
            steps.append(Step(last, who.strip(), what, _detail(text)))
    return steps


def _detail(text: str) -> str:
    if "[thrd:" in text:  # librdkafka: %level|time|FAC|client| [thrd:...]: message
        text = text.split("]: ", 1)[-1]
    elif "choreo." in text:
        text = text.split(": ", 1)[-1]
    return text if len(text) <= 110 else text[:107] + "..."


def format_timeline(fault: datetime, steps: list[Step]) -> list[str]:
    return [
        f"{(s.at - fault).total_seconds():+7.1f} s  {s.who:<12} {s.what}"
        + (f": {s.detail}" if s.detail else "")
        for s in sorted(steps, key=lambda s: s.at)
    ]
