"""Child processes with their output in a log file: `choreo worker`, `choreo run`, the CLI, and
the bench's own scripts. Stopped by pid, never by name; a stop is bounded (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from choreo.settings import Settings
from harness.env import SAGA_DOMAINS, child_env, python_env
from harness.paths import REPO

CHOREO = [sys.executable, "-m", "choreo.cli.main"]


class ChildProcess:
    """One child process started from the repository root, its output appended to `log_path`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def peak_rss_mib(self) -> float:
        """The process's peak resident set (VmHWM) so far, in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmHWM for pid {self.pid}")

    def wait(self, timeout: float = 120) -> int:
        """The exit code; subprocess.TimeoutExpired if the process is still running by then."""
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def kill9(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        return self.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (a worker finishes its batch and commits), SIGKILL if it hangs (-9 then)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return -9

    def close(self) -> None:
        """Kill the process if it still runs; close its log either way."""
        if self.alive():
            self.kill9()
        self._log.close()


def start_worker(
    settings: Settings, service: str, log_dir: Path, instance: str = "0",
    domains: str = SAGA_DOMAINS, log_level: str | None = None, **env: str,
) -> ChildProcess:
    """`choreo worker <service> --instance <instance>` on the slice of `settings`."""
    argv = [*CHOREO, "worker", service, "--instance", instance]
    if log_level is not None:
        argv += ["--log-level", log_level]
    name = f"{service}-{instance}"
    return ChildProcess(name, argv, child_env(settings, domains, **env),
                        log_dir / f"{name}-{time.monotonic_ns()}.log")


def start_run(
    settings: Settings, log_path: Path, domains: str = SAGA_DOMAINS, args: Sequence[str] = (),
    **env: str,
) -> ChildProcess:
    """`choreo run [args]`: every service of `domains` supervised, its output appended to `log_path`."""
    return ChildProcess("run", [*CHOREO, "run", *args], child_env(settings, domains, **env), log_path)


def start_module(
    name: str, python: Path | str, module: str, args: list[str], log_dir: Path,
    env: dict[str, str] | None = None,
) -> ChildProcess:
    """`python -m module args...` from the repository root (the bench's own scripts)."""
    return ChildProcess(name, [str(python), "-m", module, *args], {**python_env(), **(env or {})},
                        log_dir / f"{name}-{time.monotonic_ns()}.log")


def run_cli(
    settings: Settings, *args: str, domains: str = SAGA_DOMAINS, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the `choreo` CLI to its end against the slice of `settings`; output captured."""
    return subprocess.run(
        [*CHOREO, *args], env=child_env(settings, domains, **env),
        capture_output=True, text=True, cwd=REPO, timeout=timeout,
    )


def pid_running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its parent counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status.lower()


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `predicate()` until it is true; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)  # polling interval, not synchronisation: the deadline decides
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def worker_children(supervisor_pid: int) -> dict[str, int]:
    """service -> pid of the `choreo worker` children of a `choreo run` process (one instance
    per service; see worker_instances for more)."""
    return {service: pid for (service, _instance), pid in worker_instances(supervisor_pid).items()}


def worker_instances(supervisor_pid: int) -> dict[tuple[str, str], int]:
    """(service, instance id) -> pid of the `choreo worker` children of a `choreo run` process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == supervisor_pid and b"worker" in cmd:
            service = cmd[cmd.index(b"worker") + 1].decode()
            instance = cmd[cmd.index(b"--instance") + 1].decode() if b"--instance" in cmd else "0"
            out[(service, instance)] = int(entry.name)
    return out
