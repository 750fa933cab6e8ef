"""A first-come, first-served lock: the queue one process's SQLite writers wait in.

Rules it keeps:
- Waiters are served in arrival order: a release hands the lock straight to the oldest waiter, so a thread that
  releases and asks again cannot overtake one that was already waiting (Python's own locks let it).
- Re-entrant for the thread that holds it (a write transaction opened inside another is not blocked here; SQLite
  decides about it as before).
- A waiter gives up after its timeout and is removed from the queue; if the lock was handed to it at that very
  moment, it keeps it (nothing is ever handed to a thread that left).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Waiter:
    thread: int
    served: threading.Event = field(default_factory=threading.Event)


class WriterQueue:
    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[_Waiter] = deque()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self, timeout: float) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._waiting:
                self._owner, self._depth = me, 1
                return True
            waiter = _Waiter(me)
            self._waiting.append(waiter)
        if waiter.served.wait(timeout):
            return True
        with self._mutex:
            if self._owner == me:  # handed over just as the wait timed out
                return True
            self._waiting.remove(waiter)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("the writer queue is released by a thread that does not hold it")
            self._depth -= 1
            if self._depth:
                return
            if self._waiting:
                nxt = self._waiting.popleft()
                self._owner, self._depth = nxt.thread, 1
                nxt.served.set()
            else:
                self._owner = None

    @contextmanager
    def held(self, timeout: float) -> Iterator[bool]:
        """Yields whether it was acquired within `timeout`; released at the end if it was."""
        acquired = self.acquire(timeout)
        try:
            yield acquired
        finally:
            if acquired:
                self.release()
