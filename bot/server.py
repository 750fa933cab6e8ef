"""Production serving: gunicorn (threads) in HTTP mode; the background ticker in every process.

Rules kept here: each worker builds its own bot after the fork; once built, its start-up heap is frozen out of
the cyclic garbage collector (`settle_heap`), so a full collection never walks the ~100,000 objects every
library import leaves behind while acknowledgements wait for the interpreter (issue 19 §3), and the interpreter
switches threads every millisecond, so an ack never waits long behind post-ack work (issue 27 §6).
Requests reach a thread only once read whole (bot/http_worker.py); SIGTERM stops the ticker at once, and the
worker's exit drains the post-ack work before anything else can touch it (issue 25 §6).
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from bot.config import LogFormat, Settings
from bot.memwatch import MemoryWatch, watch_from_settings
from bot.metrics_server import prepare_multiprocess_dir, start_multiprocess_server, worker_exited

if TYPE_CHECKING:  # imported where used: under gunicorn the metrics directory must be set before it loads
    from bot.wiring import Bot

log = logging.getLogger(__name__)

# gunicorn's graceful_timeout is the drain (SNAPSHOT_DRAIN_SECONDS, default 25) plus this, for in-flight requests.
GRACEFUL_MARGIN_SECONDS = 5
# The share of the drain after which jobs still queued (not started) are cancelled and their users told, so the
# rest of it is left to the jobs already running (a VPS.org call takes at most the client timeout, 10 s default).
ABANDON_AT = 0.6
TELL_ABANDONED_SECONDS = 3.0
# How long a thread may hold the interpreter while another waits for it (CPython's default is 5 ms). An ack thread
# takes and gives back the interpreter a dozen times (each socket read and write); behind 16 post-ack threads
# rendering and parsing, each wait was up to 5 ms. Measured (bench row 1a, VPS.org at 50 ms, so post-ack work runs
# among the acks): bot p99 ÷ bare Bolt p99 3.45× → 1.39× median; with VPS.org slow (row 1) unchanged.
SWITCH_INTERVAL_SECONDS = 0.001


def start_bot(settings: Settings) -> Bot:
    """Build the bot, apply pending migrations, warn loudly in open mode, and start background work."""
    from bot.wiring import build_bot, start_background

    bot = build_bot(settings)
    if bot.core.access.open_mode:
        log.warning(
            "ACCESS CONTROL IS OFF: no SNAPSHOT_VIEWERS/OPERATORS/APPROVERS/ADMINS configured, so everyone in the "
            "workspace can create, delete and request restores (approving one's own restore is still refused)."
        )
    warn_about_audit_witness(bot)
    start_background(bot)
    return bot


def settle_heap() -> None:
    """Collect start-up garbage once, then move everything alive into the collector's permanent generation.

    The bot's process holds ~3× the container objects of a bare Bolt app (SQLAlchemy, Alembic, slack_sdk models,
    httpx): every full (generation 2) collection walked all of them, ~65 ms of CPU with the interpreter held, two
    or three times in a burst of 300 commands, and every acknowledgement in that process waited it out. Frozen,
    a full collection only walks what was made after start-up (~15 ms). What is frozen was alive for good anyway
    (modules, the app, the pools); it is still freed by reference counting, only no longer scanned for cycles.
    Call it once per long-lived process, after the bot is built (not in tests: they build and drop many bots).
    """
    gc.collect()
    gc.freeze()


def warn_about_audit_witness(bot: Bot) -> None:
    """Say at start-up whether the audit trail is witnessed, and say loudly if its chain head row is missing."""
    from bot.audit_witness import NOT_WITNESSED
    from storage.checkpoints import chain_head_missing

    witness = bot.witness
    if witness is None:
        log.warning(NOT_WITNESSED)
    else:
        log.info(witness.describe())
        if not (bot.settings.audit_checkpoint_channel or bot.settings.audit_checkpoint_file):
            log.warning("audit checkpoints stay in the database: set AUDIT_CHECKPOINT_CHANNEL or AUDIT_CHECKPOINT_FILE")
    if chain_head_missing(bot.core.db):
        log.error(
            "AUDIT CHAIN HEAD IS MISSING: the audit_chain_head row was deleted, so the newest events may have been "
            "cut. Every action is refused until an operator runs `python -m bot audit verify --checkpoints FILE` "
            "and then `python -m bot audit reanchor`."
        )


def drain(bot: Bot, timeout: float) -> bool:
    """Graceful shutdown of one process: finish the work queued after acks, then stop and close everything.

    The work pool holds what users were promised with the acknowledgement (the VPS.org call, its outcome row,
    the reply); cutting it off would leave an intent without its outcome. Tracking leases are given back so the
    next process resumes at once instead of waiting for them to expire. Returns False if work was still running
    at the deadline (logged; the recovery sweep of the next process flags anything left half done).
    """
    log.info("shutdown: draining post-ack work (up to %.0fs)", timeout)
    deadline = time.monotonic() + timeout
    if bot.ticker is not None:
        bot.ticker.stop()  # no new housekeeping rounds while draining
    finished = bot.core.wait_idle(timeout * ABANDON_AT)  # listeners may still be queuing work
    if not finished:
        # What has not started by now would not finish either: cancelled (nothing was done) and its user told so,
        # instead of being cut off silently at the end.
        cancelled, told = bot.core.work.abandon_queued(min(TELL_ABANDONED_SECONDS, timeout * (1 - ABANDON_AT) / 2))
        if cancelled:
            log.warning("shutdown: %d queued requests were never started; %d of their users were told", cancelled, told)
        finished = bot.core.wait_idle(max(0.0, deadline - time.monotonic()))
    if not finished:
        log.warning("shutdown: background work still running after %.0fs; leaving it to the recovery sweep", timeout)
    bot.close()  # also hands tracking leases back
    log.info("shutdown: worker drained (%s)", "clean" if finished else "timed out")
    return finished


def gunicorn_options(settings: Settings, workers: int | None, threads: int | None) -> dict[str, Any]:
    """gunicorn's settings for `serve` (the hooks are added by the server itself)."""
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": workers or settings.web_concurrency,
        # gthread whose event loop reads each request whole before a thread takes it: half-sent requests and
        # silent connections never hold a thread (bot/http_worker.py, issue 24 §1).
        "worker_class": "bot.http_worker.BufferingThreadWorker",
        "threads": threads or 16,
        "timeout": 60,
        # SIGTERM: stop accepting, let in-flight requests finish, then drain post-ack work (worker_exit).
        "graceful_timeout": int(settings.drain_seconds) + GRACEFUL_MARGIN_SECONDS,
        "keepalive": 5,
        # Recycle a worker after max_requests (+ random 0..jitter, so workers don't restart together): the guard
        # against slow memory growth. The old worker stops accepting and drains exactly as on SIGTERM.
        "max_requests": settings.max_requests,
        "max_requests_jitter": settings.max_requests_jitter if settings.max_requests else 0,
        "accesslog": None,
        "loglevel": settings.log_level.lower(),
        # gunicorn 27's control socket lives in $HOME (shared by every server of the user; absent on a read-only
        # root filesystem): the bot is stopped with signals, as platforms do.
        "control_socket_disable": True,
    }


