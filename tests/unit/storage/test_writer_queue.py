"""SQLite writers of one process are served in arrival order (storage/writer_queue.py).

SQLite's busy handler polls with growing sleeps, so a writer could keep losing to newer ones: with 32 threads
writing, the slowest waited 2.8 s while the median waited 1 ms, and under a long load one passed the busy timeout
("database is locked"). These tests pin the order, the timeout and the hand-over, and that `Database` uses it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import db as db_module
from storage.db import Database, WriterQueueTimeout
from storage.writer_queue import WriterQueue

DEADLINE = 5.0


def wait_until(condition: Callable[[], bool]) -> None:
    limit = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < limit, "condition not reached before the deadline"
        time.sleep(0.001)


def queued(queue: WriterQueue) -> int:
    return len(queue._waiting)


def test_waiters_are_served_in_arrival_order_and_a_releaser_cannot_overtake() -> None:
    queue = WriterQueue()
    order: list[str] = []
    assert queue.acquire(timeout=1)

    def writer(name: str) -> None:
        assert queue.acquire(timeout=DEADLINE)
        order.append(name)
        queue.release()

    threads = []
    for n, name in enumerate(["first", "second", "third"], start=1):
        thread = threading.Thread(target=writer, args=(name,))
        thread.start()
        threads.append(thread)
        wait_until(lambda n=n: queued(queue) == n)  # each is waiting before the next arrives
    queue.release()
    assert queue.acquire(timeout=DEADLINE)  # the releaser asks again at once: it goes to the back
    order.append("releaser again")
    queue.release()
    for thread in threads:
        thread.join(DEADLINE)
    assert order == ["first", "second", "third", "releaser again"]


def test_it_is_reentrant_for_its_holder() -> None:
    queue = WriterQueue()
    assert queue.acquire(timeout=1)
    assert queue.acquire(timeout=0)
    queue.release()
    other = []
    thread = threading.Thread(target=lambda: other.append(queue.acquire(timeout=0.05)))
    thread.start()
    thread.join(DEADLINE)
    assert other == [False]  # still held once
    queue.release()
    assert queue.acquire(timeout=0)
    queue.release()


def test_a_waiter_that_times_out_leaves_the_queue_and_is_never_handed_the_lock() -> None:
    queue = WriterQueue()
    assert queue.acquire(timeout=1)
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(queue.acquire(timeout=0.05)))
    thread.start()
    thread.join(DEADLINE)
    assert result == [False] and queued(queue) == 0
    queue.release()
    assert queue._owner is None  # nothing was handed to the thread that left
    with pytest.raises(RuntimeError):
        queue.release()


def test_sqlite_writers_of_one_process_wait_in_the_queue_not_in_sqlite(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'q.db'}")
    with database.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v TEXT)")
    assert database._writers is not None
    holding, done = threading.Event(), threading.Event()

    def first() -> None:
        with database.session() as session:
            session.execute(text("INSERT INTO t VALUES ('first')"))
            holding.set()
            done.wait(DEADLINE)

    def second() -> None:
        with database.session() as session:
            session.execute(text("INSERT INTO t VALUES ('second')"))

    one = threading.Thread(target=first)
    one.start()
    holding.wait(DEADLINE)
    two = threading.Thread(target=second)
    two.start()
    wait_until(lambda: queued(database._writers) == 1)
    with database.session(readonly=True) as session:  # readers never queue
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 0
    done.set()
    one.join(DEADLINE)
    two.join(DEADLINE)
    with database.session(readonly=True) as session:
        assert [r[0] for r in session.execute(text("SELECT v FROM t ORDER BY rowid"))] == ["first", "second"]


def test_a_writer_queued_past_the_busy_timeout_gets_database_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_MS", 50)
    database = Database(f"sqlite:///{tmp_path / 'q.db'}")
    assert database._writers is not None
    assert database._writers.acquire(timeout=1)  # another writer of this process holds it
    failures: list[BaseException] = []

    def late() -> None:
        try:
            with database.session():
                pass
        except WriterQueueTimeout as error:
            failures.append(error)

    thread = threading.Thread(target=late)
    thread.start()
    thread.join(DEADLINE)
    database._writers.release()
    assert len(failures) == 1 and "database is locked" in str(failures[0])


def test_postgresql_and_in_memory_sqlite_have_no_writer_queue() -> None:
    assert Database("sqlite://")._writers is None  # one shared connection, serialized by its own lock
    assert Database("postgresql://postgres@127.0.0.1:5432/test")._writers is None  # row locks, not a file lock
