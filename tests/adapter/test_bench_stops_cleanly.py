"""`python -m bench` stopped with SIGTERM (a CI timeout, `kill`) stops the servers it started: they run in sessions
of their own, so only the bench can stop them, and they used to be left running, orphaned, loading the machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.adapter.test_faults_process import eventually

ROOT = Path(__file__).resolve().parents[2]


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (zombies excluded: they are gone, only not yet reaped)."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent and fields[0] != "Z" and int(entry) not in found:
                found.add(int(entry))
                frontier.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_the_servers_the_bench_started(tmp_path: Path) -> None:
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench", "--smoke", "--only", "ack"],
        cwd=ROOT,
        stdout=(tmp_path / "out.txt").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started: set[int] = set()
    try:
        # The ack benchmark runs the bare Bolt app and the bot as gunicorn servers, each with its workers.
        started = eventually(lambda: (d := descendants(bench.pid)) and len(d) >= 4 and d, "the bench's servers")
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=60) == 130
        assert "interrupted: the servers this run started are stopped" in (tmp_path / "out.txt").read_text()
        eventually(lambda: not [pid for pid in started if alive(pid)], "every server the bench started to stop")
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait(timeout=10)
        for pid in started:  # whatever a failed run left behind must not load the rest of the suite
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
