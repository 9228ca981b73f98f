"""Request slots on one event loop: ``wait_all``'s ``max_requests`` and a vendor's ``max_connections``.

:class:`Gate` is ``asyncio.Semaphore`` (``acquire``, ``release``, ``locked``) served first come
first served, with waiters that leave lazily. CPython's Semaphore takes each waiter out of its
deque with ``deque.remove`` when it is woken or cancelled, a scan of the queue: with 100,000 polls
queued for 64 slots, a woken waiter was often tens of thousands of places from the front, and
leaving a ``wait_all`` early (cancelling every queued poll) spent 18 s in those scans. Here a
released slot passes straight to the first waiter still waiting, and a cancelled waiter is
dropped when a release reaches it: O(1) a wait.
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ["Gate"]


class Gate:
    """``slots`` slots; ``await acquire()`` takes one (waiting in line when none is free), ``release()`` gives it back."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def locked(self) -> bool:
        """No slot is free: an ``acquire`` now would wait."""
        return self._free <= 0

    async def acquire(self) -> None:
        if self._free > 0:  # a free slot means nobody waits: a release hands its slot to a waiter first
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:  # cancelled (a timeout, a closed wait) while in line
            if not waiter.cancelled():  # the slot was handed over just before: pass it on
                self.release()
            raise

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled waiter left the line: skip it
                waiter.set_result(None)  # the slot passes to it, never through _free
                return
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Gate(free={self._free}, waiting={len(self._waiters)})"
