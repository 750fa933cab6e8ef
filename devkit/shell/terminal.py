"""The interactive shell's terminal: Ctrl-C belongs to the shell, not to whatever started it.

`make run` starts the shell as a child of make, in make's process group. The terminal sends Ctrl-C's SIGINT to
that whole group, so make was interrupted too: it waited for the shell to end and then killed itself, and a clean
`quit` came out as exit status 130. Here the shell becomes a job of its own — its own process group, made the
terminal's foreground group — for as long as it runs, and gives the terminal back on the way out. Ctrl-C then
reaches only the shell (which clears the line, or stops a `/wait`), and `quit` or Ctrl-D exit 0 through make.

Rules this module keeps:
- Nothing changes unless stdin is a terminal whose foreground group is ours and we are not already its leader
  (started straight from an interactive shell, the shell already is a job of its own).
- The terminal always goes back to the group that had it, also when the shell fails.
- Ctrl-Z is ignored while the shell owns the terminal: its parent (make) would not know it had stopped, so
  nothing could resume it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def own_terminal(fd: int) -> Iterator[bool]:
    """Make this process the foreground job of terminal `fd` while the block runs; True if it had to."""
    try:
        previous = os.getpgrp()
        takes_over = os.isatty(fd) and previous != os.getpid() and os.tcgetpgrp(fd) == previous
    except OSError:
        takes_over = False
    if not takes_over:
        yield False
        return
    # A background group that touches the terminal's settings gets SIGTTOU (which stops it): not while we switch.
    old_ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    old_tstp = signal.signal(signal.SIGTSTP, signal.SIG_IGN)
    moved = False
    try:
        try:
            os.setpgid(0, 0)
            moved = True
            os.tcsetpgrp(fd, os.getpid())
        except OSError:  # not allowed here: back into the old group (a background group cannot read the terminal)
            if moved:
                with contextlib.suppress(OSError):
                    os.setpgid(0, previous)
            moved = False
        yield moved
    finally:
        if moved:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(fd, previous)
        signal.signal(signal.SIGTSTP, old_tstp)
        signal.signal(signal.SIGTTOU, old_ttou)
