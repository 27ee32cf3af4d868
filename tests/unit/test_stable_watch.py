"""A transaction that never ends on the own topic is reported, once, with the command that ends
it; one that moves or ends is not."""

from __future__ import annotations

from choreo.runtime.health import Progress
from choreo.runtime.stable_watch import HangingTransactionWatch
from choreo.runtime.watchdog import NoWatchdog

TOPIC = "p.packaging"


def _watch(progress: Progress) -> HangingTransactionWatch:
    return HangingTransactionWatch(
        TOPIC, None, None, NoWatchdog(), progress, limit_s=45.0,  # type: ignore[arg-type]
    )


def test_a_stable_offset_stuck_short_of_the_end_past_the_limit_is_a_hanging_transaction() -> None:
    progress = Progress()
    watch = _watch(progress)
    watch.look(3, stable=130, end=131, now=0.0)
    watch.look(3, stable=130, end=131, now=45.0)
    assert progress.hanging == {}  # no longer than any transaction of ours may last
    watch.look(3, stable=130, end=140, now=46.0)  # more written after it: still stuck at 130
    assert progress.hanging[3].startswith("p.packaging[3]@130: a transaction open for 46 s")
    assert (
        "`choreo kafka transactions abort --topic p.packaging --partition 3 --start-offset 130` "
        "ends it"
    ) in progress.hanging[3]
    report = progress.report()
    assert report["ready"] is False and "3" in report["hanging_transactions"]
    watch.look(3, stable=141, end=141, now=50.0)  # aborted by an operator
    assert progress.hanging == {} and progress.report()["hanging_transactions"] == {}


def test_a_stable_offset_that_moves_is_transactions_being_decided() -> None:
    progress = Progress()
    watch = _watch(progress)
    for second in range(0, 200, 10):
        watch.look(0, stable=second, end=second + 5, now=float(second))  # always behind, moving
    assert progress.hanging == {}
