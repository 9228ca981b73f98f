"""Slots on one event loop: a vendor's ``max_connections``, and the saves of ``max_downloads``.

:class:`Gate` is ``asyncio.Semaphore`` served first come first served, with waiters that leave
lazily and a time limit of their own, on the client's clock. CPython's Semaphore takes each waiter out of its deque with
``deque.remove`` when it is woken or cancelled, a scan of the queue: with 100,000 polls queued for
64 slots, a woken waiter was often tens of thousands of places from the front, and leaving a
``wait_all`` early (cancelling every queued poll) spent 18 s in those scans. Here a released slot
passes straight to the first waiter still waiting, and a waiter that left is dropped when a
release reaches it: O(1) a wait. A waiter's time limit (``acquire(until, now)``) is kept in a
heap with one timer for the gate, not an ``asyncio.timeout`` (a timer, rescheduled twice) per wait.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Final

__all__ = ["Gate"]

RECHECK: Final = 0.1
"""Real seconds between two looks at a clock that is not the loop's (a client's ScaledClock or
SimClock): its time limits are in its own seconds, which real time only estimates."""


class Gate:
    """``slots`` slots: ``take()`` one if free, else ``await acquire(until)`` in line; ``release()`` gives it back."""

    __slots__ = ("_ends", "_free", "_loop", "_now", "_order", "_timer", "_waiters")

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ends: list[tuple[float, int, asyncio.Future[None]]] = []  # a heap: whose time runs out first
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._now: Callable[[], float] = time.monotonic  # the clock the limits are on

    def locked(self) -> bool:
        """No slot is free: an ``acquire`` now would wait."""
        return self._free <= 0

    def take(self) -> bool:
        """Take a free slot at once (True); False when none is free (nobody is skipped in line: a
        free slot means nobody waits, as a release hands its slot to a waiter first)."""
        if self._free > 0:
            self._free -= 1
            return True
        return False

    async def acquire(self, until: float | None = None, now: Callable[[], float] = time.monotonic) -> None:
        """Take a slot, waiting in line for one; once ``now()`` passes ``until``, raise TimeoutError
        (``now``: the client's clock, the same for every limited wait of a gate)."""
        if self.take():
            return
        loop = self._loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if until is not None:
            self._now = now
            self._limit(loop, waiter, until)
        try:
            await waiter
        except BaseException:  # cancelled (a closed wait), or its time ran out, while in line
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # the slot was handed over just before: pass it on
            raise

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # one that left the line (cancelled, out of time) is skipped
                waiter.set_result(None)  # the slot passes to it, never through _free
                return
        self._free += 1

    def _limit(self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None], until: float) -> None:
        ends = self._ends
        if len(ends) > 2 * len(self._waiters) + 64:  # served waiters' entries: drop them in one go
            ends[:] = [entry for entry in ends if not entry[2].done()]
            heapq.heapify(ends)
        heapq.heappush(ends, (until, next(self._order), waiter))
        if self._timer is None or ends[0][2] is waiter:  # the soonest limit now: the timer follows it
            self._arm(loop, until)

    def _arm(self, loop: asyncio.AbstractEventLoop, until: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        wait = max(0.0, until - self._now())
        if self._now is not time.monotonic:  # a clock of its own: real time only estimates it
            wait = min(wait, RECHECK)
        self._timer = loop.call_at(loop.time() + wait, self._expire)

    def _expire(self) -> None:
        self._timer = None
        loop, ends = self._loop, self._ends
        assert loop is not None
        now = self._now()
        while ends and (ends[0][2].done() or ends[0][0] <= now):
            _, _, waiter = heapq.heappop(ends)
            if not waiter.done():
                waiter.set_exception(TimeoutError())
        if ends:
            self._arm(loop, ends[0][0])

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Gate(free={self._free}, waiting={len(self._waiters)})"
