"""`/wait [seconds]`: wait, up to a deadline, for the work the bot is following to end, then say how it went.

Rules this module keeps:
- "Done" means all of it: no tracked operation (a snapshot being taken, a server being restored) still
  `tracking`, no approved restore still taking its safety snapshot (on any replica), Bolt's listeners and the
  background pool idle, and every card and notification update the bot made on the way rendered before `/wait`
  returns. So in a script a completion appears at a predictable point: before
  the line that follows `/wait`.
- While waiting the bot is asked to poll now and again (a forced tick), not only every POLL_SECONDS.
- The answer names what ended (and how) or, on timeout or Ctrl-C, what is still running — a restore taking its
  safety snapshot included (read from the request's stored safety step, as App Home's "In progress" does). It
  never hangs: the deadline holds, and Ctrl-C cancels the wait (the work itself goes on).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bot.usecases.approval_safety import safety_name, taking_safety_snapshot

if TYPE_CHECKING:
    from bot.usecases.approvals import RequestView
    from bot.usecases.tracking import Operation

DEFAULT_WAIT = 60.0  # seconds: a simulated snapshot takes ~15 s and a simulated restore ~10 s
MAX_WAIT = 3600.0
SIMULATOR_STEP = 0.5  # seconds between checks against the in-process simulator
REAL_ACCOUNT_STEP = 3.0  # gentler on a real account's API
WAIT_USAGE = "Usage: /wait [seconds] — e.g. /wait 30 (default 60, at most 3600; /wait 0 checks once)."
_ENDINGS = {"done": "finished", "failed": "failed", "timeout": "timed out (the bot stopped following it)"}


def parse_wait(argument: str) -> float | None:
    """The seconds `/wait` was given (the default when none), or None when it is not a number in range."""
    if not argument.strip():
        return DEFAULT_WAIT
    try:
        seconds = float(argument.strip().rstrip("s"))
    except ValueError:
        return None
    if not 0 <= seconds <= MAX_WAIT:  # NaN fails this too
        return None
    return seconds


def describe(op: Operation) -> str:
    """One tracked operation, as a person would name it."""
    if op.kind == "restore":
        return f"restore of {op.snapshot_name} (#{op.snapshot_id}) onto {op.server_name}"
    return f"snapshot {op.snapshot_name} (#{op.snapshot_id}) of {op.server_name}"


def describe_safety_step(request: RequestView) -> str:
    """A restore whose safety snapshot is being taken (not a tracked operation yet), as a person would name it."""
    since = request.decided_at.strftime("%H:%M UTC") if request.decided_at else "an unknown time"
    return (
        f"restore #{request.id} of {request.snapshot_name} on {request.server_name}: "
        f"taking the safety snapshot {safety_name(request.id)} (since {since})"
    )


class Waiting:
    """`/wait` for `Shell`."""

    def _wait(self, argument: str) -> None:
        seconds = parse_wait(argument)
        if seconds is None:
            self._write(WAIT_USAGE)
            return
        from bot.wiring import ticker_for

        bot = self._running()
        tracking = bot.core.tracking
        ticker = bot.ticker or ticker_for(bot, self.poll_interval)
        step = SIMULATOR_STEP if self.simulator is not None else REAL_ACCOUNT_STEP
        started = time.monotonic()
        deadline = started + seconds
        watched: dict[int, Operation] = {}
        running: list[Operation] = []
        idle = False
        self._drain()
        try:
            if self.interactive:
                note = f"(waiting up to {seconds:g} s for running work to end; Ctrl-C stops waiting)"
                self._write(self.style.dim(note))
            while True:
                self._settle(max(0.0, deadline - time.monotonic()))  # a click's work may start an operation
                watched.update((op.id, op) for op in tracking.active(limit=100))
                ticker.tick(poll_now=True)
                idle = self._settle(max(0.0, deadline - time.monotonic()))
                self._drain()  # cards and notifications first, then the summary
                running = tracking.active(limit=100)
                watched.update((op.id, op) for op in running)
                if idle and not running and not self._safety_steps():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._stopping.wait(min(step, left))
        except KeyboardInterrupt:
            if self.interactive:
                self._write("")  # the terminal echoed ^C without a line break
            self._drain()
            running = tracking.active(limit=100)
            idle = bot.core.wait_idle(0)
            self._write(self.style.dim("(wait cancelled" + self._still_running(running, idle) + ")"))
            return
        self._write(self.style.dim(self._wait_summary(watched, running, idle, time.monotonic() - started)))

    def _wait_summary(self, watched: dict[int, Operation], running: list[Operation], idle: bool, took: float) -> str:
        tracking = self._running().core.tracking
        ended = []
        for op_id, op in sorted(watched.items()):  # in the order they were started
            if any(r.id == op_id for r in running):
                continue
            now = tracking.get(op_id) or op
            ended.append(f"{describe(now)}: {_ENDINGS.get(now.state, now.state)}")
        after = f"after {took:.0f} s" if took >= 1 else f"after {took:.1f} s"
        if not running and idle and not self._safety_steps():
            if not ended:
                return "(nothing to wait for: the bot is not following any work)"
            return f"(done {after}: " + "; ".join(ended) + ")"
        done = f"; ended: {'; '.join(ended)}" if ended else ""
        return f"(stopped waiting {after}{done}" + self._still_running(running, idle) + ")"

    def _still_running(self, running: list[Operation], idle: bool) -> str:
        parts = [f"{describe(op)} — {(op.last_status or 'in progress').replace('_', ' ')}" for op in running]
        safety = [describe_safety_step(r) for r in self._safety_steps()]
        parts.extend(safety)
        if not idle and not safety:  # a safety step is what keeps the bot busy: it is named above
            parts.append("a request the bot is still answering")
        if not parts:
            return ""
        when = "it ends" if len(parts) == 1 else "they end"
        return "; still running: " + "; ".join(parts) + f" — shown here when {when}, or /wait again"

    def _safety_steps(self) -> list[RequestView]:
        try:
            return [r for r in self._running().core.approvals.open_requests() if taking_safety_snapshot(r)]
        except Exception:  # the database is the bot's: a bad moment of it must not end the wait
            return []
