"""The bot's audit log: storage's `AuditLog` with the bot's credential masking injected, and storage's
`ChainHeadMissing` raised as the use-case error `AuditTrailBroken`.

Storage knows no credential patterns (it imports nothing from `bot`); every `AuditLog` the bot builds comes from
here, so no path writes an unmasked row, and nothing above the use cases needs to know storage's errors.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from bot.redaction import redact, redact_value
from bot.usecases.errors import AuditTrailBroken
from storage.audit import NO_REDACTION, AuditEntry, AuditLog, AuditRecord, ChainHeadMissing, Redactor
from storage.db import Database, Transaction, utcnow

AUDIT_REDACTOR = Redactor(text=redact, value=redact_value)


AppendReport = Callable[[str, float], None]


class BotAuditLog(AuditLog):
    """`AuditLog` whose appends raise `AuditTrailBroken` (a use-case error) when the chain head is missing, and
    report each successful append's (outcome, seconds) to `on_append` (the metrics) when one is given."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime] = utcnow,
        *,
        redactor: Redactor = NO_REDACTION,
        on_append: AppendReport | None = None,
    ) -> None:
        super().__init__(db, clock, redactor=redactor)
        self._on_append = on_append

    def append(self, entry: AuditEntry, *, session: Transaction | None = None) -> AuditRecord:
        started = time.perf_counter()
        try:
            record = super().append(entry, session=session)
        except ChainHeadMissing as error:
            raise AuditTrailBroken(str(error)) from error
        if self._on_append is not None:
            with contextlib.suppress(Exception):  # observing an append must never fail it
                self._on_append(str(entry.outcome), time.perf_counter() - started)
        return record

    def append_many(self, entries: Iterable[AuditEntry], batch_size: int = 1000) -> int:
        try:
            return super().append_many(entries, batch_size)
        except ChainHeadMissing as error:
            raise AuditTrailBroken(str(error)) from error


def audit_log(
    db: Database, clock: Callable[[], datetime] = utcnow, *, on_append: AppendReport | None = None
) -> AuditLog:
    """An `AuditLog` on `db` that masks credentials before anything is hashed or stored."""
    return BotAuditLog(db, clock, redactor=AUDIT_REDACTOR, on_append=on_append)
