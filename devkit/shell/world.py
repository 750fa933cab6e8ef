"""Booting the fake world the shell runs the bot in: a FakeSlack on loopback whose directory knows the demo users
and channels, a fresh signing secret, the VPS.org simulator over an in-process transport (or the real account
when VPS_API_TOKEN is set), its own database (never DATABASE_URL: `/as bob` approvals must never reach a real
audit trail) unless SHELL_DATABASE_URL or `--database-url` names one, and the production bot
built from those settings with its background work started, and the process's log lines sent to a file (the
terminal is the conversation; errors are also noted there briefly). `close()` undoes all of it, even half-started.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Self

from bot.config import Secret
from bot.logging_setup import log_to_file
from bot.redaction import redact
from devkit.fake_slack import FakeSlack
from devkit.local import IN_PROCESS_VPS_URL
from devkit.slack_driver import SlackDriver, wsgi_sender
from storage.db import safe_url

if TYPE_CHECKING:
    from bot.wiring import Bot


DEMO_USERS = {"alice": "U0ALICE", "bob": "U0BOB"}
SHELL_CHANNEL = "C0OPS"
SHELL_CHANNEL_NAME = "ops"
BOT_NAME = "snapshot-bot"
DEFAULT_COMPLETION_DELAY = 15.0  # long enough to see "in progress", short enough to wait for "completed"
DEFAULT_POLL_INTERVAL = 2.0
# Reminders and escalation come sooner in the shell than in production (15 and 30 min), so trying it shows them.
SHELL_REMIND_SECONDS = 30.0
SHELL_ESCALATE_SECONDS = 60.0
SHELL_DATABASE_URL = "sqlite:///snapshot-bot-shell.db"  # against a real VPS.org account, without SHELL_DATABASE_URL
_USER_NAME = re.compile(r"^[a-z0-9]{1,12}$")


def _sooner(configured: float, shell: float) -> float:
    """A reminder interval for the shell: at most `shell` seconds, and still off (0) when switched off."""
    return min(configured, shell) if configured > 0 else 0.0


def user_id_for(name: str) -> str:
    """The Slack user id the shell uses for `name`: the demo ids for alice and bob, a stable one otherwise."""
    name = name.strip().lstrip("@").lower()
    if name in DEMO_USERS:
        return DEMO_USERS[name]
    if _USER_NAME.match(name):
        return "U0" + name.upper()
    return "U1" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10].upper()


class ShellWorld:
    """The fake world of one shell session; `Shell` adds the conversation on top."""

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()  # a half-started shell still has a fake Slack thread and maybe a temp dir
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        from bot.wiring import build_bot, start_background

        self._start_logging()
        self.fake = FakeSlack(
            team_id=self.settings.slack_team_id or "T0SNAPBOT",
            bot_token="xoxb-shell-" + secrets.token_hex(12),
        ).start()
        self.fake.users.update({uid: {"name": name} for uid, name in self._users.items()})
        self.fake.channels.update({cid: {"name": name} for cid, name in self._channels.items()})
        self._users[self.fake.bot_user_id] = BOT_NAME
        signing_secret = secrets.token_hex(16)
        derived = replace(
            self.settings,
            slack_bot_token=Secret(self.fake.bot_token),
            slack_signing_secret=Secret(signing_secret),
            slack_app_token=None,
            slack_api_url=self.fake.api_url,
            database_url=self._database_url(),
            poll_seconds=self.poll_interval,
            approval_remind_seconds=_sooner(self.settings.approval_remind_seconds, SHELL_REMIND_SECONDS),
            approval_escalate_seconds=_sooner(self.settings.approval_escalate_seconds, SHELL_ESCALATE_SECONDS),
        )
        transport = None
        if self.simulator is not None:
            derived = replace(derived, vps_api_url=IN_PROCESS_VPS_URL, vps_api_token=Secret(self.simulator.token))
            transport = self.simulator.transport()
        self.bot = bot = build_bot(derived, vps_transport=transport)
        self.driver = SlackDriver(
            wsgi_sender(bot.wsgi),
            signing_secret,
            team_id=self.fake.team_id,
            api_app_id=self.fake.api_app_id,
            bot_user_id=self.fake.bot_user_id,
            bot_id=self.fake.bot_id,
            directory=self.fake,  # a typed @bob reaches the bot as the mention Slack would make of it
        )
        # Calls made while building (auth.test) are not news.
        self._cursor = len(self.fake.calls)
        self.fake.on_call = lambda call: self._activity.set()
        start_background(bot)

    def close(self) -> None:
        self._stopping.set()
        self._activity.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        if self.bot is not None:
            self._settle(5.0)
            self.bot.close()
            self.bot = None
        if self.fake is not None:
            self.fake.on_call = None
            self.fake.stop()
            self.fake = None
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
        self._save_history()
        self._stop_logging()

    def _running(self) -> Bot:
        if self.bot is None:
            raise RuntimeError("the shell is not started")
        return self.bot

    def _database_url(self) -> str:
        url = self.settings.shell_database_url  # never settings.database_url: that may be production's
        if url:
            self._database_note = f"{safe_url(url)} (SHELL_DATABASE_URL or --database-url)"
            return url
        if self.simulator is not None:
            # Simulated servers with a real audit trail would be confusing: start clean, leave nothing behind.
            self._tempdir = tempfile.mkdtemp(prefix="snapshot-bot-shell-")
            path = Path(self._tempdir) / "shell.db"
            self._database_note = f"{path} (a fresh SQLite file, deleted when you quit)"
            return f"sqlite:///{path}"
        # The real VPS.org account: what was done is kept, in the shell's own file (not the bot's).
        self._database_note = f"{SHELL_DATABASE_URL} (the shell's own SQLite file, kept; not DATABASE_URL)"
        return SHELL_DATABASE_URL

    def _start_logging(self) -> None:
        # The terminal is the conversation: log lines go to a file the banner names; errors are also noted in
        # the conversation, one short line each (ErrorNotes), so nothing that matters is hidden.
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix="snapshot-bot-shell-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
            self._own_log = True
        root = logging.getLogger()
        self._log_level = root.level
        root.setLevel(logging.getLevelNamesMapping().get(self.settings.log_level, logging.INFO))
        self._undo_logging = log_to_file(str(self.log_path))
        self._error_notes = ErrorNotes(self._note_error)
        root.addHandler(self._error_notes)

    def _stop_logging(self) -> None:
        root = logging.getLogger()
        if self._error_notes is not None:
            root.removeHandler(self._error_notes)
            self._error_notes = None
        if self._undo_logging is not None:
            self._undo_logging()
            self._undo_logging = None
            if self._own_log and self.log_path is not None:  # an empty log in the temp dir is only clutter
                with contextlib.suppress(OSError):
                    if self.log_path.stat().st_size == 0:
                        self.log_path.unlink()
        if self._log_level is not None:
            root.setLevel(self._log_level)
            self._log_level = None

    def _note_error(self, text: str) -> None:
        with self._notes_lock:
            self._notes.append(text)
        self._activity.set()

    def _take_notes(self) -> list[str]:
        with self._notes_lock:
            notes, self._notes = self._notes, []
        return notes


class ErrorNotes(logging.Handler):
    """Hands the first line of each ERROR (or worse) log record, masked, to `note`: the shell shows it briefly."""

    MAX_CHARS = 160

    def __init__(self, note: Callable[[str], None]) -> None:
        super().__init__(logging.ERROR)
        self._note = note

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lines = redact(record.getMessage()).strip().splitlines()
        except Exception:  # a broken format string: the file handler reports it in full
            lines = []
        text = lines[0] if lines else record.name
        if len(text) > self.MAX_CHARS:
            text = text[: self.MAX_CHARS - 1] + "…"
        self._note(text)
