"""Retried deliveries: Slack re-sends an Events API delivery it thinks failed (X-Slack-Retry-Num); the retry is
acked, not rerun, across every process (the keys are stored behind `bot.usecases.deliveries.Deliveries`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.usecases.deliveries import Deliveries
from bot.usecases.errors import StorageError

log = logging.getLogger(__name__)


# ---- retried deliveries ------------------------------------------------------------------------------------
def delivery_key(body: dict[str, Any]) -> str | None:
    """The de-duplication key of an Events API delivery (its event_id), or None for other requests."""
    event_id = body.get("event_id")
    if body.get("type") == "event_callback" and isinstance(event_id, str) and event_id:
        return f"event:{event_id}"
    return None


class OncePerDelivery(Middleware):
    """Slack retries an Events API delivery it thinks failed (X-Slack-Retry-Num); the retry is acked, not rerun."""

    def __init__(self, deliveries: Deliveries) -> None:
        self._deliveries = deliveries

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        key = delivery_key(req.body)
        if key is None:
            return next()
        try:
            first = self._deliveries.first_time(key)
        except StorageError:
            # Without the database little can run anyway; handling a possible duplicate of a read-only event
            # (App Home) beats dropping it.
            log.warning("could not record delivery %s; handling it anyway", key)
            first = True
        if not first:
            retry = (req.headers.get("x-slack-retry-num") or ["?"])[0]
            log.info("skipped %s: already handled (Slack retry %s)", key, retry)
            return BoltResponse(status=200, body="")
        return next()
