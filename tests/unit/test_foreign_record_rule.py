"""Which records on a service's own topic replay skips as not the service's, what it does with
them, and which partitions `choreo rebuild --partition` accepts; no broker needed."""

from __future__ import annotations

import dataclasses
import io
import json
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import KafkaError, Message, TopicPartition
from confluent_kafka.schema_registry import Schema
from prometheus_client import CollectorRegistry, Counter

from choreo.exceptions import ConfigurationError, DecodeError
from choreo.ops import rebuild
from choreo.runtime.assignment import AssignedStores
from choreo.runtime.foreign_records import (
    NOT_EMITTED,
    SKIP_OFFSET,
    UNDECODABLE,
    DeadLetterCopyError,
    ForeignRecordError,
    HeldBackError,
    SkippedRecords,
    check_skippable,
    not_own,
    types_elsewhere,
)
from choreo.runtime.health import Progress
from choreo.runtime.metrics import WorkerMetrics
from choreo.runtime.restore import PartitionsNotRestored, RestoreError, restore_partitions
from choreo.runtime.store import PartitionStore, store_path
from choreo.runtime.watchdog import NoWatchdog
from choreo.serde.codec import Codec, subject_for
from choreo.serde.schemas import load_event_schemas
from choreo.settings import Settings
from tests.support import toy
from tests.support.fake_registry import FakeRegistry
from tests.support.memory_log import MemoryLog

T0 = datetime(2026, 1, 1, tzinfo=UTC)
COUNTED = toy.NumberCounted("e-1", "hub-0", T0, "c-1", 2, 2)
DOUBLED = toy.SumDoubled("e-2", "hub-0", T0, None, 4)
ADD = toy.AddNumber("e-3", "hub-0", T0, 2)
OWN = "p.counter"  # the counter's own topic
ELSEWHERE = types_elsewhere(toy.COUNTER, [toy.COUNTER, toy.DOUBLER])


class _Unreachable(FakeRegistry):
    def get_schema(self, schema_id: int) -> Schema:
        raise ConnectionError("connection refused")


def _codec(registry: FakeRegistry | None = None) -> tuple[Codec, FakeRegistry]:
    """A codec of the toy domain; each type registered under the topic it travels on."""
    schemas = load_event_schemas([toy.AddNumber, toy.NumberCounted, toy.SumDoubled],
                                 *toy.DOMAIN.schema_dirs)
    registry = registry or FakeRegistry()
    for es, topic in zip(schemas.values(), ["p.counter.commands", OWN, "p.doubler"], strict=True):
        registry.register_schema(subject_for(topic, es.name), Schema(es.text, "AVRO"))
    return Codec(registry, schemas.values()), registry  # type: ignore[arg-type]


def _verdict(codec: Codec, value: bytes | None, elsewhere: frozenset[type] = ELSEWHERE) -> Any:
    """What replaying `value` on the counter's own topic does: the event it applies, or why not."""
    try:
        event = codec.decode(value)
    except DecodeError as e:
        return not_own(e, elsewhere)
    return event if type(event) in toy.COUNTER.emits else not_own(event, elsewhere)


def _with_schema_id(value: bytes, schema_id: int) -> bytes:
    return value[:1] + struct.pack(">I", schema_id) + value[5:]


def test_an_own_event_is_applied() -> None:
    codec, _ = _codec()
    assert _verdict(codec, codec.encode(OWN, COUNTED)) == COUNTED


@pytest.mark.parametrize(("mangle", "says"), [
    (lambda d: None, "too short"),
    (lambda d: d[:3], "too short"),
    (lambda d: b"junk, not a record", "unknown magic byte 106"),
    (lambda d: d[:-4], "malformed Avro body for toy.counter.NumberCounted"),
    (lambda d: d + b"\x00junk", "trailing bytes after a toy.counter.NumberCounted record"),
], ids=["null", "short", "magic", "truncated", "trailing"])
def test_bytes_that_are_no_record_are_skipped(mangle: Callable[[bytes], bytes | None], says: str) -> None:
    codec, _ = _codec()
    verdict = _verdict(codec, mangle(codec.encode(OWN, COUNTED)))
    assert isinstance(verdict, ForeignRecordError) and verdict.reason == UNDECODABLE
    assert says in str(verdict)


