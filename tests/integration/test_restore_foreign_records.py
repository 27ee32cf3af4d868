"""A record on a service's own topic that the service never wrote does not stop the service:
restore, rebuild and rebuild --verify skip it alike (an error line, a DLQ copy, a metric), and a
partition holding a record that cannot be applied now (evolve raises, or its schema id is
unknown) stops alone while the others go on."""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message

from choreo.kafka import clients
from choreo.stack.ports import free_port
from harness.processes import ChildProcess, wait_until
from harness.stack import StackEndpoints
from tests.support import toy
from tests.support.topic_reader import ReadRecord, read_topic
from tests.support.toy_pipeline import ToyPipeline

pytestmark = pytest.mark.integration

HUB_ON_0 = "hub-2"  # murmur2("hub-2") % 4 == 0: the partition the foreign records go to
ROUND = 28  # numbers per round: 4 per hub, 8 of them on partition 0


class _FragilePipeline(ToyPipeline):
    domains = "tests.support.toy_fragile:DOMAIN"


def _counted(pipe: ToyPipeline) -> list[ReadRecord]:
    return [r for r in pipe.counted() if isinstance(r.event, toy.NumberCounted)]


def _inject(pipe: ToyPipeline, values: list[bytes]) -> list[int]:
    """Produce `values` to partition 0 of the counter's own topic, as a stray producer would."""
    offsets: list[int] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        offsets.append(msg.offset() or 0)

    producer = clients.plain_producer(pipe.settings)
    for value in values:
        producer.produce(pipe.topic("counter"), value=value, key=HUB_ON_0.encode(), partition=0,
                         on_delivery=delivered)
    assert producer.flush(30) == 0
    return sorted(offsets)


def _counted_event(value: int) -> toy.NumberCounted:
    return toy.NumberCounted(str(uuid.uuid4()), HUB_ON_0, datetime.now(UTC), str(uuid.uuid4()), value, 1)


def _foreign_records(pipe: ToyPipeline) -> list[bytes]:
    """Junk, a truncated own event, and a valid event of another service (the doubler's)."""
    own = pipe.codec.encode(pipe.topic("counter"), _counted_event(5))
    doubled = toy.SumDoubled(str(uuid.uuid4()), HUB_ON_0, datetime.now(UTC), None, 10)
    return [b"junk, not a record", own[:-4], pipe.codec.encode(pipe.topic("doubler"), doubled)]


def _wait_counted(pipe: ToyPipeline, worker: ChildProcess, n: int) -> None:
    def done() -> bool:
        assert worker.alive(), f"the worker stopped:\n{worker.tail(40)}"
        return len(_counted(pipe)) >= n

    wait_until(done, 120, f"{n} numbers counted")


def _metric_lines(port: int, name: str) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return [line for line in r.read().decode().splitlines() if line.startswith(name + "{")]


