"""A clock for simulated vendors: real time, sped up (it imports nothing of the client)."""

from __future__ import annotations

import asyncio
import time

__all__ = ["ScaledClock"]


class ScaledClock:
    """Real monotonic time run ``scale`` times faster: ``now()`` moves ``scale`` seconds per real
    second, ``sleep(s)`` sleeps ``s / scale`` real seconds.

    Share one between a :class:`Sandbox` (``Sandbox(clock=...)``, its ``time_scale`` left at 1)
    and the client that polls it (``Client(clock=...)``): the jobs' scripts, the Retry-After the
    sandbox sends, the polling policy, the client's backoff and its rate control's pace then run
    on one timeline, ``scale`` times faster, as they would for a user at scale 1. A request's own
    timeout stays real time (a socket does not run on a fake clock). Thread-safe: it keeps no
    state but its origin, so a sandbox served on another thread reads the same time.
    """

    def __init__(self, scale: float, start: float | None = None) -> None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < float("inf"):
            raise ValueError(f"scale must be a number > 0, not {scale!r}")
        self.scale = float(scale)
        self._origin = time.monotonic()
        self.start = self._origin if start is None else start

    def now(self) -> float:
        return self.start + (time.monotonic() - self._origin) * self.scale

    __call__ = now  # the sandbox takes a plain callable

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.scale)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.scale)

    def __repr__(self) -> str:
        return f"ScaledClock({self.scale:g})"
