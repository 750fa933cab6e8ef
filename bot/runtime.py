"""The composition root: builds every service from Settings, once, and wires them together.

Layers, data flowing one way: Slack listeners → use cases → (VPS client, storage). Nothing below knows Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.config import Settings
from bot.usecases.access import AccessPolicy
from bot.usecases.guard import Guard, count_mutations, oldest_counted_mutation
from bot.usecases.ratelimit import RateLimiter
from bot.usecases.snapshots import SnapshotService
from bot.vps.client import VpsClient
from storage.audit import AuditLog
from storage.db import Database

log = logging.getLogger(__name__)


class BackgroundWork:
    """Runs the slow part of a request after Slack has been acknowledged.

    Its own pool, separate from Bolt's listener executor, so slow VPS.org calls can never delay the
    acknowledgement of new requests; excess work queues instead of blocking.
    """

    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="work")
        self._pending: set[Future[Any]] = set()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        future = self._pool.submit(self._run, fn, *args, **kwargs)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    @staticmethod
    def _run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:
            log.exception("background job %s failed", getattr(fn, "__name__", fn))
            raise

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """For tests and graceful shutdown: wait until queued work has finished."""
        import concurrent.futures as cf

        pending = list(self._pending)
        if not pending:
            return True
        _, not_done = cf.wait(pending, timeout=timeout)
        return not not_done

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)


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
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.work.shutdown(wait=False)
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
    audit = AuditLog(db)
    token = settings.vps_api_token.reveal() if settings.vps_api_token else ""
    vps = VpsClient(
        settings.vps_api_url, token, timeout=settings.vps_timeout_seconds, transport=vps_transport
    )
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
