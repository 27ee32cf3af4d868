"""Reading the log for `choreo audit`: every record taken in, or the audit does not run.

The rule (docs/saga.md, "`choreo audit`"): the invariants are checked on the services' own topics, which
hold only what the services wrote. A record there that cannot be decoded, or is a type its
service does not emit, was never part of any service's state: when some service dead-lettered
it (a dead letter names its source topic, partition and offset) it is refused and reported;
when none did, the audit has not read the log it would vouch for and stops with exit 2. A
registry that does not answer stops it too, before anything is read. Dead letters (per service
and error class) and misrouted records (a key that murmur2 maps to another partition than the
one the record is on) are counted, as what was refused, never as violations.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from choreo import bootstrap
from choreo.contract import Service
from choreo.domain import installation
from choreo.exceptions import ChoreoError, RegistryUnavailableError
from choreo.kafka.partitioner import misplaced
from choreo.kafka.topic_names import topic_partitions
from choreo.ops.log_reader import LogRecord, read_log
from choreo.runtime.dead_letters import ERROR_CLASS, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from choreo.settings import Settings, redact_url
from consumers.domain import DOMAIN

# One short request, one retry: an audit that cannot decode should say so in seconds.
_PROBE_TIMEOUT_S = 5
PROGRESS_EVERY_S = 3.0
_EXAMPLES = 5

Coordinates = tuple[str, int, int]  # physical topic, partition, offset


class AuditIncompleteError(ChoreoError):
    """Records of the services' own topics that the audit could not take in, and no service refused."""


@dataclass(frozen=True)
class Unread:
    """A record on an own topic that is not one of its service's events."""

    topic: str
    partition: int
    offset: int
    reason: str

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset} ({self.reason})"


@dataclass
class Refusals:
    """What the services refused or the log holds against the rules: reported, not violations."""

    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)  # (service, class)
    junk_on_own_topics: Counter[str] = field(default_factory=Counter)  # logical topic, dead-lettered
    misrouted: Counter[str] = field(default_factory=Counter)  # logical topic
    misrouted_examples: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.dead_letters or self.junk_on_own_topics or self.misrouted)


@dataclass
class AuditLog:
    """The decoded events of the own topics, what could not be read, and what was refused."""

    events: list[Any]
    unread: list[Unread]
    refusals: Refusals
    records_read: int

    def require_complete(self) -> None:
        """Stop the audit unless every record of the own topics was read or accounted for."""
        if self.unread:
            shown = "; ".join(map(str, self.unread[:3]))
            more = f" and {len(self.unread) - 3} more" if len(self.unread) > 3 else ""
            raise AuditIncompleteError(
                f"the audit could not read {len(self.unread)} record(s) of the services' own topics "
                f"that no service dead-lettered ({shown}{more}), so it cannot vouch for the log"
            )


