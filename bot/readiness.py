"""Liveness and readiness: what `/livez` and `/readyz` (and `/healthz`, its alias) answer.

Rules this module keeps:
- Live means the process serves HTTP. It never touches the database or Slack: a database outage must not make
  Kubernetes restart every pod (which would not bring the database back, and would drop work in flight).
- Ready means this process can do its job now: the database answers, its schema is one this version can run on
  (`storage.db.SchemaState`: its own head, or a newer release's revision during a rolling upgrade), and Slack's
  `auth.test` has succeeded once for the bot token.
- Slack unreachable (or refusing the token) at start does not stop the process: `SlackAuthCheck` retries
  `auth.test` in the background with capped exponential backoff, and the process stays not ready until it passes.
- A probe never waits for another: while one check runs, concurrent probes get the last verdict.
- The answer names what is wrong in fixed words (`database unavailable`), never an exception's text, which may
  hold a URL with a password.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from storage.db import Database, SchemaState

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Verdict:
    ready: bool
    reasons: tuple[str, ...] = ()

    def body(self) -> bytes:
        if self.ready:
            return b"ready\n"
        return ("not ready: " + "; ".join(self.reasons) + "\n").encode("ascii", "replace")


class SlackAuthCheck:
    """Calls `auth.test` until it succeeds once, in a daemon thread, waiting 1, 2, 4 … up to 60 s (±20 %) between
    tries. `passed` is what readiness reads; `reason` says in Slack's own error code why not yet."""

    def __init__(
        self,
        auth_test: Callable[[], Any],
        *,
        first_retry: float = FIRST_RETRY_SECONDS,
        max_retry: float = MAX_RETRY_SECONDS,
    ) -> None:
        self._auth_test = auth_test
        self._first_retry, self._max_retry = first_retry, max_retry
        self._stop = threading.Event()
        self._passed = threading.Event()
        self.reason = "slack auth.test not yet tried"
        self._thread: threading.Thread | None = None

    @property
    def passed(self) -> bool:
        return self._passed.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="slack-auth-check", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float) -> bool:
        return self._passed.wait(timeout)

    def try_once(self) -> bool:
        try:
            self._auth_test()
        except SlackApiError as error:  # Slack answered: the token (or the app) is refused
            code = error.response.get("error") if error.response is not None else None
            self.reason = f"slack auth.test refused ({code if isinstance(code, str) else 'error'})"
            return False
        except Exception as error:  # network: the type says enough, the message may hold a URL
            self.reason = f"slack unreachable ({type(error).__name__})"
            return False
        self.reason = ""
        self._passed.set()
        return True

    def _run(self) -> None:
        delay = self._first_retry
        while not self._stop.is_set():
            if self.try_once():
                log.info("slack: auth.test passed; ready as far as Slack goes")
                return
            wait = delay * random.uniform(0.8, 1.2)
            log.warning("%s; not ready, trying again in %.0f s", self.reason, wait)
            if self._stop.wait(wait):
                return
            delay = min(delay * 2, self._max_retry)


class Readiness:
    """The readiness verdict of one process: database, schema and Slack (see the module's rules)."""

    def __init__(
        self,
        db: Database,
        slack: SlackAuthCheck | None,
        on_verdict: Callable[[bool], None] | None = None,
        takes_work: Callable[[], bool] = lambda: True,
    ) -> None:
        self._db = db
        self._slack = slack
        self._takes_work = takes_work  # False once the pools were shut down (draining): send no more traffic here
        self._on_verdict = on_verdict or (lambda _ready: None)  # the metrics' `ready` gauge
        # The migration files do not change while the process runs: read once, not on every probe.
        self._known, self._heads = db.known_revisions(), db.head_revisions()
        self._lock = threading.Lock()
        self._last = Verdict(False, ("not checked yet",))

    def check(self) -> Verdict:
        if not self._lock.acquire(blocking=False):
            return self._last  # another probe is checking right now
        try:
            self._last = self._check()
            self._on_verdict(self._last.ready)
            return self._last
        finally:
            self._lock.release()

    def _check(self) -> Verdict:
        reasons: list[str] = []
        if not self._takes_work():
            reasons.append("shutting down: takes no more work")
        try:
            state = self._db.schema_state(self._known, self._heads)
        except Exception:
            reasons.append("database unavailable")
        else:
            if state is SchemaState.MISSING:
                reasons.append("database has no snapshot-bot schema (run `snapshot-bot db upgrade`)")
            elif state is SchemaState.BEHIND:
                reasons.append("database schema is older than this version (run `snapshot-bot db upgrade`)")
        if self._slack is not None and not self._slack.passed:
            reasons.append(self._slack.reason)
        return Verdict(not reasons, tuple(reasons))
