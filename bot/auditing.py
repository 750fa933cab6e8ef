"""The bot's audit log: storage's `AuditLog` with the bot's credential masking injected.

Storage knows no credential patterns (it imports nothing from `bot`); every `AuditLog` the bot builds comes from
here, so no path writes an unmasked row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.redaction import redact, redact_value
from storage.audit import AuditLog, Redactor
from storage.db import Database, utcnow

AUDIT_REDACTOR = Redactor(text=redact, value=redact_value)


def audit_log(db: Database, clock: Callable[[], datetime] = utcnow) -> AuditLog:
    """An `AuditLog` on `db` that masks credentials before anything is hashed or stored."""
    return AuditLog(db, clock, redactor=AUDIT_REDACTOR)