@pytest.mark.parametrize(("record", "topic", "says"), [
    (DOUBLED, "p.doubler", "toy.doubler.SumDoubled is not an event type the service emits"),
    (ADD, "p.counter.commands", "toy.counter.AddNumber is not an event type the service emits"),
], ids=["another-service's-event", "a-command"])
def test_a_type_that_travels_only_on_other_topics_is_skipped(record: Any, topic: str, says: str) -> None:
    codec, _ = _codec()
    verdict = _verdict(codec, codec.encode(topic, record))
    assert isinstance(verdict, ForeignRecordError) and verdict.reason == NOT_EMITTED
    assert says in str(verdict)


def test_a_schema_id_the_registry_does_not_know_holds_back_instead_of_skipping() -> None:
    # An emptied registry, or the worker pointed at another one: every own event reads like this.
    codec, _ = _codec()
    verdict = _verdict(codec, _with_schema_id(codec.encode(OWN, COUNTED), 9999))
    assert isinstance(verdict, HeldBackError)
    assert "unknown schema id 9999" in str(verdict)
    assert "may be the service's own" in str(verdict)


def test_a_schema_the_codec_has_no_class_for_holds_back() -> None:
    # A rollback: the newer version wrote an event type this one does not know.
    codec, registry = _codec()
    newer = {"type": "record", "name": "NumberReset", "namespace": "toy.counter",
             "fields": [{"name": "hub", "type": "string"}]}
    sid = registry.register_schema(subject_for(OWN, "toy.counter.NumberReset"),
                                   Schema(json.dumps(newer), "AVRO"))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(newer), {"hub": "hub-0"})
    verdict = _verdict(codec, struct.pack(">bI", 0, sid) + body.getvalue())
    assert isinstance(verdict, HeldBackError)
    assert f"schema id {sid} is not an event type this codec knows" in str(verdict)


def test_a_schema_that_does_not_resolve_to_the_class_holds_back() -> None:
    # A rollback: the newer version dropped a field that this one needs.
    codec, registry = _codec()
    newer = {"type": "record", "name": "NumberCounted", "namespace": "toy.counter",
             "fields": [{"name": "event_id", "type": "string"}]}
    sid = registry.register_schema(subject_for(OWN, "toy.counter.NumberCounted"),
                                   Schema(json.dumps(newer), "AVRO"))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(newer), {"event_id": "e-9"})
    verdict = _verdict(codec, struct.pack(">bI", 0, sid) + body.getvalue())
    assert isinstance(verdict, HeldBackError)
    assert "does not resolve" in str(verdict)


def test_a_type_dropped_from_emits_but_read_from_the_own_topic_holds_back() -> None:
    # A release whose counter no longer emits NumberCounted: its old records cannot be told
    # from a stray one, since the doubler still reads that type from the counter's topic.
    codec, _ = _codec()
    newer = dataclasses.replace(toy.COUNTER, emits=())
    elsewhere = types_elsewhere(newer, [newer, toy.DOUBLER])
    assert toy.NumberCounted not in elsewhere
    verdict = not_own(codec.decode(codec.encode(OWN, COUNTED)), elsewhere)
    assert isinstance(verdict, HeldBackError)
    assert "toy.counter.NumberCounted is not an event type this version of the service emits" in str(verdict)


def test_without_knowing_the_other_services_no_type_is_skipped() -> None:
    codec, _ = _codec()
    assert isinstance(_verdict(codec, codec.encode("p.doubler", DOUBLED), frozenset()), HeldBackError)


# -- restore_partitions on a log in memory ---------------------------------------------------------


def _stores(tmp_path: Path, partitions: list[int]) -> dict[int, PartitionStore]:
    return {p: PartitionStore(tmp_path / f"{p}.sqlite", lock=False) for p in partitions}


def _counted(value: int) -> toy.NumberCounted:
    return toy.NumberCounted(f"e-{value}", "hub-0", T0, None, value, value)


