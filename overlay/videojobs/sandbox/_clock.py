"""A clock for simulated vendors: real time, sped up (it imports nothing of the client)."""

from __future__ import annotations

import asyncio
import time

__all__ = ["LAST_SECOND", "MAX_TIME_SCALE", "MIN_TIME_SCALE", "ScaledClock"]

MAX_TIME_SCALE = 1e6
"""The fastest the sandbox's jobs run: a day-long job in a tenth of a second. At 1e308 every
answer overflowed; at 1e20 a client's clock no longer moves by a second (now - 1 == now)."""
MIN_TIME_SCALE = 1e-6
"""The slowest: a minute-long job in two years. At 5e-324 a job's end was infinitely far (its
listing said ``Infinity``, which is no JSON)."""
LAST_SECOND = 253402300799.0
"""9999-12-31T23:59:59Z: the latest a vendor's timestamp may say (a file's Last-Modified past it
was a 500); ``--epoch`` near it and a fast clock would pass it."""


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
