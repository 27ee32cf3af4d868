"""`python -m bench [--quick]`: run every measurement, print one table, write it to results/.

`make bench` runs the full sizes; `make bench QUICK=1` the same code on tiny inputs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.codec_bench import CodecBench
from bench.config import BENCH_DIR, FAIR, FULL, LOAD_SHARES, QUICK, BenchContext, Sizes
from bench.machine import load_line, machine, versions
from bench.memory import run_memory
from bench.quix_env import quix_python, quix_versions
from bench.rebuild_bench import RebuildBench
from bench.recovery import run_recovery
from bench.report import Row, markdown_table
from bench.saga import run_saga
from bench.scale import run_scale
from bench.stage import filled_packaging, run_stage
from bench.turns import run_turns
from harness.stack import StackEndpoints, provide_stack


def say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


# Every section, in the order they run; `--only` picks some of them.
SECTIONS = ("stage", "codec", "rebuild", "saga", "turns", "scale", "recovery", "memory")


def parse_only(value: str) -> tuple[str, ...]:
    picked = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in picked if v not in SECTIONS]
    if unknown or not picked:
        raise argparse.ArgumentTypeError(
            f"unknown section {', '.join(unknown) or '(none)'}: choose from {', '.join(SECTIONS)}"
        )
    return picked


def measure(
    ctx: BenchContext, sizes: Sizes, only: tuple[str, ...] = SECTIONS
) -> tuple[list[Row], dict[str, Any]]:
    ceiling: list[Row] = []
    stage: list[Row] = []
    codec_rows: list[Row] = []
    saga_rows: list[Row] = []
    turns_rows: list[Row] = []
    scale_rows: list[Row] = []
    rebuild_rows: list[Row] = []
    recovery_rows: list[Row] = []
    memory_rows: list[Row] = []
    notes: dict[str, Any] = {}
    last_stage = None
    if "stage" in only:
        stage_rows, last_stage = run_stage(ctx, sizes, say)
        ceiling, stage = stage_rows[:3], stage_rows[3:]
    if "codec" in only or "rebuild" in only:
        # Interleaved, one codec round then one rebuild round: the rebuild's ratio to the
        # decode rate compares rounds run side by side, on the same load of the machine.
        codec = CodecBench(ctx, sizes.codec_events) if "codec" in only else None
        rebuild = None
        if "rebuild" in only:
            rebuild = RebuildBench(last_stage or filled_packaging(ctx, sizes, say))
        for i in range(sizes.runs):
            label = f"{i + 1}/{sizes.runs}"
            if codec is not None:
                codec.round(say, label)
            if rebuild is not None:
                rebuild.round(say, label)
        codec_rows = codec.rows if codec is not None else []
        rebuild_rows = rebuild.rows(codec.decode if codec else None) if rebuild is not None else []
    if "saga" in only:
        saga_rows, outcomes = run_saga(ctx, sizes, say)
        notes["saturation saga ends"] = outcomes
    if "turns" in only:
        turns_rows = run_turns(ctx, sizes, say)
    if "scale" in only:
        scale_rows = run_scale(ctx, sizes, say)
    if "recovery" in only:
        recovery_rows = run_recovery(ctx, sizes, say)
    if "memory" in only:
        memory_rows = run_memory(ctx, sizes, say)
    rows = [*ceiling, *codec_rows, *stage, *saga_rows, *scale_rows, *turns_rows, *rebuild_rows,
            *recovery_rows, *memory_rows]
    return rows, notes


def settings_lines(sizes: Sizes, endpoints: StackEndpoints) -> dict[str, Any]:
    return {
        "sizes": asdict(sizes),
        "shared by every contender": FAIR.as_dict(),
        "load shares": list(LOAD_SHARES),
        "stack": {"source": endpoints.source, "bootstrap": endpoints.bootstrap_servers},
        "contenders": "one process each over all partitions; rates from broker append timestamps "
                      "of each output topic; Quix commit_interval = commit interval, "
                      "commit_every = batch size, its default changelog topics on",
    }


def write_results(out_dir: Path, stamp: str, table: str, report: dict[str, Any]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{stamp}.md", out_dir / f"{stamp}.json"
    js.write_text(json.dumps(report, indent=2, default=str) + "\n")
    sections = [f"# Benchmark {stamp} ({report['sizes']})", "", table, ""]
    for title in ("notes", "settings", "versions", "machine"):
        body = json.dumps(report[title], indent=2, default=str)
        sections += [f"## {title}", "", "```json", body, "```", ""]
    md.write_text("\n".join(sections))
    return md, js


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny inputs: proves the harness runs")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="where to write results")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, state)")
    parser.add_argument("--only", type=parse_only, default=SECTIONS, metavar="SECTION[,SECTION...]",
                        help=f"run only these measurements ({', '.join(SECTIONS)})")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    began = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    stamp += "" if args.only == SECTIONS else "-" + "-".join(args.only)
    quix = quix_python()
    work = Path(tempfile.mkdtemp(prefix="choreo-bench-"))
    try:
        with provide_stack(running_local=True) as endpoints:
            say(f"stack: {endpoints.source} ({endpoints.bootstrap_servers}); sizes: {sizes.name}")
            before = machine()
            rows, notes = measure(BenchContext(endpoints, work), sizes, args.only)
            report = {
                "stamp": stamp, "sizes": sizes.name, "seconds": round(time.monotonic() - began, 1),
                "rows": [r.as_dict() for r in rows], "notes": notes,
                "settings": settings_lines(sizes, endpoints),
                "versions": versions(endpoints, quix_versions(quix)),
                "machine": {**before, "load_average_after": machine()["load_average"]},
            }
            load = load_line(report["machine"])  # type: ignore[arg-type]
    finally:
        if args.keep:
            say(f"scratch folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    table = markdown_table(rows) + "\n\n" + load
    md, js = write_results(args.out, stamp, table, report)
    print()
    print(table)
    print()
    print(json.dumps({k: report[k] for k in ("settings", "versions")}, indent=2, default=str))
    say(f"done in {report['seconds']:.0f}s; written {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
