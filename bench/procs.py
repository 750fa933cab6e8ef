"""Subprocesses for the benchmarks: start a server, wait until it answers, read its workers' memory, stop it.

Everything stays on loopback. A server runs in a scratch directory (so a developer's `.env` cannot change what
is measured) with the repository on PYTHONPATH (so `bench.*` modules import there too).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
# Servers started and not stopped yet: an interrupted run stops them all (`stop_all`), even one interrupted
# between starting a server and entering the `with` block that would have stopped it.
_RUNNING: set[ServerProcess] = set()


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The bench's environment plus `extra`, with the repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; TimeoutError naming `what` when the deadline passes first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(interval)


def children(pid: int) -> list[int]:
    """Direct child pids of `pid`, from /proc (gunicorn's workers are children of its master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # Field 4 is the parent pid; the command name (field 2) may contain spaces, so split after ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of `pid` so far (fields 14 and 15 of /proc/<pid>/stat, in ticks).

    Unlike a latency, CPU time hardly moves with the machine's other load, so it compares the work two servers
    do per request even on a busy machine (to one clock tick, 10 ms, per reading)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields from the 3rd on: utime and stime are 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, field: str) -> int:
    """A kB field of /proc/<pid>/status, e.g. VmRSS (resident now) or VmHWM (resident peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


def run_with_peak_rss(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, stdout: Any, stderr: Any, interval: float = 0.02
) -> tuple[float, int, int]:
    """Run `argv` to its end: (seconds, exit code, the child's own peak RSS in kB).

    The peak is the child's VmHWM, read from /proc while it runs (exec gives it a fresh address space, so the
    mark is its own). Not `ru_maxrss` from wait4: Linux carries the parent's high-water mark into a forked
    child across exec, so under a large parent every small child reads the parent's peak. The last reading
    before the child exits is kept; a zombie's /proc has no Vm fields left to read.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdout=stdout, stderr=stderr)
    peak = 0
    while proc.poll() is None:
        with contextlib.suppress(OSError, KeyError, ValueError):  # exiting now: the last reading stands
            peak = max(peak, status_kb(proc.pid, "VmHWM"))
        time.sleep(interval)
    return time.perf_counter() - started, proc.returncode, peak


class ServerProcess:
    """A server started as a subprocess in its own session, its output kept in a log file for diagnosis."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches the bench, which then stops this cleanly
        )
        _RUNNING.add(self)

    def wait_healthy(self, timeout: float = 60.0, path: str = "/healthz") -> None:
        def answered() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; log: {self.log_tail()}")
            try:
                return httpx.get(self.url + path, timeout=2.0, trust_env=False).status_code < 500
            except httpx.HTTPError:
                return False

        wait_until(answered, timeout, f"the server on port {self.port} answering {path}", interval=0.1)

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def worker_cpu_seconds(self) -> float:
        """CPU time used so far by all workers together (see `cpu_seconds`)."""
        return sum(cpu_seconds(pid) for pid in self.workers())

    def worker_rss_kb(self) -> dict[int, int]:
        return {pid: status_kb(pid, "VmRSS") for pid in self.workers()}

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " / ".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the master (so it stops spawning), SIGKILL to workers still busy, then the master."""
        _RUNNING.discard(self)
        if self.proc.poll() is None:
            workers = self.workers()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Workers wait for queued background work at exit; the bench has what it needs already.
                for pid in workers:
                    with contextlib.suppress(ProcessLookupError):  # it finished after all
                        os.kill(pid, signal.SIGKILL)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=timeout)
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def python() -> str:
    return sys.executable


def stop_piped(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """Stop a helper process driven through its stdin: closing stdin asks it to leave; killed if it does not."""
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
    if proc.stdout is not None:
        proc.stdout.close()


def stop_all() -> None:
    """Stop every server still running (an interrupted run: Ctrl-C or SIGTERM)."""
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop(timeout=5.0)