class Progress:
    """Records read per topic, as one line to `say` every few seconds (silent on a short audit)."""

    def __init__(self, say: Callable[[str], None], every_s: float = PROGRESS_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._say, self._every, self._clock = say, every_s, clock
        self._next = clock() + every_s
        self.read: Counter[str] = Counter()

    def tick(self, topic: str) -> None:
        self.read[topic] += 1
        now = self._clock()
        if now >= self._next:
            self._next = now + self._every
            per_topic = ", ".join(f"{t} {n:,}" for t, n in self.read.items())
            self._say(f"audit: read {self.read.total():,} records so far ({per_topic})")


def misrouted(record: LogRecord, partitions: int) -> str | None:
    """Why `record` is not on the partition its key maps to under murmur2, or None if it is."""
    if record.key is None:
        return f"{record.topic}[{record.partition}]@{record.offset} has no key"
    expected = misplaced(record.key, record.partition, partitions)  # the worker's rule
    if expected is None:
        return None
    key = record.key.decode(errors="replace")
    return (f"{record.topic}[{record.partition}]@{record.offset} key {key!r} belongs on "
            f"partition {expected}")


def dead_letter_source(letter: LogRecord) -> Coordinates | None:
    """The record a dead letter stands for, from its headers."""
    try:
        return (letter.headers[SOURCE_TOPIC].decode(), int(letter.headers[SOURCE_PARTITION]),
                int(letter.headers[SOURCE_OFFSET]))
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


def not_its_own(record: LogRecord, service: Service) -> str | None:
    """Why a record on `service`'s own topic is not one of its events, or None if it is."""
    if record.event is None:
        return record.decode_error or "undecodable"
    if type(record.event) not in service.emits:
        return f"a {type(record.event).__name__}, which {service.name} does not emit"
    return None


def account(
    own: Iterable[tuple[Service, str, LogRecord, int]],
    routed: Iterable[tuple[str, LogRecord, int]],
    letters: Iterable[tuple[Service, LogRecord]],
) -> AuditLog:
    """Fold what was read: `own` (service, logical topic, record, partition count) of the own
    topics, `routed` (logical topic, record, partition count) of the other command and event
    topics, and `letters` (service, record) of the dead-letter topics, consumed in that order.
    Pure, so the rule is tested without Kafka."""
    events: list[Any] = []
    suspects: list[tuple[str, Unread]] = []
    refusals = Refusals()

    def check_route(logical: str, record: LogRecord, partitions: int) -> None:
        problem = misrouted(record, partitions)
        if problem is not None:
            refusals.misrouted[logical] += 1
            if len(refusals.misrouted_examples) < _EXAMPLES:
                refusals.misrouted_examples.append(problem)

    read = 0
    for service, logical, record, partitions in own:
        read += 1
        check_route(logical, record, partitions)
        reason = not_its_own(record, service)
        if reason is None:
            events.append(record.event)
        else:
            suspects.append((logical, Unread(record.topic, record.partition, record.offset, reason)))
    for logical, record, partitions in routed:
        check_route(logical, record, partitions)
    sources: set[Coordinates] = set()
    for service, letter in letters:
        cls = letter.headers.get(ERROR_CLASS, b"?").decode(errors="replace") or "?"
        refusals.dead_letters[(service.name, cls)] += 1
        source = dead_letter_source(letter)
        if source is not None:
            sources.add(source)
    unread = []
    for logical, u in suspects:
        if (u.topic, u.partition, u.offset) in sources:
            refusals.junk_on_own_topics[logical] += 1
        else:
            unread.append(u)
    return AuditLog(events, unread, refusals, read)


def check_registry(settings: Settings) -> None:
    """One bounded request to the registry; RegistryUnavailableError in one sentence if it fails."""
    url = settings.schema_registry_url
    client = SchemaRegistryClient({"url": url, "timeout": _PROBE_TIMEOUT_S, "max.retries": 1})
    try:
        client.get_config()
    except Exception as e:  # connection errors come as httpx exceptions, answers as SchemaRegistryError
        raise RegistryUnavailableError(
            f"the schema registry at {redact_url(url)} did not answer "
            f"({redact_url(' '.join(str(e).split()))}): the audit cannot decode the log without it, "
            "so it did not run"
        ) from e


def read_audit_log(settings: Settings, progress: Progress | None = None) -> AuditLog:
    """Read the saga's own topics (decoded), the other command and event topics (keys only),
    then the dead letters, each partition to the end it had when its reading began. The dead
    letters come last so that a record dead-lettered while the rest was read is accounted for."""
    check_registry(settings)
    installed = list(installation().services)
    saga = [s for s in installed if s.name in {d.name for d in DOMAIN.services}]
    own_topics = {s.own_topic for s in saga}
    routed_topics = sorted({t for s in installed for t in (*s.inputs, s.own_topic)} - own_topics)
    counts = topic_partitions(
        settings, [*sorted(own_topics), *routed_topics, *(s.dlq_topic for s in installed)]
    )
    codec = bootstrap.build_codec(settings)
    tick = progress.tick if progress is not None else (lambda _topic: None)

    def own() -> Iterable[tuple[Service, str, LogRecord, int]]:
        # One reading of all of them: their ends are taken at one moment, so no topic holds a
        # saga's later steps without the earlier ones another topic holds (a live log is read).
        by_physical = {settings.topic(s.own_topic): s for s in saga}
        for record in read_log(settings, list(by_physical), codec):
            s = by_physical[record.topic]
            tick(s.own_topic)
            yield s, s.own_topic, record, counts[record.topic]

    def routed() -> Iterable[tuple[str, LogRecord, int]]:
        for logical in routed_topics:
            physical = settings.topic(logical)
            for record in read_log(settings, [physical], None):
                tick(logical)
                yield logical, record, counts[physical]

    def letters() -> Iterable[tuple[Service, LogRecord]]:
        for s in installed:
            for record in read_log(settings, [settings.topic(s.dlq_topic)], None):
                tick(s.dlq_topic)
                yield s, record

    return account(own(), routed(), letters())
