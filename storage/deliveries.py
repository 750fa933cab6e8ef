"""Which Slack deliveries were already handled, so a retried delivery is processed once (across replicas)."""

from __future__ import annotations

import logging
from datetime import timedelta
from itertools import count

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage.db import Database, utcnow
from storage.errors import StorageError
from storage.models import ProcessedDelivery

log = logging.getLogger(__name__)

DELIVERY_KEY_TTL = timedelta(days=1)  # Slack gives up retrying long before this
_PRUNE_EVERY = 200


class DeliveryLog:
    """Remembers which deliveries were handled (ProcessedDelivery), across replicas and restarts."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._inserts = count(1)

    def first_time(self, key: str) -> bool:
        """Record `key`; False when it was already recorded (a retry, or a concurrent duplicate)."""
        try:
            with self._db.session() as session:
                session.add(ProcessedDelivery(key=key[:200], created_at=utcnow()))
        except IntegrityError:
            return False
        if next(self._inserts) % _PRUNE_EVERY == 0:
            self.prune()
        return True

    def prune(self, older_than: timedelta = DELIVERY_KEY_TTL) -> int:
        """Forget keys older than `older_than`; returns how many. Safe to call from any replica."""
        cutoff = utcnow() - older_than
        try:
            with self._db.session() as session:
                result = session.execute(sa.delete(ProcessedDelivery).where(ProcessedDelivery.created_at < cutoff))
                return int(getattr(result, "rowcount", 0) or 0)
        except StorageError:
            log.warning("could not prune processed delivery keys", exc_info=True)
            return 0
