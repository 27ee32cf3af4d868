"""Faults the suite injects into real processes: brokers, the registry, workers and their stores."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka.admin import AdminClient

from choreo.stack import lifecycle, processes
from choreo.stack.layout import StackLayout
from harness.processes import pid_running, wait_until, worker_children

TRANSACTION_LOG_PARTITIONS = 10  # transaction.state.log.num.partitions in stack/server.properties


def kill_component(layout: StackLayout, component: str) -> None:
    """kill -9 one stack process and wait until it is gone."""
    pid = processes.read_pid(layout, component)
    assert pid is not None, f"{component} is not running"
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: processes.exited(layout, component, pid), 30, f"{component} gone")


def bring_back(layout: StackLayout) -> None:
    """Start whatever part of the stack is not running and wait until it answers."""
    lifecycle.up(layout)


def group_coordinator(admin: AdminClient, group: str) -> int:
    """The node id of the broker that coordinates a consumer group (asked of the cluster)."""
    result = admin.describe_consumer_groups([group])[group].result(30)
    return int(result.coordinator.id)


def _java_hash(text: str) -> int:
    h = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    return h


def transaction_coordinator(admin: AdminClient, transactional_id: str) -> int:
    """The node id leading the __transaction_state partition of a transactional id.

    Kafka places a transactional id on partition abs(id.hashCode()) % partitions of its
    transaction log; the leader of that partition is the id's transaction coordinator.
    """
    partition = (_java_hash(transactional_id) & 0x7FFFFFFF) % TRANSACTION_LOG_PARTITIONS
    meta = admin.list_topics("__transaction_state", timeout=30)
    return int(meta.topics["__transaction_state"].partitions[partition].leader)


def pause(layout: StackLayout, component: str, seconds: float) -> threading.Thread:
    """SIGSTOP a process now and SIGCONT it after `seconds`, in a thread the caller joins."""
    pid = processes.read_pid(layout, component)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    thread = threading.Timer(seconds, lambda: os.kill(pid, signal.SIGCONT))
    thread.start()
    return thread


def later(seconds: float, action: Callable[[], None]) -> threading.Thread:
    thread = threading.Timer(seconds, action)
    thread.start()
    return thread


def kill_worker(supervisor_pid: int, service: str) -> None:
    """SIGKILL one service's worker under a supervisor and wait until it is gone (its locks free)."""
    victim = worker_children(supervisor_pid)[service]
    os.kill(victim, signal.SIGKILL)
    # A dead child stays a zombie until the supervisor reaps it, and then vanishes from /proc:
    # pid_running counts both as gone, and never reads a /proc entry that may vanish mid-check.
    wait_until(lambda: not pid_running(victim), 30, f"{service} gone")


def keep_killing_workers(supervisor_pid: int, times: int, every_s: float, seed: int = 7) -> threading.Thread:
    """SIGKILL a random worker of the supervisor `times` times, `every_s` apart, in a thread."""
    rng = random.Random(seed)

    def run() -> None:
        for _ in range(times):
            children = worker_children(supervisor_pid)
            if children:
                os.kill(children[rng.choice(sorted(children))], signal.SIGKILL)
            time.sleep(every_s)  # the fault's own rhythm, not synchronisation

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def damage_stores(paths: list[Path]) -> list[str]:
    """Damage store files three ways in turn: junk header, cut in half, broken JSON values."""
    done: list[str] = []
    for path in paths:  # fold the WAL into the file first, so cutting the file cuts the data
        db = sqlite3.connect(path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    kinds = ["junk header", "cut in half", "broken JSON"]
    for path in sorted(paths):
        db = sqlite3.connect(path)
        has_docs = db.execute("SELECT COUNT(*) FROM docs").fetchone()[0] > 0
        db.close()
        if not has_docs:
            continue  # an empty store has nothing to lose: damaging it proves nothing
        kind = kinds[len(done) % len(kinds)]
        if kind == "junk header":
            with open(path, "r+b") as fh:
                fh.write(b"\xde\xad" * 2048)
        elif kind == "cut in half":
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            os.truncate(path, path.stat().st_size // 2)
        else:
            db = sqlite3.connect(path)
            db.execute("UPDATE docs SET value = '{broken'")
            db.commit()
            db.close()
        done.append(f"{path.parent.name}/{path.name}: {kind}")
    return done