def test_restore_and_rebuild_skip_records_the_service_never_wrote(toy: ToyPipeline) -> None:
    toy.produce_numbers(ROUND)
    first = toy.start("counter")
    _wait_counted(toy, first, ROUND)
    assert first.stop() == 0
    # Between own events: the counter's store checkpoint is before these, the next events after.
    injected = _inject(toy, _foreign_records(toy))
    toy.produce_numbers(ROUND)

    port = free_port()
    second = toy.start("counter", CHOREO_METRICS_PORT=str(port))
    _wait_counted(toy, second, 2 * ROUND)
    after = [r for r in _counted(toy) if r.partition != 0 or r.offset > injected[-1]]
    assert {r.partition for r in after} >= {0, 1, 3}, "new input processed on every partition"
    skipped = _metric_lines(port, "choreo_restore_skipped_records_total")
    assert sum(float(line.rsplit(" ", 1)[1]) for line in skipped) == 3
    assert any('reason="not_emitted"' in line and line.endswith(" 1.0") for line in skipped), skipped
    log = second.log()
    assert log.count(f"skipping {toy.topic('counter')}[0]@") == 3
    assert "Traceback" not in log
    assert second.stop() == 0

    letters = toy.dead_letters()
    assert [(r.partition, int(r.headers["dlq.source.offset"])) for r in letters] == [
        (0, o) for o in injected
    ]
    assert {r.headers["dlq.source.topic"] for r in letters} == {toy.topic("counter").encode()}
    assert {r.headers["dlq.error.class"] for r in letters} == {b"ForeignRecordError"}
    assert [r.value for r in letters] == _raw_values(toy, injected)

    # A normal restart starts after the checkpoint, which moved past them: no second copy.
    toy.produce_numbers(7)
    third = toy.start("counter")
    _wait_counted(toy, third, 2 * ROUND + 7)
    assert third.stop() == 0
    assert len(toy.dead_letters()) == 3

    rebuilt = toy.choreo("rebuild", "counter")
    assert rebuilt.returncode == 0, rebuilt.stderr
    # A rebuild replays from the start, but the restore's copies are in the DLQ already.
    assert "counter[0] rebuilt events=" in rebuilt.stdout and "skipped=3 copied=0" in rebuilt.stdout
    verified = toy.rebuild_verify("counter")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.count(" ok ") == 4 and "MISMATCH" not in verified.stdout
    assert "skipped=3" in verified.stdout  # verify applies the same rule
    assert len(toy.dead_letters()) == 3  # and writes nothing


def _raw_values(pipe: ToyPipeline, offsets: list[int]) -> list[bytes | None]:
    records = read_topic(pipe.settings, pipe.topic("counter"))
    by_offset = {r.offset: r.value for r in records if r.partition == 0}
    return [by_offset[o] for o in offsets]


UNKNOWN_ID = 2**31 - 1  # a schema id no registry here has given out


@pytest.mark.parametrize("cause", ["evolve raises", "unknown schema id"])
def test_a_record_that_cannot_be_applied_stops_only_its_partition(
    stack: StackEndpoints, topic_prefix: str, tmp_path: Path, cause: str,
) -> None:
    """An own event that `evolve` refuses, or a record whose schema id the registry does not know
    (it may be the service's own: an emptied registry gives every own event such an id), is
    never skipped: its partition is held back, and says so, while the others go on."""
    kind = _FragilePipeline if cause == "evolve raises" else ToyPipeline
    pipe = kind(stack.bootstrap_servers, stack.schema_registry_url, topic_prefix, tmp_path)
    try:
        pipe.produce_numbers(ROUND)
        first = pipe.start("counter")
        _wait_counted(pipe, first, ROUND)
        assert first.stop() == 0
        record = pipe.codec.encode(pipe.topic("counter"), _counted_event(-1))
        if cause == "unknown schema id":
            record = record[:1] + struct.pack(">I", UNKNOWN_ID) + record[5:]
        [bad] = _inject(pipe, [record])
        pipe.produce_numbers(ROUND)

        port = free_port()
        second = pipe.start("counter", CHOREO_METRICS_PORT=str(port))
        # Partition 0 is not served; the 20 new numbers of the other partitions are (the
        # injected event reads as counted when it decodes).
        _wait_counted(pipe, second, 2 * ROUND - 8 + (cause == "evolve raises"))
        wait_until(lambda: "not serving partition(s) [0]" in second.log(), 30, "the partition named")
        assert not [r for r in _counted(pipe) if r.partition == 0 and r.offset > bad]
        assert _metric_lines(port, "choreo_partitions_held_back") == [
            'choreo_partitions_held_back{service="counter"} 1.0'
        ]
        assert pipe.dead_letters() == []  # held back, not skipped: nothing copied
        if cause == "unknown schema id":
            _skip_while_the_worker_runs(pipe, second, port, bad)
        else:  # an own event that evolve refuses is state: skipping it is refused
            refused = pipe.choreo("rebuild", "counter", "--partition", "0", "--skip-offset", str(bad))
            assert refused.returncode == 1
            assert refused.stderr.strip().splitlines() == [
                f"error: {pipe.topic('counter')}[0]@{bad} is a toy.counter.NumberCounted, an event "
                "counter emits and part of its state: it is never skipped"
            ]
        assert second.stop() == 0

        rebuilt = pipe.choreo("rebuild", "counter")
        assert rebuilt.returncode == 1
        why = (f"evolve raised on {pipe.topic('counter')}[0]@{bad}" if cause == "evolve raises"
               else f"{pipe.topic('counter')}[0]@{bad}: cannot be read by this process (unknown "
                    f"schema id {UNKNOWN_ID})")
        assert f"counter[0] FAILED {why}" in rebuilt.stdout
        assert rebuilt.stdout.count("rebuilt events=") == 3
        assert rebuilt.stderr.strip().splitlines()[-1].startswith("error: 1 partition(s) of counter")
        assert "Traceback" not in rebuilt.stderr
        if cause == "unknown schema id":
            # The full rebuild kept the store the skip made: a restart serves partition 0 again.
            _served_again_after_a_restart(pipe, bad)
    finally:
        pipe.close()