def test_restore_skips_junk_and_holds_back_only_the_partition_with_an_unknown_schema_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    codec, _ = _codec()
    own = [codec.encode(OWN, _counted(v)) for v in (1, 2, 3)]
    log = MemoryLog(OWN, {
        0: [own[0], _with_schema_id(own[1], 9999), own[2]],
        1: [own[0], b"junk, not a record", codec.encode("p.doubler", DOUBLED), own[2]],
    })
    stores = _stores(tmp_path, [0, 1])
    skipped = SkippedRecords("counter")
    with pytest.raises(PartitionsNotRestored) as caught:
        restore_partitions(log, codec, toy.COUNTER, OWN, stores,  # type: ignore[arg-type]
                           skipped=skipped, elsewhere=ELSEWHERE)

    assert set(caught.value.failed) == {0}
    assert "p.counter[0]@1: cannot be read by this process (unknown schema id 9999)" in caught.value.failed[0]
    # The reason says what an operator who knows the record is junk runs to get past it.
    assert caught.value.failed[0].endswith(
        "only if that record is not counter's own (junk from a stray producer), "
        "`choreo rebuild counter --partition 0 --skip-offset 1` skips it"
    )
    # Partition 0 keeps what came before the record and stays there; nothing of it is skipped.
    assert stores[0].checkpoint() == 1 and caught.value.applied[0] == 1
    assert stores[0].get("totals", "hub-0") is not None
    # Partition 1 is restored to its end, past the two records the counter never wrote.
    assert stores[1].checkpoint() == 4 and caught.value.applied[1] == 2
    assert skipped.counts == {1: 2}
    assert "skipping p.counter[1]@1" in caplog.text and "skipping p.counter[0]" not in caplog.text


def test_restore_fails_when_the_registry_does_not_answer(tmp_path: Path) -> None:
    codec, _ = _codec()
    record = codec.encode(OWN, _counted(1))
    fresh, _ = _codec(_Unreachable())
    stores = _stores(tmp_path, [0])
    with pytest.raises(RestoreError, match="cannot be decoded now: schema registry unreachable"):
        restore_partitions(MemoryLog(OWN, {0: [record]}), fresh, toy.COUNTER, OWN, stores,  # type: ignore[arg-type]
                           elsewhere=ELSEWHERE)
    assert stores[0].checkpoint() == 0


def test_a_held_back_partition_shows_in_readyz_and_the_gauge_and_the_next_assignment_retries_it(
    tmp_path: Path,
) -> None:
    codec, registry = _codec()
    own = codec.encode(OWN, _counted(1))
    # A schema the registry will know once it is "fixed": the id its next registration gets.
    missing = len(registry.by_id) + 1
    log = MemoryLog(OWN, {0: [own, _with_schema_id(own, missing)], 1: [own]})
    progress = Progress()
    metrics = WorkerMetrics("counter")
    metrics.follow(progress)
    assigned = AssignedStores(
        service=toy.COUNTER, codec=codec, own_topic=OWN, state_dir=tmp_path, topic_prefix="p.",
        reader=log, written_end=log, watchdog=NoWatchdog(), progress=progress,  # type: ignore[arg-type]
        cancelled=lambda: False, elsewhere=ELSEWHERE,
    )
    inputs = [TopicPartition("p.counter.commands", p) for p in (0, 1)]
    held = {"service": "counter"}

    assigned.on_assign(log, inputs)  # type: ignore[arg-type]
    assert sorted(assigned.stores) == [1] and log.paused == [0]
    assert "unknown schema id" in progress.held_back[0]
    assert "`choreo rebuild counter --partition 0 --skip-offset 1`" in progress.held_back[0]
    assert progress.report()["ready"] is False
    assert metrics.registry.get_sample_value("choreo_partitions_held_back", held) == 1

    # The registry gets the schema back; the next rebalance (eager: everything is revoked and
    # assigned again) restores the partition.
    schema = registry.by_id[2]
    registry.register_schema("p.counter-toy.counter.NumberCounted-again", Schema(schema.schema_str, "AVRO"))
    assert missing in registry.by_id
    assigned.on_revoke(log, inputs)  # type: ignore[arg-type]
    assigned.on_assign(log, inputs)  # type: ignore[arg-type]
    assert sorted(assigned.stores) == [0, 1] and progress.held_back == {}
    assert assigned.stores[0].checkpoint() == 2
    assert progress.report()["ready"] is True
    assert metrics.registry.get_sample_value("choreo_partitions_held_back", held) == 0
    assigned.close()


