"""Ceiling and one stateful stage three ways, on the same pre-filled OrderPlaced input.

Per round: a fresh prefix, the same input bytes, then in rotating order the ceiling's
transactional copy, the project's packaging worker, the Quix Streams app and the ceiling's copy
on one transactional producer (what the ceiling is without producers taking turns), one process
each over all partitions; and a bare consume of the input. Rates come from the broker's append
timestamps on each contender's output topic (first to last output), so start-up is not counted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from confluent_kafka.schema_registry import Schema

from bench.config import FAIR, BenchContext, Sizes
from bench.inputs import order_records, stock_records
from bench.kafka_io import Record, bare_consume, produce, read_back, wait_committed
from bench.quix_env import quix_python
from bench.report import Row, ratio_row
from choreo.kafka import clients
from choreo.kafka.topics import topic_config
from choreo.serde.codec import subject_for
from harness.deploy import Deployment, deploy
from harness.env import child_env
from harness.offsets import end_offsets
from harness.processes import ChildProcess, start_module, start_worker
from harness.topics import LOG_APPEND_TIME, create_topics

SECTION_CEILING = "1 ceiling"
SECTION_STAGE = "3 one stage"
QUIX_OUTPUT = "quix.packaging"
CEILING_OUTPUT = "ceiling.copy"
CEILING_ONE_OUTPUT = "ceiling1.copy"


class StageRound:
    """One round: its deployment, its input, and a way to time each contender on it."""

    def __init__(self, ctx: BenchContext, index: int, values: list[Record] | None, sizes: Sizes) -> None:
        self.ctx = ctx
        self.dep = deploy(ctx.settings(f"stage{index}"), log_append=["packaging"])
        s = self.dep.settings
        create_topics(clients.admin_client(s),
                      [s.topic(QUIX_OUTPUT), s.topic(CEILING_OUTPUT), s.topic(CEILING_ONE_OUTPUT)],
                      s.partitions, {**topic_config(s.replication_factor), **LOG_APPEND_TIME},
                      s.replication_factor)
        _register_quix_outputs(self.dep)
        self.input = self.dep.topic("orders")
        self.values = values or order_records(
            self.dep.codec, self.input, sizes.stage_records, FAIR.partitions, seed=1
        )
        produce(self.dep.settings, self.input, self.values)
        own = self.dep.topic("packaging")
        produce(self.dep.settings, own,
                stock_records(self.dep.codec, own, FAIR.partitions, FAIR.stock_per_shelf))
        self.own_start = end_offsets(self.dep.settings, own)
        self.ends = end_offsets(self.dep.settings, self.input)
        self.timeout = 120 + sizes.stage_records / 200  # generous: a failure, not a slow run, trips it

    def _time(
        self, child: ChildProcess, group: str, output: str, start: dict[int, int] | None = None
    ) -> float:
        try:
            wait_committed(self.dep.settings, group, self.input, self.ends, self.timeout,
                           child.alive, child.name)
        except Exception as e:
            raise RuntimeError(f"{e}\n--- {child.name} log ---\n{child.tail()}") from e
        finally:
            child.stop()
        return read_back(self.dep.settings, output, start).rate()

    def ceiling(self) -> float:
        return self._ceiling("ceiling", CEILING_OUTPUT, self.dep.settings.txn_producers)

    def ceiling_one_producer(self) -> float:
        """The same copy on a single transactional producer: what the ceiling was before the
        producers took turns (each transaction waits out the last one's markers)."""
        return self._ceiling("ceiling1", CEILING_ONE_OUTPUT, 1)

    def _ceiling(self, name: str, output: str, producers: int) -> float:
        group = self.dep.settings.group(name)
        env = child_env(self.dep.settings, CHOREO_TXN_PRODUCERS=str(producers))
        child = start_module(name, sys.executable, "bench.ceiling",
                             ["--input", self.input, "--output", self.dep.topic(output),
                              "--group", group], self.ctx.log_dir, env)
        return self._time(child, group, self.dep.topic(output))

    def project(self) -> float:
        child = start_worker(self.dep.settings, "packaging", self.ctx.log_dir, log_level="WARNING")
        return self._time(child, self.dep.settings.group("packaging"), self.dep.topic("packaging"),
                          self.own_start)

    def quix(self) -> float:
        group = self.dep.settings.group("quix-packaging")
        s = self.dep.settings
        child = start_module("quix", quix_python(), "bench.quix_stage", [
            "--bootstrap", s.bootstrap_servers, "--registry", s.schema_registry_url,
            "--input", self.input, "--output", self.dep.topic(QUIX_OUTPUT), "--group", group,
            "--state-dir", str(self.ctx.work_dir / "quix-state" / s.topic_prefix),
            "--stock", str(FAIR.stock_per_shelf), "--commit-interval-ms", str(FAIR.commit_interval_ms),
            "--batch-size", str(FAIR.batch_size), "--linger-ms", str(FAIR.linger_ms), "--acks", FAIR.acks,
        ], self.ctx.log_dir)
        return self._time(child, group, self.dep.topic(QUIX_OUTPUT))

    def bare(self) -> float:
        return bare_consume(self.dep.settings, self.input)


def _register_quix_outputs(dep: Deployment) -> None:
    registry = clients.registry_client(dep.settings)
    for name in ("PackagePrepared", "PackagingFailed"):
        es = dep.schemas[f"delivery.packaging.{name}"]
        registry.register_schema(subject_for(dep.topic(QUIX_OUTPUT), es.name), Schema(es.text, "AVRO"))


def run_stage(ctx: BenchContext, sizes: Sizes, say: Callable[[str], None]) -> tuple[list[Row], Deployment]:
    """Rows for the ceiling (section 1) and the stage (section 3); the last round's deployment
    (its packaging topic and state) is handed on to the rebuild measurement."""
    copy = Row("ceiling.copy", SECTION_CEILING, "bare transactional copy loop", "records/s")
    bare = Row("ceiling.consume", SECTION_CEILING, "bare consume loop", "records/s")
    ours = Row("stage.project", SECTION_STAGE, "project: packaging worker (SQLite)", "records/s")
    quix = Row("stage.quix", SECTION_STAGE, "Quix Streams (RocksDB, exactly-once)", "records/s")
    ceiling = Row("stage.ceiling", SECTION_STAGE, "ceiling: transactional copy", "records/s")
    one_producer = Row("ceiling.copy_one_producer", SECTION_CEILING,
                       "bare transactional copy loop, one producer (no turns)", "records/s")
    values: list[Record] | None = None
    last: StageRound | None = None
    for i in range(sizes.runs):
        rnd = StageRound(ctx, i, values, sizes)
        values, last = rnd.values, rnd
        contenders: list[tuple[str, Callable[[], float], list[Row]]] = [
            ("ceiling copy", rnd.ceiling, [copy, ceiling]),
            ("project", rnd.project, [ours]),
            ("quix", rnd.quix, [quix]),
            ("ceiling copy, one producer", rnd.ceiling_one_producer, [one_producer]),
        ]
        shift = i % len(contenders)  # rotate so no contender always runs first on a cold box
        for name, measure, rows in contenders[shift:] + contenders[:shift]:
            rate = measure()
            for row in rows:
                row.runs.append(rate)
            say(f"stage round {i + 1}/{sizes.runs}: {name} {rate:,.0f} records/s")
        bare.runs.append(rnd.bare())
        say(f"stage round {i + 1}/{sizes.runs}: bare consume {bare.runs[-1]:,.0f} records/s")
    assert last is not None
    rows = [
        copy, one_producer, bare, ours, quix, ceiling,
        ratio_row("stage.project_over_quix", SECTION_STAGE, "ratio project / Quix", ours, quix),
        ratio_row("stage.project_over_ceiling", SECTION_STAGE, "ratio project / ceiling", ours, ceiling),
    ]
    return rows, last.dep


def filled_packaging(ctx: BenchContext, sizes: Sizes, say: Callable[[str], None]) -> Deployment:
    """A deployment whose packaging topic holds the stock and the outputs of one stage run: the
    rebuild's input when the stage itself is not measured."""
    rnd = StageRound(ctx, 0, None, sizes)
    say(f"rebuild input: packaging worker over {sizes.stage_records:,} orders "
        f"({rnd.project():,.0f} records/s, not a figure)")
    return rnd.dep
