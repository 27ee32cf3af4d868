"""The boundary fuzz test's plan: valid orders, and hostile records of every kind for every command
and event topic, drawn once with Hypothesis from a fixed seed."""

from __future__ import annotations

import dataclasses
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from choreo import bootstrap
from choreo.domain import installation
from choreo.edge import command_topics
from choreo.kafka.partitioner import partition_for
from choreo.timers import TimerFired
from consumers.delivery.events import DeliveryCancelled, DeliveryCompleted, DeliveryFailed
from consumers.drones.events import DroneRegistrationRejected, DroneUnavailable, RegisterDrone
from consumers.limits import ID_MAX
from consumers.orders.events import (
    PRIORITIES,
    CancelOrder,
    OrderCancellationRejected,
    OrderCancellationRequested,
    PlaceOrder,
)
from consumers.packaging.events import AddStock, PackagingFailed, StockAddRejected
from consumers.reference import hubs
from producers import commands, seed
from producers.saga_watch import EVENT_TOPICS
from tests.support.fuzz_shots import (
    NULL_KEY,
    OTHER_KEY,
    WRONG_PARTITION,
    RawShot,
    RecordShot,
    Shot,
    home_topic,
    readers,
)
from tests.support.records import T0, record

TOPICS = (*sorted(set(command_topics().values())), *EVENT_TOPICS)
NORTH = "hub-north"

# The budget: about 40 valid orders and 150 hostile records keep the test within ~3 minutes.
FIRST_VALID, SECOND_VALID, LAST_PER_PARTITION = 16, 6, 2
RAW_PER_KIND = 2 * len(TOPICS)  # each raw kind twice on every topic
HOSTILE_COMMANDS = {PlaceOrder: 16, CancelOrder: 6, AddStock: 8, RegisterDrone: 8}
HOSTILE_EVENTS = 14
MISROUTED_COPIES, OTHER_KEY_COPIES, NULL_KEY_COPIES = 10, 6, 5

# Events a stranger may forge on a service's topic in this test. Anything else there (an
# OrderPlaced, a StockAdded, a DroneAssigned...) is a forgery no check could tell from the
# service's own record: the audit counts it and the owner restores it. These only answer or fail
# a saga, so with ids that name no saga they must change nothing.
FORGEABLE = (
    OrderCancellationRequested, OrderCancellationRejected, PackagingFailed, StockAddRejected,
    DroneUnavailable, DroneRegistrationRejected, DeliveryCompleted, DeliveryFailed, DeliveryCancelled,
)
# The twins of orders whose ids contain the separator: each probe is one of these, with the hub
# "hub-north/<tag>" and order "<rest>" where the real order is hub-north "<tag>/<rest>".
SEPARATOR_TWINS = (
    PlaceOrder, PlaceOrder, CancelOrder, CancelOrder, OrderCancellationRequested, PackagingFailed,
    DroneUnavailable, DeliveryFailed, DeliveryCompleted, DeliveryCancelled,
)

_FRAGMENTS = ("/", "%", "%2F", "\x00", "\n", "\r\n", "\t", " ", "é", "日本", "🚁", "\u202e", "..", "\\",
              "'", "hub-north", "SKU-0001", "ok")
hostile_text = st.one_of(
    st.sampled_from(["", " ", "   ", "\t\n", "\x00"]),  # empty and blank
    st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=6).map("".join),  # separators, escapes
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=24),  # any Unicode
    st.integers(ID_MAX + 1, 3000).map(lambda n: "x" * n),  # over the size caps
).filter(lambda s: not s.startswith("ok-"))  # never a valid order's id
hostile_int = st.one_of(
    st.sampled_from([0, -1, 101, 2**31 - 1, -(2**31)]), st.integers(-(2**31), 2**31 - 1)
)
real_hub = st.sampled_from(sorted(hubs()))
stranger_hub = hostile_text.filter(lambda h: h not in hubs())  # can touch no accepted saga
some_sku = st.one_of(st.sampled_from(sorted({s for h in hubs().values() for s in h.skus})),
                     st.just("SKU-9999"), hostile_text)
some_address = st.one_of(st.sampled_from(seed.deliverable_addresses(NORTH)), hostile_text)
# The valid orders' time: this run's, since a saga's deadline counts from it (ADR 0007) and an
# order stamped weeks ago would be past its deadline as soon as it is placed.
PLACED_AT = datetime.now(UTC).replace(microsecond=0)
# A time (a deadline, a wait's end): already past, at the order's time, soon, or out of range.
some_time = st.sampled_from([T0 - timedelta(days=1), T0, T0 + timedelta(minutes=10), T0 + timedelta(days=8)])
# An enum field takes its symbols: its Avro type allows no other (a raw producer's out-of-range
# index is one of the raw shots' undecodable bytes).
_BY_NAME = {"occurred_at": st.just(T0), "causation_id": st.none() | hostile_text, "sku": some_sku,
            "address": some_address, "event_id": st.uuids().map(str) | hostile_text,
            "priority": st.sampled_from(PRIORITIES)}
