"""Start detached processes with pid files, and stop only those we started (pid + marker check)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from choreo.stack.layout import StackLayout

# Every JVM the stack starts carries this system property with the state folder in its command
# line, so a pid file can never make us signal an unrelated process that reused the pid.
MARKER_PROPERTY = "choreo.stack"


def marker(layout: StackLayout, component: str) -> str:
    return f"-D{MARKER_PROPERTY}={layout.state_dir}#{component}"


def _cmdline(pid: int) -> str | None:
    proc = Path(f"/proc/{pid}/cmdline")
    try:
        if proc.exists():
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        out = subprocess.run(
            ["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _reap(pid: int) -> None:
    # A stack started by a long-lived Python process (the test fixture) is that process's child;
    # reap it so a finished JVM does not linger as a zombie that still "exists".
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def read_pid(layout: StackLayout, component: str) -> int | None:
    """The pid of a component if its pid file names a live process that we started."""
    path = layout.pid_file(component)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_ours(layout, component, pid) else None


# How long an empty command line may last before we take the process for someone else's.
EXEC_SETTLE_S = 1.0


def _settled_cmdline(pid: int) -> str | None:
    """The command line, waiting out the moment an exec leaves it empty.

    `Popen` returns once the child's close-on-exec descriptors are closed, which the kernel does
    before it writes the new program's arguments: for that instant /proc/PID/cmdline reads empty.
    A probe right after a spawn (the registry restart) took that for an exit. A live process we
    started always has arguments, so an empty read is retried for a bounded moment.
    """
    deadline = time.monotonic() + EXEC_SETTLE_S
    while True:
        cmdline = _cmdline(pid)
        if cmdline != "" or time.monotonic() >= deadline or _is_zombie(pid):
            return cmdline
        time.sleep(0.01)


def is_ours(layout: StackLayout, component: str, pid: int) -> bool:
    _reap(pid)
    if _is_zombie(pid):
        return False
    cmdline = _settled_cmdline(pid)
    # Whole-argument match: the marker of kafka-1 must not match kafka-1-format.
    return cmdline is not None and f" {marker(layout, component)} " in f" {cmdline} "


def spawn(layout: StackLayout, component: str, cmd: list[str], log: Path) -> int:
    """Start `cmd` detached from our session, output appended to `log`; writes the pid file."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=layout.state_dir,
            # Own session: Ctrl-C in the terminal that ran `choreo stack up` must not kill it.
            start_new_session=True,
            close_fds=True,
        )
    layout.pid_file(component).write_text(f"{proc.pid}\n")
    return proc.pid


def exited(layout: StackLayout, component: str, pid: int) -> bool:
    return not is_ours(layout, component, pid)


def stop(layout: StackLayout, components: list[str], grace_seconds: float = 30.0) -> list[str]:
    """SIGTERM the given components, SIGKILL whatever is left after the grace period.

    Returns the components that had to be killed. Pid files are removed either way.
    """
    running = {c: pid for c in components if (pid := read_pid(layout, c)) is not None}
    for pid in running.values():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_seconds
    pending = dict(running)
    while pending and time.monotonic() < deadline:
        pending = {c: p for c, p in pending.items() if not exited(layout, c, p)}
        if pending:
            time.sleep(0.1)
    killed = []
    for component, pid in pending.items():
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(component)
        except ProcessLookupError:
            pass
    kill_deadline = time.monotonic() + 10
    while pending and time.monotonic() < kill_deadline:
        pending = {c: p for c, p in pending.items() if not exited(layout, c, p)}
        if pending:
            time.sleep(0.05)
    for component in components:
        layout.pid_file(component).unlink(missing_ok=True)
    return killed
