"""A simulated clock for tests: injected into clients (``clock=``) and the sandbox (``clock=``)."""

from __future__ import annotations

import asyncio


class SimClock:
    """Virtual monotonic time: sleeping advances it instantly (and records how long was asked)."""

    def __init__(self, start: float = 5000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    __call__ = now  # the sandbox takes a plain callable

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)