class _Producer:
    """Records what is produced; delivers each with `error` (None: delivered)."""

    def __init__(self, error: KafkaError | None = None, queue: int | None = None) -> None:
        self.error = error
        self.queue = queue  # how many copies the local queue holds (None: no limit)
        self.produced: list[dict[str, Any]] = []
        self._reports: list[Callable[[], None]] = []
        self.waits = 0

    def produce(self, topic: str, **kw: Any) -> None:
        if self.queue is not None and len(self._reports) >= self.queue:
            raise BufferError("Local: Queue full")
        self.produced.append({"topic": topic, **kw})
        report = kw["on_delivery"]
        self._reports.append(lambda: report(self.error, None))

    def poll(self, timeout: float) -> int:
        if timeout > 0:  # a wait: the broker takes one copy off the queue
            self.waits += 1
            if self.queue:
                self._reports.pop(0)()
        return 0

    def flush(self, _timeout: float) -> int:
        for report in self._reports:
            report()
        self._reports.clear()
        return 0


def _junk(partition: int = 2, offset: int = 41) -> Message:
    return Message(topic="p.counter", partition=partition, offset=offset, key=b"hub-0",
                   value=b"junk", headers=[("event_type", b"Nope")])


def _foreign() -> ForeignRecordError:
    return ForeignRecordError("cannot be decoded: unknown magic byte 106", UNDECODABLE)


def test_a_skipped_record_is_logged_copied_to_the_dlq_on_its_partition_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = _Producer()
    metrics = WorkerMetrics("counter")
    skipped = SkippedRecords("counter", "p.counter.dlq", lambda: producer, metrics.restore_skipped)  # type: ignore[arg-type,return-value]
    with caplog.at_level("ERROR", "choreo.runtime.restore"):
        skipped.skip(_junk(), _foreign())
    skipped.flush()

    [line] = caplog.records
    assert line.levelname == "ERROR"
    assert "skipping p.counter[2]@41 while restoring counter" in line.getMessage()
    assert "unknown magic byte 106" in line.getMessage()
    [copy] = producer.produced
    assert (copy["topic"], copy["partition"], copy["key"], copy["value"]) == (
        "p.counter.dlq", 2, b"hub-0", b"junk",
    )
    headers = dict(copy["headers"])
    assert headers["dlq.error.class"] == b"ForeignRecordError"
    assert (headers["dlq.source.topic"], headers["dlq.source.offset"]) == (b"p.counter", b"41")
    assert headers["event_type"] == b"Nope"  # the original headers travel with the copy
    assert metrics.registry.get_sample_value(
        "choreo_restore_skipped_records_total",
        {"service": "counter", "partition": "2", "reason": UNDECODABLE},
    ) == 1
    assert skipped.counts == {2: 1}


