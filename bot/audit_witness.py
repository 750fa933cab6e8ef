"""The witness: signs audit checkpoints and delivers them outside the database, in a thread of its own.

Rules it keeps:
- it runs beside the request path, never in it: a slow Slack or a full disk delays checkpoints, never commands;
- every round it signs what is due (storage.checkpoints decides and refuses to sign a chain that does not link),
  appends every checkpoint the file lacks to AUDIT_CHECKPOINT_FILE, and posts the ones not yet posted to
  AUDIT_CHECKPOINT_CHANNEL; a failed delivery is retried on a later round;
- at graceful shutdown it checkpoints whatever is not covered yet and delivers it once more;
- a chain it refuses to sign is logged at ERROR every round until someone looks.
"""

from __future__ import annotations

import fcntl
import html
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from storage.checkpoints import Checkpoint, CheckpointFormatError, CheckpointRefused, CheckpointStore
from storage.db import Database
from storage.signing import Signer, load_signer

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.config import Settings
    from bot.slack.notify import Notifier

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0  # how often the witness looks for due checkpoints (cheap while none is due: 2–3 indexed reads)
SLACK_HOLD = timedelta(seconds=60)  # a claimed post is another replica's to retry only after this
SLACK_RETRY = timedelta(seconds=30)
ALARM_REPEAT = 300.0  # seconds between repeats of the same ERROR
NOT_WITNESSED = (
    "The audit trail is not witnessed: AUDIT_SIGNING_KEY is not set, so someone with database access could "
    "rewrite it unnoticed. Run `python -m bot audit keygen --out FILE` and set AUDIT_SIGNING_KEY."
)