_BY_TYPE = {"str": hostile_text, "int": hostile_int, "str | None": st.none() | hostile_text,
            "datetime": some_time, "datetime | None": st.none() | some_time}


def hostile_record(cls: type, hub: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """Instances of `cls` whose every field is drawn hostile (but of its Avro type)."""
    fields = {f.name: _BY_NAME[f.name] if f.name in _BY_NAME else _BY_TYPE[str(f.type)]
              for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return st.fixed_dictionaries({**fields, "hub": hub}).map(lambda kw: cls(**kw))


def valid_order(order_id: str) -> st.SearchStrategy[PlaceOrder]:
    def build(hub: str, pick: int, quantity: int) -> PlaceOrder:
        skus, addresses = seed.stocked_skus(hub), seed.deliverable_addresses(hub)
        return commands.place_order(hub, skus[pick % len(skus)], quantity,
                                    addresses[pick % len(addresses)], PLACED_AT, order_id=order_id,
                                    event_id=f"place-{order_id}")
    return st.builds(build, real_hub, st.integers(0, 99), st.integers(1, 5))


@dataclass(frozen=True)
class Plan:
    """What the test sends, in this order: `before`, `first`, `hostile`, `second`; then, once
    those ended, `last`."""

    before: list[Shot]  # hostile records that must precede their twin in `first`
    first: list[PlaceOrder]  # valid orders (the separator probes' real orders among them)
    hostile: list[Shot]
    second: list[PlaceOrder]
    last: list[PlaceOrder]  # LAST_PER_PARTITION on every partition, after everything else
    separated: list[PlaceOrder]  # the orders whose ids contain the separator

    @property
    def valid(self) -> list[PlaceOrder]:
        return [*self.first, *self.second, *self.last]

    def kinds(self) -> Counter[str]:
        return Counter(s.kind for s in (*self.before, *self.hostile))


def draw_plan(partitions: int) -> Plan:
    """The whole plan, from Hypothesis with a fixed seed (derandomize), the same on every run."""
    drawn: list[Plan] = []

    @settings(max_examples=2, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(_plan(partitions))
    def keep(plan: Plan) -> None:
        drawn.append(plan)

    keep()
    return drawn[-1]  # the first example Hypothesis tries is its simplest (every draw minimal)


@st.composite
def _plan(draw: st.DrawFn, partitions: int) -> Plan:
    first = [draw(valid_order(f"ok-a{i:02d}")) for i in range(FIRST_VALID)]
    second = [draw(valid_order(f"ok-b{i:02d}")) for i in range(SECOND_VALID)]
    before, separated, after = separator_probes(partitions)
    hostile = [*after, *_raw(draw), *_hostile_values(draw), *_misrouted(draw, first)]
    # Interleaved, so every kind meets the sagas of the first batch in flight.
    hostile = draw(st.permutations(hostile))
    return Plan(before, [*first, *separated], hostile, second, last_orders(partitions), separated)


def _raw(draw: st.DrawFn) -> list[Shot]:
    key = st.one_of(real_hub.map(str.encode), st.binary(max_size=40))
    partition = st.integers(0, 63)
    junk = st.builds(lambda first, rest: bytes([first]) + rest, st.integers(1, 255), st.binary(max_size=200))
    unknown_id = st.builds(lambda i, body: struct.pack(">bI", 0, i) + body,
                           st.integers(2**31 - 10_000, 2**31 - 1), st.binary(max_size=60))
    shots: list[Shot] = []
    for i in range(RAW_PER_KIND):
        topic = TOPICS[i % len(TOPICS)]
        shots += [
            RawShot("random bytes", topic, draw(partition), draw(key), draw(junk)),
            RawShot("unknown schema id", topic, draw(partition), draw(key), draw(unknown_id)),
            _truncated(draw, topic),
        ]
        if i < len(TOPICS):
            shots += [RawShot("empty value", topic, draw(partition), draw(key),
                              draw(st.sampled_from([b"", None]))),
                      RawShot("null key + junk", topic, draw(partition), None, draw(junk))]
    return shots


def _domain_classes() -> list[type]:
    """The saga's own event classes: not choreo's TimerFired, which readers of a timer service's
    topic skip by design (tests/unit/test_timers.py covers it, and its dead letter elsewhere)."""
    return [c for c in bootstrap.event_classes(list(installation().services)) if c is not TimerFired]


def _truncated(draw: st.DrawFn, topic: str) -> Shot:
    travelling = [c for c in _domain_classes() if home_topic(c) == topic]
    cls = draw(st.sampled_from(sorted(travelling, key=lambda c: c.__name__)))
    return RecordShot("truncated Avro", draw(hostile_record(cls, real_hub)),
                      cut=draw(st.integers(0, 10**6)))


def _hostile_values(draw: st.DrawFn) -> list[Shot]:
    shots: list[Shot] = []
    for cls, n in HOSTILE_COMMANDS.items():
        hub = st.one_of(real_hub, hostile_text, real_hub.map(lambda h: h + "/x"))
        shots += [RecordShot("hostile command", draw(hostile_record(cls, hub))) for _ in range(n)]
    for _ in range(HOSTILE_EVENTS):
        cls = draw(st.sampled_from(FORGEABLE))
        shots.append(RecordShot("hostile event", draw(hostile_record(cls, stranger_hub))))
    return shots


def _misrouted(draw: st.DrawFn, valid: list[PlaceOrder]) -> list[Shot]:
    """Copies of valid orders routed against the contract, and records a topic does not carry."""
    copies = draw(st.lists(st.sampled_from(valid), min_size=MISROUTED_COPIES, max_size=MISROUTED_COPIES))
    shots: list[Shot] = [RecordShot("wrong partition", o, WRONG_PARTITION, draw(st.integers(0, 99)))
                         for o in copies]
    for o in draw(st.lists(st.sampled_from(valid), min_size=OTHER_KEY_COPIES, max_size=OTHER_KEY_COPIES)):
        other = draw(st.sampled_from([h for h in sorted(hubs()) if h != o.hub]))
        shots.append(RecordShot("key != hub", o, OTHER_KEY, other_key=other.encode()))
    for o in draw(st.lists(st.sampled_from(valid), min_size=NULL_KEY_COPIES, max_size=NULL_KEY_COPIES)):
        shots.append(RecordShot("null key", o, NULL_KEY, draw(st.integers(0, 99))))
    every_class = sorted(_domain_classes(), key=lambda c: c.__name__)
    for topic in TOPICS:
        ours = [c for c in (*HOSTILE_COMMANDS, *FORGEABLE) if home_topic(c) == topic]
        stray = draw(hostile_record(draw(st.sampled_from(ours)), stranger_hub))
        shots.append(RecordShot("wrong partition", stray, WRONG_PARTITION, draw(st.integers(0, 99))))
        # A type no reader of the topic takes from it, e.g. a PlaceOrder on the delivery topic.
        foreign = [c for c in every_class if not any(s.accepts(topic, c) for s in readers(topic))]
        alien = draw(hostile_record(draw(st.sampled_from(foreign)), stranger_hub))
        shots.append(RecordShot("foreign type", alien, on_topic=topic))
    return shots


def separator_probes(partitions: int) -> tuple[list[Shot], list[PlaceOrder], list[Shot]]:
    """(twins sent before their real order, the real orders, twins sent after them).

    Every twin's hub is chosen to sit on hub-north's partition, so that it meets the real order
    in the same store: the only place where their state keys could collide.
    """
    same = partition_for(NORTH.encode(), partitions)
    tags = (t for t in (f"s{j}" for j in count())
            if partition_for(f"{NORTH}/{t}".encode(), partitions) == same)
    before: list[Shot] = []
    after: list[Shot] = []
    real = []
    for k, twin in enumerate(SEPARATOR_TWINS):
        tag, rest = next(tags), f"y{k}"
        real.append(commands.place_order(NORTH, seed.stocked_skus(NORTH)[0], 1,
                                         seed.deliverable_addresses(NORTH)[0], PLACED_AT,
                                         order_id=f"{tag}/{rest}", event_id=f"place-{tag}-{rest}"))
        shot = RecordShot("separator id", _twin(twin, f"{NORTH}/{tag}", rest))
        # A PlaceOrder twin goes first: it must not make the real order look like a duplicate.
        (before if twin is PlaceOrder else after).append(shot)
    return before, real, after


def _twin(cls: type, hub: str, order_id: str) -> Any:
    filler: dict[str, Callable[[], Any]] = {"str": lambda: "separator probe", "int": lambda: 1,
                                            "str | None": lambda: None, "datetime | None": lambda: None}
    fields = {f.name: filler[str(f.type)]() for f in dataclasses.fields(cls)  # type: ignore[arg-type]
              if f.name not in ("event_id", "order_id", "hub", "occurred_at", "causation_id",
                                "priority")}  # priority: an enum, its default
    if cls is PlaceOrder:
        fields.update(sku=seed.stocked_skus(NORTH)[0], address=seed.deliverable_addresses(NORTH)[0])
    return record(cls, event_id=f"twin-{hub}-{order_id}", hub=hub, order_id=order_id, **fields)


def last_orders(partitions: int) -> list[PlaceOrder]:
    """LAST_PER_PARTITION valid orders on every partition, at hubs with drones."""
    by_partition: dict[int, list[str]] = {}
    for hub in seed.hubs_with_drones():
        by_partition.setdefault(partition_for(hub.encode(), partitions), []).append(hub)
    assert len(by_partition) == partitions, "some partition has no hub with drones"
    return [
        commands.place_order(hub, seed.stocked_skus(hub)[0], 1, seed.deliverable_addresses(hub)[0], PLACED_AT,
                             order_id=f"ok-c{p}{i}", event_id=f"place-ok-c{p}{i}")
        for p, here in sorted(by_partition.items()) for i, hub in enumerate(here[:LAST_PER_PARTITION])
    ]