def test_a_copy_that_does_not_reach_the_dlq_fails_the_flush() -> None:
    producer = _Producer(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not allowed"))
    skipped = SkippedRecords("counter", "p.counter.dlq", lambda: producer)  # type: ignore[arg-type,return-value]
    skipped.skip(_junk(), _foreign())
    with pytest.raises(DeadLetterCopyError, match="could not copy a skipped record of counter"):
        skipped.flush()


def test_without_a_dlq_nothing_is_written_but_the_record_is_still_counted() -> None:
    made: list[object] = []
    counter = Counter("skips", "", ["service", "partition", "reason"], registry=CollectorRegistry())
    skipped = SkippedRecords("counter", None, lambda: made.append(1), counter)  # type: ignore[arg-type,func-returns-value,return-value]
    skipped.skip(_junk(partition=0), _foreign())
    skipped.flush()
    assert made == []  # rebuild --verify: not even a producer
    assert skipped.counts == {0: 1}


def test_more_copies_than_the_producer_queue_holds_wait_for_room_instead_of_failing() -> None:
    producer = _Producer(queue=3)
    skipped = SkippedRecords("counter", "p.counter.dlq", lambda: producer)  # type: ignore[arg-type,return-value]
    for offset in range(10):
        skipped.skip(_junk(offset=offset), _foreign())
    skipped.flush()
    assert [int(dict(c["headers"])["dlq.source.offset"]) for c in producer.produced] == list(range(10))
    assert producer.waits == 7 and skipped.copies == {2: 10}


def test_a_producer_queue_that_stays_full_fails_the_copy_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("choreo.runtime.foreign_records._FLUSH_S", 0.0)
    producer = _Producer(queue=0)  # never any room, nothing ever delivered
    skipped = SkippedRecords("counter", "p.counter.dlq", lambda: producer)  # type: ignore[arg-type,return-value]
    with pytest.raises(DeadLetterCopyError) as caught:
        skipped.skip(_junk(), _foreign())
    assert str(caught.value) == (
        "could not copy a skipped record of counter to p.counter.dlq: the producer's queue "
        "stayed full for 0 s"
    )


def test_a_record_whose_copy_is_in_the_dlq_already_is_not_copied_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = _Producer()
    asked: list[int] = []

    def copied(partition: int) -> set[int]:
        asked.append(partition)
        return {41}

    skipped = SkippedRecords("counter", "p.counter.dlq", lambda: producer, copied=copied)  # type: ignore[arg-type,return-value]
    with caplog.at_level("ERROR", "choreo.runtime.restore"):
        skipped.skip(_junk(offset=41), _foreign())
        skipped.skip(_junk(offset=42), _foreign())
    skipped.flush()
    assert [dict(c["headers"])["dlq.source.offset"] for c in producer.produced] == [b"42"]
    assert skipped.counts == {2: 2} and skipped.copies == {2: 1}
    assert asked == [2]  # the DLQ is read once per partition
    assert "(already in p.counter.dlq)" in caplog.records[0].getMessage()
    assert "(copied to p.counter.dlq)" in caplog.records[1].getMessage()


@pytest.mark.parametrize("verify", [True, False])
def test_rebuild_with_a_state_dir_that_cannot_be_a_folder_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, verify: bool,
) -> None:
    monkeypatch.setattr(rebuild, "partitions_of", lambda _settings, _service: [0, 1])
    a_file = tmp_path / "state"
    a_file.write_text("not a folder")
    settings = Settings(topic_prefix="p.", state_dir=a_file)
    with pytest.raises(ConfigurationError) as caught:
        rebuild.rebuild(settings, toy.COUNTER, _codec()[0], verify=verify, jobs=1)
    folder = store_path(rebuild.state_dir_of(settings), "counter", 0).parent
    assert str(caught.value).startswith(f"cannot create the state folder {folder} (")
    assert str(caught.value).endswith("CHOREO_STATE_DIR must name a folder this process may "
                                      "write (or one it may create)")


@pytest.mark.parametrize("wanted", [[99], [-1], [0, 4]])
def test_rebuild_refuses_a_partition_the_topic_does_not_have(
    monkeypatch: pytest.MonkeyPatch, wanted: list[int],
) -> None:
    monkeypatch.setattr(rebuild, "partitions_of", lambda _settings, _service: [0, 1, 2, 3])
    settings = Settings(topic_prefix="p.")
    with pytest.raises(ConfigurationError) as caught:
        rebuild.checked_partitions(settings, toy.COUNTER, wanted)
    bad = [p for p in wanted if p not in range(4)]
    assert str(caught.value) == (
        f"p.counter has no partition {', '.join(map(str, bad))}: its partitions are 0 to 3"
    )


def test_rebuild_takes_every_partition_or_the_ones_named_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rebuild, "partitions_of", lambda _settings, _service: [0, 1, 2, 3])
    settings = Settings(topic_prefix="p.")
    assert rebuild.checked_partitions(settings, toy.COUNTER, None) == [0, 1, 2, 3]
    assert rebuild.checked_partitions(settings, toy.COUNTER, [3, 1, 3]) == [1, 3]


# -- the operator's way past a held-back record: rebuild --partition P --skip-offset O -------------


