"""Sizes and shared settings of one benchmark run: full (`make bench`) or quick (`QUICK=1`)."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from choreo.settings import Settings
from harness.stack import StackEndpoints

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does; the quick sizes only prove the harness still runs."""

    name: str
    runs: int  # every figure is the median of this many runs (with min and max)
    stage_records: int  # OrderPlaced records in the one-stage comparison
    codec_events: int  # events encoded and decoded per codec run
    saga_orders: int  # orders dumped at once to find the saga's saturation rate
    scale_orders: int  # orders dumped at once per instance count in the scale comparison
    latency_seconds: float  # how long the open-loop generator sends at each load level
    recovery_backlog: int  # input waiting for the worker that is killed
    memory_keys: tuple[int, ...]  # keys of state for the peak RSS rows
    memory_inputs: int  # records the worker processes on top of that state


FULL = Sizes(
    name="full",
    runs=5,
    stage_records=100_000,
    codec_events=50_000,
    saga_orders=3_000,
    scale_orders=6_000,
    latency_seconds=15.0,
    recovery_backlog=50_000,
    memory_keys=(10_000, 100_000, 1_000_000),
    memory_inputs=5_000,
)

# One run per figure: the quick run proves the harness works, it measures nothing.
QUICK = Sizes(
    name="quick",
    runs=1,
    stage_records=2_000,
    codec_events=2_000,
    saga_orders=150,
    scale_orders=100,
    latency_seconds=2.0,
    recovery_backlog=4_000,
    memory_keys=(1_000, 2_000, 4_000),
    memory_inputs=200,
)

# The share of the saturation rate at which the open-loop latency runs send.
LOAD_SHARES = (0.25, 0.50, 0.75)


@dataclass(frozen=True)
class Fairness:
    """What every contender shares (the project's producer sets acks and linger the same way)."""

    partitions: int = 6
    batch_size: int = 500
    commit_interval_ms: int = 100
    acks: str = "all"
    linger_ms: int = 5
    isolation_level: str = "read_committed"
    stock_per_shelf: int = 10_000_000

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FAIR = Fairness()


def bench_settings(bootstrap: str, registry_url: str, prefix: str, state_dir: Path) -> Settings:
    """Settings of one isolated slice of the stack (own topic prefix, groups and state folder)."""
    return Settings(
        bootstrap_servers=bootstrap,
        schema_registry_url=registry_url,
        topic_prefix=prefix,
        state_dir=state_dir,
        partitions=FAIR.partitions,
        batch_size=FAIR.batch_size,
        commit_interval_ms=FAIR.commit_interval_ms,
        session_timeout_ms=6000,
        transaction_timeout_ms=10000,
    )


@dataclass
class BenchContext:
    """What every measurement shares: the stack, a scratch folder, and unique prefixes."""

    endpoints: StackEndpoints
    work_dir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    def settings(self, name: str) -> Settings:
        """Settings of a fresh slice: prefix `bench.<run>.<name>.`, its own state folder."""
        prefix = f"bench.{self.run_id}.{name}."
        return bench_settings(
            self.endpoints.bootstrap_servers, self.endpoints.schema_registry_url,
            prefix, self.work_dir / "state",
        )
