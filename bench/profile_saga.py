"""Profile the saga's hot path: py-spy samples all four workers while they drain a backlog.

`python -m bench.profile_saga [--orders 3000] [--out DIR]` (the stack is found as for the
bench). It writes each worker's collapsed stacks (py-spy's raw format, for flame graph tools)
and prints, per worker and over all four, the functions with the most samples on-CPU: self
(the frame itself was running) and total (the frame was on the stack).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.config import BenchContext
from bench.saga import SagaBench
from harness.stack import provide_stack


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: `.venv/bin/pip install -e '.[dev]'`")
    return found


def summarise(collapsed: Path) -> tuple[Counter[str], Counter[str], int]:
    """Self and total sample counts per frame, and the number of samples, of one raw profile."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    return own, total, samples


def print_top(title: str, own: Counter[str], total: Counter[str], samples: int, top: int) -> None:
    print(f"\n== {title}: {samples} samples on-CPU")
    print("  self%  frame")
    for frame, n in own.most_common(top):
        print(f"  {100 * n / samples:5.1f}  {frame}")
    print("  total% frame")
    # Frames on (nearly) every stack are the entry point and the loop: nothing to learn there.
    inner = [(f, n) for f, n in total.most_common() if n < 0.97 * samples]
    for frame, n in inner[:top]:
        print(f"  {100 * n / samples:5.1f}  {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_saga", description=__doc__)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="choreo-profile-")))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with provide_stack(running_local=True) as endpoints:
        bench = SagaBench(BenchContext(endpoints, args.out / "scratch"), args.orders)
        spies = []
        try:
            for w in bench.workers:
                cmd = [py_spy(), "record", "--pid", str(w.pid), "--rate", str(args.rate), "--function",
                       "--format", "raw", "--output", str(args.out / f"{w.name}.txt")]
                spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1)  # let py-spy attach before the backlog arrives
            began = time.monotonic()
            placed, ended = bench.run(args.orders, None)
            print(f"{len(ended)} sagas ended in {time.monotonic() - began:.1f}s under the profiler")
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                spy.wait(60)
            bench.close()
    overall_own: Counter[str] = Counter()
    overall_total: Counter[str] = Counter()
    overall = 0
    for w in bench.workers:
        own, total, samples = summarise(args.out / f"{w.name}.txt")
        print_top(w.name, own, total, samples, args.top)
        overall_own.update(own)
        overall_total.update(total)
        overall += samples
    print_top("all four workers", overall_own, overall_total, overall, args.top)
    print(f"\ncollapsed stacks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
