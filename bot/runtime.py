"""The Core: the use cases, storage, VPS.org client and thread pools of one process, as typed fields.

Nothing here knows Slack. The Core is built once, by the composition root (bot/wiring.py), and handed to the
Slack side; use cases get their collaborators as constructor arguments, never by looking them up.
Layers, data flowing one way: Slack listeners → use cases → (VPS client, storage).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.usecases.access import AccessPolicy
from bot.usecases.approval_reminders import Reminders
from bot.usecases.approvals import ApprovalService
from bot.usecases.audit_view import AuditReader
from bot.usecases.create_help import CreateHelp
from bot.usecases.deliveries import Deliveries
from bot.usecases.guard import Guard
from bot.usecases.home import HomeQueries
from bot.usecases.mfa import MfaService
from bot.usecases.pending import PendingQueries
from bot.usecases.pins import PinService
from bot.usecases.recovery import Recovery
from bot.usecases.schedule_runner import ScheduleRunner
from bot.usecases.schedules import ScheduleService
from bot.usecases.snapshots import SnapshotService
from bot.usecases.step_up import StepUp
from bot.usecases.tracking import Tracker
from bot.vps.client import VpsClient
from storage.audit import AuditLog
from storage.db import Database

log = logging.getLogger(__name__)


class TrackedPool(ThreadPoolExecutor):
    """A thread pool that can say when it is idle (for tests, the shell and graceful shutdown)."""

    def __init__(self, threads: int, name: str) -> None:
        super().__init__(max_workers=threads, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()
        self._shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def healthy(self) -> bool:
        """For `/healthz`: the pool still takes work (it has not been shut down). Never raises."""
        return not self._shut_down

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shut_down = True
        super().shutdown(wait=wait, cancel_futures=cancel_futures)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        with self._lock:
            pending = list(self._pending)
        if not pending:
            return True
        _, not_done = wait_futures(pending, timeout=max(0.0, timeout))
        return not not_done


class BackgroundWork(TrackedPool):
    """Runs the slow part of a request after Slack has been acknowledged.

    Its own pool, separate from Bolt's listener executor, so slow VPS.org calls can never delay the
    acknowledgement of new requests; excess work queues instead of blocking — up to `max_queued` jobs for
    `offer`: past that, a user's request is turned away at the ack ("busy, nothing was done") instead of
    joining a queue that would grow without bound (memory, and replies minutes late) while requests arrive
    faster than they finish. `submit` (the bot's own small bookkeeping jobs) is never refused.
    """

    def __init__(self, threads: int, max_queued: int = 0, on_shed: Callable[[], None] | None = None) -> None:
        super().__init__(threads, "work")
        self.threads = threads
        self.max_queued = max_queued  # 0: no bound
        self._on_shed = on_shed
        # Users' jobs and what tells their user "nothing was done" if the job is never started (shutdown).
        self._tell_abandoned: dict[Future[Any], Callable[[], None]] = {}

    def backlog(self) -> int:
        """Jobs submitted and not yet started (approximately: those not finished beyond one per thread)."""
        with self._lock:
            return max(0, len(self._pending) - self.threads)

    def offer(self, job: Callable[[], Any], *, on_abandoned: Callable[[], None] | None = None) -> bool:
        """Queue a user's job unless the backlog is full; False (nothing queued) when it is.

        `on_abandoned` tells the user nothing was done if the process shuts down before the job started
        (`abandon_queued`)."""
        if self.max_queued and self.backlog() >= self.max_queued:
            if self._on_shed is not None:
                self._on_shed()
            return False
        future = self.submit(job)
        if on_abandoned is not None:
            with self._lock:
                if not future.done():
                    self._tell_abandoned[future] = on_abandoned
        return True

    def _finished(self, future: Future[Any]) -> None:
        super()._finished(future)
        with self._lock:
            self._tell_abandoned.pop(future, None)

    def abandon_queued(self, budget_seconds: float) -> tuple[int, int]:
        """Cancel every user's job not started yet and tell its user, in parallel, for at most `budget_seconds`.

        For the end of a shutdown drain: a job cancelled before it started has changed nothing (its intent row is
        written inside it). Returns (jobs cancelled, users told in time)."""
        with self._lock:
            waiting = list(self._tell_abandoned.items())
        tell = [callback for future, callback in waiting if future.cancel()]
        if not tell:
            return 0, 0
        pool = ThreadPoolExecutor(max_workers=min(8, len(tell)), thread_name_prefix="abandoned")
        try:
            done, _ = wait_futures([pool.submit(callback) for callback in tell], timeout=budget_seconds)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # past the budget: the rest go untold (logged)
        return len(tell), sum(1 for f in done if f.exception() is None)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return super().submit(self._run, fn, *args, **kwargs)

    @staticmethod
    def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:
            log.exception("background job %s failed", getattr(fn, "__name__", fn))
            raise

    def shutdown(self, wait: bool = True, *, cancel_futures: bool | None = None) -> None:
        super().shutdown(wait=wait, cancel_futures=(not wait) if cancel_futures is None else cancel_futures)


@dataclass
class Core:
    settings: Settings
    db: Database
    audit: AuditLog
    vps: VpsClient
    access: AccessPolicy
    guard: Guard
    snapshots: SnapshotService
    approvals: ApprovalService
    tracking: Tracker
    recovery: Recovery
    home: HomeQueries  # what the App Home tab shows one person
    pending: PendingQueries  # what `/snapshot pending` shows
    create_help: CreateHelp  # before a create: room on the server, the servers the form offers
    work: BackgroundWork
    deliveries: Deliveries  # which Slack deliveries were handled (storage.deliveries.DeliveryLog)
    audit_reader: AuditReader  # `/snapshot audit`: admins read everyone's events, others their own
    schedules: ScheduleService  # /snapshot schedule, schedules, unschedule
    schedule_runner: ScheduleRunner  # the ticker runs due slots and retention through it
    reminders: Reminders  # the ticker reminds and escalates waiting requests through it
    mfa: MfaService  # authenticators for the TOTP step-up (/snapshot mfa …)
    step_up: StepUp  # the step-up before approving (APPROVAL_STEP_UP)
    pins: PinService  # /snapshot pin, unpin
    # Bolt's listener executor: listeners only parse, queue work and ack, so it never waits on VPS.org.
    listeners: TrackedPool = field(default_factory=lambda: TrackedPool(32, "listener"))

    def healthy(self) -> bool:
        """For `/healthz`: both pools take work and the database answers. Never raises."""
        return self.work.healthy() and self.listeners.healthy() and self.db.ping()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until Bolt's listeners and the background work have all finished (listeners may queue work)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.listeners.wait_idle(deadline - time.monotonic()):
                return False
            if not self.work.wait_idle(deadline - time.monotonic()):
                return False
            if self.listeners.wait_idle(0) and self.work.wait_idle(0):
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        self.work.shutdown(wait=False)
        self.listeners.shutdown(wait=False, cancel_futures=True)
        self.vps.close()
        with contextlib.suppress(Exception):  # the newest audit rows chained before the process ends
            self.audit.seal()
        self.db.dispose()
