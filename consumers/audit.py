"""Checks the saga's business invariants (docs/saga.md) from the decoded log alone."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from consumers.drones import events as drones
from consumers.orders import events as orders
from consumers.packaging import events as packaging
from consumers.saga import saga_key


@dataclass
class InvariantResult:
    """One invariant: how many things it checked and what broke it."""

    name: str
    description: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class AuditReport:
    """Every invariant's result; `ok` only when none has a violation."""

    invariants: list[InvariantResult]
    sagas: int
    in_flight: int

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.invariants)


@dataclass
class _Saga:
    placed: int = 0
    ends: list[str] = field(default_factory=list)  # "completed" / "failed:<reason>"
    compensations: int = 0
    reserved: list[tuple[str, int]] = field(default_factory=list)
    released: list[tuple[str, int]] = field(default_factory=list)
    shipped: list[tuple[str, int]] = field(default_factory=list)
    drones_taken: int = 0
    drones_back: int = 0
    rejected: str | None = None


@dataclass
class _Shelf:
    added: int = 0
    on_hand: int = 0
    reserved: int = 0
    shipped: int = 0


class _Log:
    """Folds the events into per-saga facts, shelves and drone occupancy, noting breaches."""

    def __init__(self) -> None:
        self.sagas: dict[str, _Saga] = defaultdict(_Saga)
        self.shelves: dict[tuple[str, str], _Shelf] = defaultdict(_Shelf)
        self.busy: dict[tuple[str, str], str | None] = {}
        self.assignments = 0
        self.stock_breaches: list[str] = []
        self.drone_breaches: list[str] = []

    def add(self, e: Any) -> None:
        match e:
            case orders.OrderPlaced():
                self.sagas[saga_key(e.hub, e.order_id)].placed += 1
            case orders.OrderRejected():
                self.sagas[saga_key(e.hub, e.order_id)].rejected = e.reason
            case orders.OrderCompleted():
                self.sagas[saga_key(e.hub, e.order_id)].ends.append("completed")
            case orders.OrderFailed():
                self.sagas[saga_key(e.hub, e.order_id)].ends.append(f"failed:{e.reason}")
            case orders.OrderCompensated():
                self.sagas[saga_key(e.hub, e.order_id)].compensations += 1
            case packaging.StockAdded():
                self._shelf(e, added=e.quantity, on_hand=e.quantity)
            case packaging.PackagePrepared():
                self.sagas[saga_key(e.hub, e.order_id)].reserved.append((e.sku, e.quantity))
                self._shelf(e, on_hand=-e.quantity, reserved=e.quantity)
            case packaging.StockReleased():
                self.sagas[saga_key(e.hub, e.order_id)].released.append((e.sku, e.quantity))
                self._shelf(e, on_hand=e.quantity, reserved=-e.quantity)
            case packaging.StockShipped():
                self.sagas[saga_key(e.hub, e.order_id)].shipped.append((e.sku, e.quantity))
                self._shelf(e, reserved=-e.quantity, shipped=e.quantity)
            case drones.DroneRegistered():
                self.busy.setdefault((e.hub, e.drone_id), None)
            case drones.DroneAssigned():
                self.sagas[saga_key(e.hub, e.order_id)].drones_taken += 1
                self._fly(e, e.order_id)
            case drones.DroneReleased():
                self.sagas[saga_key(e.hub, e.order_id)].drones_back += 1
                self._fly(e, None)

    def _shelf(self, e: Any, **deltas: int) -> None:
        shelf = self.shelves[(e.hub, e.sku)]
        for name, delta in deltas.items():
            setattr(shelf, name, getattr(shelf, name) + delta)
        if shelf.on_hand < 0 or shelf.reserved < 0:
            self.stock_breaches.append(
                f"{e.hub}/{e.sku}: on hand {shelf.on_hand}, reserved {shelf.reserved} "
                f"after {type(e).__name__} {e.event_id}"
            )

    def _fly(self, e: Any, order_id: str | None) -> None:
        drone = (e.hub, e.drone_id)
        if drone not in self.busy:
            self.drone_breaches.append(f"{e.hub}/{e.drone_id} was never registered ({e.event_id})")
        current = self.busy.get(drone)
        if order_id is not None:
            self.assignments += 1
            if current is not None:
                self.drone_breaches.append(
                    f"{e.hub}/{e.drone_id} assigned to {order_id} while flying for {current}"
                )
        elif current is None:
            self.drone_breaches.append(f"{e.hub}/{e.drone_id} released while free ({e.event_id})")
        self.busy[drone] = order_id


