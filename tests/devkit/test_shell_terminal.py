"""The shell on a real terminal under make, as `make run` starts it: Ctrl-C and Ctrl-D as a newcomer presses them.

Each test runs `make run` (a Makefile whose `run` is `python -m bot shell`, like the project's) on a pseudo-terminal
and types into it. Ctrl-C is the terminal's own: the 0x03 byte, which the terminal turns into SIGINT for its
foreground process group — exactly what a person's Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pty = pytest.importorskip("pty")
REPO = Path(__file__).resolve().parents[2]
PROMPT = "alice › "

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@dataclass
class Terminal:
    pid: int
    fd: int
    seen: str = ""
    status: int | None = None  # make's exit status, once it has ended
    _raw: bytes = field(default=b"", repr=False)

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def expect(self, needle: str, *, after: int = 0, timeout: float = 30.0) -> int:
        """Read until `needle` shows up after position `after`; returns the position just past it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.seen.find(needle, after)
            if found >= 0:
                return found + len(needle)
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} not shown within {timeout}s; the terminal shows:\n{self.seen}"
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the other side closed: everything has been read
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the terminal closed before {needle!r}; it showed:\n{self.seen}")
                self._raw += chunk
                self.seen = self._raw.decode("utf-8", errors="replace")

    def interrupt(self, then: str, *, after: int) -> int:
        """Press Ctrl-C until `then` shows up (at most 3 times); returns the position just past it.

        CPython's readline notices a SIGINT that lands while it is handling a key (rather than waiting for one)
        only at the next key or signal, so a person would press again; so does this, a few times at most.
        """
        for attempt in range(3):
            self.type("\x03")
            try:
                return self.expect(then, after=after, timeout=5.0 if attempt < 2 else 30.0)
            except AssertionError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def exit_status(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    self._raw += os.read(self.fd, 65536)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        raise AssertionError(f"make did not end within {timeout}s; the terminal shows:\n{self.seen}")


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Terminal]:
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"run:\n\t{sys.executable} -m bot shell\n", encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "TMPDIR": str(tmp_path),
    }
    pid, fd = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty, as in a terminal window
        try:
            # As a terminal window starts it: a suite run as a background job (`make test &` in a script, nohup)
            # inherits SIGINT ignored, and a Ctrl-C would then reach nobody (both full runs failed so).
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.chdir(tmp_path)
            os.execvpe("make", ["make", "--no-print-directory", "-f", str(makefile), "run"], env)
        finally:
            os._exit(127)
    terminal = Terminal(pid, fd)
    try:
        yield terminal
    finally:
        os.close(fd)  # a hang-up for whatever still runs on the terminal (the shell, in its own group, too)
        if terminal.status is None and os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, 9)
            os.waitpid(pid, 0)


def test_ctrl_c_clears_the_line_and_stops_a_wait_and_quit_exits_zero_through_make(make_run: Terminal) -> None:
    t = make_run
    at = t.expect(PROMPT)
    t.type("/snapshot delete 798")
    t.expect("delete 798", after=at)
    at = t.interrupt(PROMPT, after=at)  # Ctrl-C at the prompt: the line is dropped, nothing sent, the shell goes on
    t.type("\r")
    at = t.expect(PROMPT, after=at)

    t.type("/snapshot create 12345 pty-check\r")
    at = t.expect("started snapshot pty-check", after=at)
    t.type("/wait 120\r")
    at = t.expect("Ctrl-C stops waiting)", after=at)
    t.type("\x03")  # the simulator takes ~15 s: this Ctrl-C stops the wait, well before
    at = t.expect("(wait cancelled; still running: snapshot pty-check (#900) of web-server-01", after=at)
    at = t.expect(PROMPT, after=at)

    t.type("quit\r")
    t.expect("Bye.", after=at)
    assert t.exit_status() == 0  # make was not interrupted by the Ctrl-Cs: they were the shell's
    assert "Delete snapshot" not in t.seen  # the cleared line was never sent
    assert "Interrupt" not in t.seen and "Error" not in t.seen  # make says neither


def test_ctrl_d_leaves_with_exit_status_zero(make_run: Terminal) -> None:
    at = make_run.expect(PROMPT)
    make_run.type("\x04")
    make_run.expect("Bye.", after=at)
    assert make_run.exit_status() == 0
