"""The post-ack work pool at shutdown: a user's job that never started is cancelled and its user told; a running
one is left to finish (bot/runtime.py BackgroundWork)."""

from __future__ import annotations

import threading

from bot.runtime import BackgroundWork, TrackedPool

DEADLINE = 10.0


def test_jobs_never_started_are_cancelled_and_their_users_told_running_ones_finish() -> None:
    work = BackgroundWork(threads=1)
    running, release = threading.Event(), threading.Event()
    ran: list[str] = []
    told: list[str] = []

    def slow() -> None:
        running.set()
        release.wait(DEADLINE)
        ran.append("slow")

    assert work.offer(slow, on_abandoned=lambda: told.append("slow"))
    assert running.wait(DEADLINE)
    for name in ("list", "create"):
        assert work.offer(lambda name=name: ran.append(name), on_abandoned=lambda name=name: told.append(name))
    work.submit(lambda: ran.append("bookkeeping"))  # the bot's own jobs have nobody to tell; never cancelled

    assert work.abandon_queued(budget_seconds=DEADLINE) == (2, 2)
    assert sorted(told) == ["create", "list"]
    release.set()
    assert work.wait_idle(DEADLINE)
    assert ran == ["slow", "bookkeeping"]  # the cancelled ones never ran; the running one finished
    assert work.abandon_queued(budget_seconds=DEADLINE) == (0, 0)  # nothing left to cancel or tell
    work.shutdown()


def test_telling_is_bounded_by_its_budget() -> None:
    work = BackgroundWork(threads=1)
    busy, release, stuck = threading.Event(), threading.Event(), threading.Event()
    work.offer(lambda: (busy.set(), release.wait(DEADLINE)))
    assert busy.wait(DEADLINE)
    work.offer(lambda: None, on_abandoned=lambda: stuck.wait(DEADLINE))  # Slack does not answer the reply
    cancelled, told = work.abandon_queued(budget_seconds=0.05)
    assert (cancelled, told) == (1, 0)
    stuck.set()
    release.set()
    assert work.wait_idle(DEADLINE)
    work.shutdown()


def test_a_pool_is_healthy_until_it_is_shut_down() -> None:
    """`/healthz` asks the pools: `TrackedPool.healthy()` once called a database it does not have (it raised)."""
    for pool in (TrackedPool(1, "listener"), BackgroundWork(threads=1)):
        assert pool.healthy() is True
        pool.shutdown(wait=True)
        assert pool.healthy() is False