def test_restore_skips_a_held_back_record_whose_offset_is_named_and_applies_an_own_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    codec, _ = _codec()
    own = [codec.encode(OWN, _counted(v)) for v in (1, 2, 3)]
    log = MemoryLog(OWN, {0: [own[0], _with_schema_id(own[1], 9999), own[2]], 1: [own[0], own[1]]})
    stores = _stores(tmp_path, [0, 1])
    skipped = SkippedRecords("counter")
    # Offset 1 of partition 1 is an own event: naming it changes nothing, it is state.
    applied = restore_partitions(log, codec, toy.COUNTER, OWN, stores,  # type: ignore[arg-type]
                                 skipped=skipped, elsewhere=ELSEWHERE,
                                 skip_offsets={0: frozenset({1}), 1: frozenset({1})})
    assert applied == {0: 2, 1: 2}
    assert stores[0].checkpoint() == 3 and stores[1].checkpoint() == 2
    assert skipped.counts == {0: 1}
    assert "skipping p.counter[0]@1 while restoring counter: named by --skip-offset (cannot be " \
           "read by this process (unknown schema id 9999)" in caplog.text


def test_an_operator_skip_is_copied_to_the_dlq_with_its_own_reason() -> None:
    codec, _ = _codec()
    producer = _Producer()
    metrics = WorkerMetrics("counter")
    skipped = SkippedRecords("counter", "p.counter.dlq", lambda: producer, metrics.restore_skipped)  # type: ignore[arg-type,return-value]
    log = MemoryLog(OWN, {0: [_with_schema_id(codec.encode(OWN, COUNTED), 9999)]})
    restore_partitions(log, codec, toy.COUNTER, OWN, {0: PartitionStore(Path(":memory:"), lock=False)},  # type: ignore[arg-type]
                       skipped=skipped, elsewhere=ELSEWHERE, skip_offsets={0: frozenset({0})})
    assert skipped.copies == {0: 1} and len(producer.produced) == 1
    assert producer.produced[0]["partition"] == 0
    labels = {"service": "counter", "partition": "0", "reason": SKIP_OFFSET}
    assert metrics.registry.get_sample_value("choreo_restore_skipped_records_total", labels) == 1


def _skippable(offsets: list[int]) -> None:
    codec, _ = _codec()
    own = codec.encode(OWN, COUNTED)
    log = MemoryLog(OWN, {0: [own, _with_schema_id(own, 9999), b"junk, not a record"]})
    check_skippable(log, codec, toy.COUNTER, OWN, 0, offsets, ELSEWHERE)  # type: ignore[arg-type]


def test_only_a_record_the_rule_holds_back_may_be_skipped() -> None:
    _skippable([1])  # an unknown schema id: held back, so it may be named


@pytest.mark.parametrize(("offset", "says"), [
    (0, "p.counter[0]@0 is a toy.counter.NumberCounted, an event counter emits and part of its "
        "state: it is never skipped"),
    (2, "p.counter[0]@2 is skipped without --skip-offset (cannot be decoded: unknown magic byte "
        "106): name only records that hold the partition back"),
    (3, "--skip-offset 3 is outside p.counter[0], whose records are at offsets 0 to 2"),
    (-1, "--skip-offset -1 is outside p.counter[0], whose records are at offsets 0 to 2"),
], ids=["own-event", "skipped-anyway", "past-the-end", "negative"])
def test_any_other_offset_is_refused_in_one_sentence(offset: int, says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _skippable([1, offset])
    assert str(caught.value) == says


def test_skip_offsets_need_exactly_one_partition() -> None:
    assert rebuild.checked_skips(None, None) == {}
    assert rebuild.checked_skips([0, 1], []) == {}
    assert rebuild.checked_skips([2, 2], [7, 9, 7]) == {2: frozenset({7, 9})}
    for partitions in (None, [0, 1]):
        with pytest.raises(ConfigurationError, match=r"^--skip-offset needs exactly one --partition, "
                                                     r"the partition whose offsets it names$"):
            rebuild.checked_skips(partitions, [7])


def test_the_cli_refuses_skip_offsets_without_one_partition_before_talking_to_kafka() -> None:
    from typer.testing import CliRunner

    from choreo.cli.main import app

    result = CliRunner().invoke(app, ["rebuild", "counter", "--skip-offset", "7"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: --skip-offset needs exactly one --partition, the partition whose offsets it names"
    ]
