"""What a pin forbids, worded once: a pinned snapshot is never deleted by hand, by retention or by "Free oldest".

Shared by the delete path (bot/usecases/snapshots.py) and the pins use case (bot/usecases/pins.py), so neither
imports the other. The reason is the pinner's own text: always `quote`d (inert wherever it is rendered).
"""

from __future__ import annotations

from bot.usecases.errors import Refused
from bot.usecases.wording import Text, code, command, mention, quote
from storage.pins import PinRow as PinRow  # re-exported: the Slack side shows pins, never imports storage

MAX_PIN_REASON = 200  # a few words and a reference; the list, App Home and the audit row carry it


class PinnedSnapshot(Refused):
    """A delete of a pinned snapshot: nothing was sent to VPS.org."""

    def __init__(self, pin: PinRow) -> None:
        super().__init__(pinned_refusal(pin))
        self.pin = pin


def pin_words(pin: PinRow) -> Text:
    """ "pinned by @x: “why”" (or without the reason when none was given)."""
    words = Text("pinned by {}").format(mention(pin.pinned_by))
    return words + Text(": {}").format(quote(pin.reason, MAX_PIN_REASON)) if pin.reason else words


def pinned_refusal(pin: PinRow) -> Text:
    return Text("Snapshot {} (#{}) is {}. Nothing was deleted; to delete it, unpin it first: {}.").format(
        code(pin.snapshot_name, 64), pin.snapshot_id, pin_words(pin), command("unpin", str(pin.snapshot_id))
    )