def _readyz(port: int) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as e:  # 503 while a partition is held back
        return json.loads(e.read())  # type: ignore[no-any-return]


def _skip_while_the_worker_runs(pipe: ToyPipeline, worker: ChildProcess, port: int, bad: int) -> None:
    """The hold-back names the record and the command; the command, run beside the worker
    (which closed the held-back store), refuses an own event and skips the junk."""
    command = f"choreo rebuild counter --partition 0 --skip-offset {bad}"
    assert f"{pipe.topic('counter')}[0]@{bad}: cannot be read by this process" in worker.log()
    assert f"`{command}` skips it" in worker.log()
    held = _readyz(port)["held_back_partitions"]
    assert isinstance(held, dict) and held["0"].startswith(f"{pipe.topic('counter')}[0]@{bad}: ")
    assert held["0"].endswith(f"`{command}` skips it")

    own = next(r.offset for r in _counted(pipe) if r.partition == 0)
    refused = pipe.choreo("rebuild", "counter", "--partition", "0", "--skip-offset", str(own))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"error: {pipe.topic('counter')}[0]@{own} is a toy.counter.NumberCounted, an event counter "
        "emits and part of its state: it is never skipped"
    ]
    skipped = pipe.choreo(*command.split()[1:])
    assert skipped.returncode == 0, skipped.stderr
    assert "counter[0] rebuilt events=" in skipped.stdout and "skipped=1 copied=1" in skipped.stdout
    assert f"skipping {pipe.topic('counter')}[0]@{bad} while restoring counter: named by " \
           "--skip-offset" in skipped.stderr
    assert worker.alive()
    letters = pipe.dead_letters()
    assert [(r.partition, int(r.headers["dlq.source.offset"])) for r in letters] == [(0, bad)]


def _served_again_after_a_restart(pipe: ToyPipeline, bad: int) -> None:
    port = free_port()
    worker = pipe.start("counter", CHOREO_METRICS_PORT=str(port))
    pipe.produce_numbers(ROUND)  # 8 of them on partition 0

    def decided_on_0() -> bool:
        assert worker.alive(), f"the worker stopped:\n{worker.tail(40)}"
        return len([r for r in _counted(pipe) if r.partition == 0 and r.offset > bad]) >= 16

    # The 8 held since the hold-back and the 8 new ones, decided from the rebuilt store.
    wait_until(decided_on_0, 120, "partition 0 served again")
    wait_until(lambda: _readyz(port).get("ready") is True, 30, "ready")
    assert "not serving" not in worker.log() and "Traceback" not in worker.log()
    assert worker.stop() == 0


@pytest.mark.parametrize("partition", ["99", "-1"])
def test_rebuild_of_a_partition_that_does_not_exist_is_one_sentence(
    toy: ToyPipeline, partition: str,
) -> None:
    for verify in ([], ["--verify"]):
        result = toy.choreo("rebuild", "counter", "--partition", partition, *verify, timeout=60)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"error: {toy.topic('counter')} has no partition {partition}: its partitions are 0 to 3"
        ]
