"""The composition root: builds every service from Settings, once, and wires them together.

Layers, data flowing one way: Slack listeners → use cases → (VPS client, storage). Nothing below knows Slack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.auditing import audit_log
from bot.config import Settings
from bot.usecases.access import AccessPolicy
from bot.usecases.guard import Guard, count_mutations, oldest_counted_mutation
from bot.usecases.ratelimit import RateLimiter
from bot.usecases.snapshots import SnapshotService
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

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

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
    acknowledgement of new requests; excess work queues instead of blocking.
    """

    def __init__(self, threads: int) -> None:
        super().__init__(threads, "work")

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
class Services:
    settings: Settings
    db: Database
    audit: AuditLog
    vps: VpsClient
    access: AccessPolicy
    guard: Guard
    snapshots: SnapshotService
    work: BackgroundWork
    # Bolt's listener executor: listeners only parse, queue work and ack, so it never waits on VPS.org.
    listeners: TrackedPool = field(default_factory=lambda: TrackedPool(32, "listener"))
    extras: dict[str, Any] = field(default_factory=dict)

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
        self.db.dispose()


def build_services(
    settings: Settings,
    *,
    resolve_group: Callable[[str], Iterable[str]] | None = None,
    vps_transport: httpx.BaseTransport | None = None,
    database: Database | None = None,
    upgrade: bool = True,
) -> Services:
    db = database or Database(settings.database_url)
    if upgrade and db.needs_upgrade():
        db.upgrade()
    audit = audit_log(db)
    token = settings.vps_api_token.reveal() if settings.vps_api_token else ""
    vps = VpsClient(settings.vps_api_url, token, timeout=settings.vps_timeout_seconds, transport=vps_transport)
    access = AccessPolicy.from_settings(settings, resolve_group)
    limiter = RateLimiter(
        settings.rate_limit,
        count_mutations(audit),
        oldest_in_window=oldest_counted_mutation(audit, settings.rate_limit.count) if settings.rate_limit else None,
    )
    guard = Guard(access, limiter, audit, extra_channels=(settings.approval_channel,))
    snapshots = SnapshotService(vps=vps, audit=audit, guard=guard)
    return Services(
        settings=settings,
        db=db,
        audit=audit,
        vps=vps,
        access=access,
        guard=guard,
        snapshots=snapshots,
        work=BackgroundWork(settings.worker_threads),
    )