def _fold(events: Iterable[Any]) -> _Log:
    log = _Log()
    for event in events:
        log.add(event)
    return log


def audit(events: Iterable[Any], in_flight_ok: bool = False) -> AuditReport:
    """Check the invariants over events in any cross-topic order (per-topic order preserved).

    With `in_flight_ok`, an accepted saga with no end yet is counted, not reported.
    """
    log = _fold(events)
    ended = _invariant("ended_once", "every accepted order reached exactly one end")
    compensated = _invariant("failed_compensated", "every failed saga was compensated, once")
    released = _invariant("released_what_taken", "every ended saga gave back exactly what it took")
    stock = _invariant("stock_conserved", "added = on hand + reserved + shipped, never negative")
    exclusive = _invariant("drone_exclusive", "no drone assigned twice at once")
    accepted = {sid: s for sid, s in log.sagas.items() if s.placed}
    in_flight = 0
    for saga_id, saga in sorted(accepted.items()):
        ended.checked += 1
        if saga.placed > 1:
            ended.violations.append(f"{saga_id}: accepted {saga.placed} times")
        if not saga.ends:
            in_flight += 1
            if not in_flight_ok:
                ended.violations.append(f"{saga_id}: no end yet")
            continue
        if len(saga.ends) > 1:
            ended.violations.append(f"{saga_id}: {len(saga.ends)} ends ({', '.join(saga.ends)})")
        failed = saga.ends[0] != "completed"
        if failed:
            compensated.checked += 1
        if saga.compensations != (1 if failed else 0):
            compensated.violations.append(
                f"{saga_id}: {saga.compensations} compensations for a {saga.ends[0]} saga"
            )
        released.checked += 1
        released.violations.extend(f"{saga_id}: {p}" for p in _giveback_problems(saga, failed))
    for saga_id, saga in log.sagas.items():
        if not saga.placed and (saga.ends or saga.reserved or saga.drones_taken):
            ended.violations.append(f"{saga_id}: saga events for an order never accepted")
    stock.checked = len(log.shelves)
    stock.violations.extend(log.stock_breaches)
    for (hub, sku), s in sorted(log.shelves.items()):
        if s.added != s.on_hand + s.reserved + s.shipped:
            stock.violations.append(f"{hub}/{sku}: added {s.added} != {s.on_hand}+{s.reserved}+{s.shipped}")
    exclusive.checked = log.assignments
    exclusive.violations.extend(log.drone_breaches)
    return AuditReport(
        invariants=[ended, compensated, released, stock, exclusive],
        sagas=len(accepted),
        in_flight=in_flight,
    )


def _invariant(name: str, description: str) -> InvariantResult:
    return InvariantResult(name=name, description=description)


def _giveback_problems(saga: _Saga, failed: bool) -> list[str]:
    """A failed saga releases what it reserved; a completed one ships it; a drone comes back."""
    problems = []
    returned = saga.released if failed else saga.shipped
    wrong = saga.shipped if failed else saga.released
    if Counter(returned) != Counter(saga.reserved):
        verb = "released" if failed else "shipped"
        problems.append(f"reserved {saga.reserved} but {verb} {returned}")
    if wrong:
        problems.append(f"{'shipped' if failed else 'released'} {wrong} unexpectedly")
    if saga.drones_back != saga.drones_taken:
        problems.append(f"took {saga.drones_taken} drone(s), released {saga.drones_back}")
    return problems


@dataclass(frozen=True)
class OutcomeRow:
    """One line of the demo's outcome table."""

    outcome: str  # completed, failed, rejected, in flight
    reason: str
    orders: int
    compensated: int


def summarise_outcomes(events: Iterable[Any]) -> list[OutcomeRow]:
    """Orders by outcome and reason, with how many failed sagas were compensated."""
    counts: Counter[tuple[str, str]] = Counter()
    compensations: Counter[tuple[str, str]] = Counter()
    for saga in _fold(events).sagas.values():
        if saga.rejected is not None and not saga.placed:
            row = ("rejected", saga.rejected)
        elif not saga.placed:
            continue
        elif not saga.ends:
            row = ("in flight", "")
        elif saga.ends[0] == "completed":
            row = ("completed", "")
        else:
            row = ("failed", saga.ends[0].removeprefix("failed:"))
            compensations[row] += min(saga.compensations, 1)
        counts[row] += 1
    rank = {"completed": 0, "failed": 1, "rejected": 2, "in flight": 3}
    return [
        OutcomeRow(outcome=o, reason=r, orders=n, compensated=compensations[(o, r)])
        for (o, r), n in sorted(counts.items(), key=lambda kv: (rank[kv[0][0]], kv[0][1]))
    ]
