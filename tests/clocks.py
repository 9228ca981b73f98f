"""Clocks for tests: injected into clients (``clock=``) and the sandbox (``Sandbox(clock=...)``).

- :class:`SimClock`: virtual time that only moves when something sleeps on it. For one caller at a
  time against the embedded sandbox (no sockets): a test runs in no time, and what was slept is kept.
- :class:`ScaledClock` (``videojobs.sandbox.ScaledClock``, the one the CLI's ``--sandbox`` uses): real time sped up. Where a real server (uvicorn) answers over sockets, time
  must keep moving on its own; this clock reads ``scale`` virtual seconds per real second and sleeps
  ``scale`` times shorter. Share one between the client and the sandbox (with the sandbox's
  ``time_scale`` left at 1) and the jobs' scripts, the Retry-After the sandbox sends, the default
  polling policy and the client's own backoff all run on the same virtual timeline, as they would
  for a user at scale 1.

A request's own timeout is real time whatever the clock (a socket does not run on a fake one), and
so is the real time a request takes: at ``scale`` 40 a 5 ms round trip reads as 0.2 virtual
seconds. Keep scales where that stays small next to the delays the test is about.
"""

from __future__ import annotations

import asyncio

from videojobs.sandbox import ScaledClock

__all__ = ["ScaledClock", "SimClock"]


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
