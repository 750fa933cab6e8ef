"""A serving process freezes its start-up heap out of the cyclic collector (bot.server.settle_heap, issue 19 §3)."""

from __future__ import annotations

import gc

from bot.server import settle_heap


def test_settle_heap_moves_what_is_alive_into_the_permanent_generation() -> None:
    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() > max(before, 1000)  # the imported modules' objects at the least
        assert gc.isenabled()  # frozen objects are skipped; the collector still runs for everything newer
    finally:
        gc.unfreeze()  # this is a test process: give its objects back to the collector