def _json_gunicorn_logger() -> type:
    """gunicorn's logger with its handlers writing JSON lines (LOG_FORMAT=json), redacted like the bot's."""
    from gunicorn.glogging import Logger

    from bot.logging_setup import JsonFormatter

    class JsonLogger(Logger):  # type: ignore[misc]  # gunicorn is untyped (pyproject [tool.mypy])
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for logger in (self.error_log, self.access_log):
                for handler in logger.handlers:
                    handler.setFormatter(JsonFormatter())

    return JsonLogger


def serve(settings: Settings, *, workers: int | None = None, threads: int | None = None) -> int:
    # First of all: where workers keep their metric values (prometheus_client reads it when first imported).
    metrics_dir = prepare_multiprocess_dir(given=settings.metrics_dir) if settings.metrics_port else None
    from gunicorn.app.base import BaseApplication

    class SnapshotBotServer(BaseApplication):  # type: ignore[misc]
        def __init__(self) -> None:
            self.bot: Bot | None = None
            self.memwatch: MemoryWatch | None = None
            super().__init__()

        def load_config(self) -> None:
            cfg: dict[str, Any] = {**gunicorn_options(settings, workers, threads), "worker_exit": self._worker_exit}
            if settings.log_format == LogFormat.JSON:
                cfg["logger_class"] = _json_gunicorn_logger()
            if metrics_dir is not None:
                cfg["when_ready"] = self._start_metrics  # in the master, once, before the first worker
                cfg["child_exit"] = self._child_exit  # in the master, for each worker that ended
                cfg["on_exit"] = self._on_exit
            for key, value in cfg.items():
                self.cfg.set(key, value)

        def _start_metrics(self, _arbiter: Any) -> None:
            assert metrics_dir is not None and settings.metrics_port is not None
            start_multiprocess_server(settings.metrics_port, settings.host, metrics_dir.path)
            log.info("metrics: /metrics on %s:%d (multiprocess)", settings.host, settings.metrics_port)

        def _child_exit(self, _arbiter: Any, worker: Any) -> None:
            worker_exited(worker.pid)

        def _on_exit(self, _arbiter: Any) -> None:
            if metrics_dir is not None:
                metrics_dir.remove()

        def load(self) -> Any:
            # Each worker builds its own bot (connections and threads don't survive fork).
            # Before the bot, so its allocations are traced too.
            self.memwatch = watch_from_settings(settings.tracemalloc_dir, settings.tracemalloc_seconds)
            self.bot = start_bot(settings)
            settle_heap()
            sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
            return self.bot.wsgi

        def worker_stopping(self) -> None:
            """SIGTERM reached this worker (bot/http_worker.py calls it from the signal handler): stop the ticker
            now, in a thread of its own, so no recovery sweep runs while gunicorn lets the last requests finish
            and the drain has yet to start; a sweep would flag work still in flight as `needs_check`."""
            if self.bot is not None and self.bot.ticker is not None:
                threading.Thread(target=self.bot.ticker.stop, name="stop-ticker", daemon=True).start()

        def _worker_exit(self, _arbiter: Any, _worker: Any) -> None:
            # Runs in the worker after its last request; self.bot is that worker's bot (set by load()).
            if self.bot is not None:
                drain(self.bot, settings.drain_seconds)
            if self.memwatch is not None:
                self.memwatch.stop()

    # Migrations once, before workers start, so they don't race each other.
    from storage.db import Database

    database = Database(settings.database_url)
    if database.needs_upgrade():
        database.upgrade()
    database.dispose()
    SnapshotBotServer().run()
    return 0
