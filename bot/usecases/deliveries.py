"""Retried deliveries: the port the Slack side de-duplicates them through (Slack → use cases → storage).

Slack re-sends an Events API delivery it thinks failed (X-Slack-Retry-Num); the retry must be acked, not rerun,
across every process. Storage's `DeliveryLog` (storage/deliveries.py) is the implementation, wired in
bot/wiring.py; the Slack side knows only this Protocol.
"""

from __future__ import annotations

from typing import Protocol


class Deliveries(Protocol):
    def first_time(self, key: str) -> bool:
        """Record `key`; False when it was already recorded (a retry, or a concurrent duplicate).

        May raise `StorageError` (bot.usecases.errors); the caller decides what a delivery that cannot be recorded
        means.
        """
        ...