class Witness:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        signer: Signer,
        notifier: Notifier | None,
        *,
        store: CheckpointStore | None = None,
        poll_seconds: float = POLL_SECONDS,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store or CheckpointStore(db)
        self.signer = signer
        self.notifier = notifier
        self.every = settings.audit_checkpoint_every
        self.minutes = settings.audit_checkpoint_minutes
        self.channel = settings.audit_checkpoint_channel
        self.file = Path(settings.audit_checkpoint_file) if settings.audit_checkpoint_file else None
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one round at a time (the thread, and the final round at shutdown)
        self._thread: threading.Thread | None = None
        self._alarms: dict[str, float] = {}
        # Told the failing step (sign, refused, file, channel) of every failed round: the metrics' witness failures.
        self._on_failure = on_failure or (lambda _step: None)

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: Settings,
        notifier: Notifier | None,
        on_failure: Callable[[str], None] | None = None,
    ) -> Witness | None:
        if settings.audit_signing_key is None:
            return None
        return cls(db, settings, load_signer(settings.audit_signing_key.reveal()), notifier, on_failure=on_failure)

    def describe(self) -> str:
        places = [p for p in (self.channel and f"channel {self.channel}", self.file and f"file {self.file}") if p]
        return (
            f"audit checkpoints signed with key {self.signer.key_id} every {self.every} events / "
            f"{self.minutes} min, witnessed in {' and '.join(places) if places else 'NOTHING outside the database'}"
        )

    # ---- the thread --------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="audit-witness", daemon=True)
            self._thread.start()

    def stop(self, *, final: bool = True) -> None:
        """Stop the thread; with `final`, checkpoint what is not covered yet and deliver it (graceful shutdown)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        if final:
            self.run_once(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.run_once()

    # ---- one round ---------------------------------------------------------------------------------------
    def run_once(self, *, final: bool = False) -> list[Checkpoint]:
        """Sign what is due, then deliver; never raises (the witness must outlive a bad round)."""
        made: list[Checkpoint] = []
        with self._lock:
            try:
                while True:
                    batch = self.store.create_due(self.signer, every=self.every, minutes=self.minutes, final=final)
                    made += batch
                    if len(batch) < 1000:
                        break
            except CheckpointRefused as error:
                self._on_failure("refused")
                self._alarm(f"AUDIT CHECKPOINT REFUSED: {error}. Run `python -m bot audit verify --checkpoints FILE`.")
            except Exception:
                self._on_failure("sign")
                log.exception("audit checkpoint could not be made; retrying next round")
            for checkpoint in made:
                log.info("audit checkpoint %s", checkpoint.summary())
            if self.file is not None:
                try:
                    self.deliver_to_file(self.file)
                except Exception:
                    self._on_failure("file")
                    log.exception("audit checkpoints could not be appended to %s; retrying next round", self.file)
            if self.channel and self.notifier is not None:
                try:
                    self.deliver_to_slack(self.channel)
                except Exception:
                    self._on_failure("channel")
                    log.exception("audit checkpoints could not be posted; retrying next round")
        return made

    def _alarm(self, message: str) -> None:
        """ERROR once per distinct problem and then every ALARM_REPEAT, not every two seconds."""
        now = time.monotonic()
        if self._alarms.get(message, -ALARM_REPEAT) + ALARM_REPEAT <= now:
            self._alarms[message] = now
            log.error(message)

    def deliver_to_file(self, path: Path) -> int:
        """Append every stored checkpoint the file does not have yet, in order. Returns how many.

        The file is locked while its last record is read and the new ones are written, so processes sharing
        it neither skip nor duplicate a checkpoint.
        """
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_record(fd)
            last_seq = last.seq if last else 0
            fresh, newest = self.store.pending(last_seq)
            if not fresh:
                if last is not None and newest < last.seq:
                    self._alarm(f"AUDIT CHECKPOINTS WENT BACKWARDS: {path} ends at #{last.seq}, the database at "
                                f"#{newest} (checkpoint rows deleted?)")  # fmt: skip
                return 0
            if last is None and fresh[0].seq != 1:
                log.warning("%s starts at checkpoint #%d: earlier ones are not in this file", path, fresh[0].seq)
            if last is not None and fresh[0].prev_digest != last.digest:
                self._alarm(f"AUDIT CHECKPOINTS FORKED: #{fresh[0].seq} in the database does not follow #{last.seq} in "
                            f"{path}; appending it anyway as evidence")  # fmt: skip
            os.write(fd, "".join(c.to_json() + "\n" for c in fresh).encode("ascii"))
            os.fsync(fd)
            return len(fresh)
        finally:
            os.close(fd)  # also releases the lock

    def deliver_to_slack(self, channel: str) -> int:
        assert self.notifier is not None
        posted = 0
        for checkpoint in self.store.claim_for_slack(hold=SLACK_HOLD):
            answer = self.notifier.post(channel, slack_text(checkpoint))
            ts = (answer or {}).get("ts")
            if ts:
                self.store.mark_posted(checkpoint.seq, str(ts))
                posted += 1
            else:
                self._on_failure("channel")
                self.store.retry_later(checkpoint.seq, SLACK_RETRY)
                break  # keep the channel in order: later checkpoints wait for this one
        return posted


def slack_text(checkpoint: Checkpoint) -> str:
    """The compact message: a summary line and the signed record, which `audit checkpoints --from-slack` reads
    back (it holds no character Slack escapes)."""
    return f"{checkpoint.summary()}\n`{checkpoint.to_json()}`"


def _last_record(fd: int) -> Checkpoint | None:
    """The file's last record (None for an empty file)."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return None
    chunk = 4096
    while True:
        start = max(0, size - chunk)
        data = os.pread(fd, size - start, start)
        lines = data.rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or start == 0:
            break
        chunk *= 4
    try:
        return Checkpoint.from_json(lines[-1].decode("utf-8", errors="replace"))
    except CheckpointFormatError:
        raise RuntimeError("its last line is not a checkpoint record; fix or move the file") from None


def collect_from_slack(client: WebClient, channel: str) -> tuple[list[Checkpoint], int]:
    """Every checkpoint the bot posted to `channel` (oldest first), each marked with its message ts and
    whether Slack shows it edited; plus how many of the bot's messages there could not be read as one.

    Only the bot's own messages count: anyone else's copy of a checkpoint proves nothing about delivery.
    Needs channels:history (groups:history for a private channel).
    """
    identity = client.auth_test()
    bot_user, bot_id = identity.get("user_id"), identity.get("bot_id")
    found: list[Checkpoint] = []
    unreadable = 0
    cursor: str | None = None
    while True:
        page = client.conversations_history(channel=channel, limit=200, cursor=cursor)
        for message in page.get("messages") or []:
            if not (message.get("bot_id") == bot_id or message.get("user") == bot_user):
                continue
            text = html.unescape(str(message.get("text") or ""))
            start, end = text.find("`{"), text.rfind("}`")
            if start < 0 or end < start:
                continue  # one of the bot's other messages
            try:
                checkpoint = Checkpoint.from_json(text[start + 1 : end + 1])
            except CheckpointFormatError:
                unreadable += 1
                continue
            found.append(replace(checkpoint, slack_ts=str(message.get("ts")), slack_edited="edited" in message))
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            break
    found.sort(key=lambda c: (c.seq, c.slack_ts or ""))
    return found, unreadable
