"""What one worker process knows of each vendor on its own, beside the fleet's pace in Redis.

- What it saw accepted over the last second: its share of the fleet's rate, which a cut starts
  from (it reports it with its 429s, and when it hears of a vendor's first cut).
- Until its fleet's first throttle of a vendor: its own slow start
  (:class:`~videojobs._ratecontrol.AdaptiveRate` with ``fleet=True``). The fleet keeps no pace in
  Redis for a vendor that never throttled (a poll asks Redis nothing about it), so without this
  every job's first poll went at once, and each worker process sent unpaced until its own 429:
  the first burst's 429s were 3-5 % of a short run at a vendor allowing 20 a second. Each process
  ramps up from ``START_RATE`` (TCP's slow start, as one process's client does); the first 429
  cuts the fleet's pace, which every process hears of at once (:class:`._store.CutNotices`) and
  follows from then on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

from .._exceptions import APIError, VideoJobsError
from .._ratecontrol import AcceptedRate, AdaptiveRate, is_throttle

__all__ = ["SHARE_WINDOW", "WorkerPaces"]

SHARE_WINDOW: Final = 1.0
"""Seconds over which a process reads what it saw accepted, its share of a cut's base: the last
second, as one process's cut at slow start's end reads it (``AdaptiveRate``)."""


class WorkerPaces:
    """Per vendor, one process's accepted answers and its slow start (thread-safe: a threads or
    gevent pool runs many polls at once, and the notice listener reads the share). Its time is
    ``clock``'s, this process's own (monotonic: the fleet's clock, Redis's, steps when this
    machine's does, and a ramp stamped ahead held every poll of the vendor until it caught up)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._accepted: dict[str, AcceptedRate] = {}
        self._ramps: dict[str, AdaptiveRate] = {}
        self._waiting: dict[str, int] = {}

    def wait(self, vendor: str) -> float:
        """0.0 when this process's slow start lets a call to ``vendor`` go now (a token spent), else
        the seconds until it may (ask again then: nothing is booked, and the threads of one
        process asking at once take the tokens as they come, in no order). Asked only while the
        fleet has no pace for the vendor; once the fleet's pace rules it the ramp is dropped, and a
        later one (the pace ended: a day without a throttle) starts again from ``START_RATE``."""
        now = self.clock()
        with self._lock:
            ramp = self._ramps.get(vendor)
            if ramp is None:  # one that met its own 429 keeps its cut and its pause (a new one's full
                # bucket after each 429 handed a threads pool's 32 callers four tokens a 429)
                ramp = self._ramps[vendor] = AdaptiveRate(now, fleet=True)
        return ramp.acquire(now)

    def answered(self, vendor: str, outcome: VideoJobsError | None, sent: float, *, paced: bool) -> None:
        """A call to ``vendor`` sent at ``sent`` (on :attr:`clock`) ended now: ``outcome`` None for a
        status, else the error. ``paced``: the fleet's pace rules the vendor now, and this
        process's slow start is over (a later one starts afresh)."""
        now = self.clock()
        # an error the vendor answered (a 5xx, a 404) came back through its limiter all the same: it
        # counts as accepted, as a status does (counted as nothing, a vendor that answered 502 to
        # a third of the calls had the fleet's first cut start from 0.5 req/s, and a 20 req/s
        # allowance was polled at 1 req/s), and slow start grows on it, as TCP's on every ACK
        # (counted as no answer, a vendor failing before it ever throttled held each process at
        # START_RATE: 100 jobs of a threads pool, none done in a minute, 27 s before this ramp)
        answer = outcome is None or (isinstance(outcome, APIError) and not is_throttle(outcome))
        with self._lock:
            if answer:
                self._accepted.setdefault(vendor, AcceptedRate(window=SHARE_WINDOW)).record(now)
            ramp = self._ramps.pop(vendor, None) if paced else self._ramps.get(vendor)
        if ramp is not None and not paced:
            ramp.observe(now, None if answer else outcome, sent)

    @contextlib.contextmanager
    def waiting(self, vendor: str) -> Iterator[None]:
        """A poll waits for ``vendor``'s ramp meanwhile (see :meth:`backlog`)."""
        with self._lock:
            self._waiting[vendor] = self._waiting.get(vendor, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                if (left := self._waiting.pop(vendor) - 1) > 0:
                    self._waiting[vendor] = left

    def backlog(self, vendor: str) -> float:
        """Seconds the polls waiting for ``vendor``'s ramp now need at its rate (0.0: no ramp)."""
        with self._lock:
            ramp, waiting = self._ramps.get(vendor), self._waiting.get(vendor, 0)
        rate = None if ramp is None else ramp.rate
        return waiting / rate if rate else 0.0

    def ramping(self, vendor: str) -> bool:
        """Whether this process's slow start paces ``vendor`` (it polled it, and has not heard of or
        met the fleet's first cut since)."""
        with self._lock:
            return vendor in self._ramps

    def paced(self, vendor: str) -> None:
        """The fleet's pace rules ``vendor`` now (its first cut was heard): this slow start is over."""
        with self._lock:
            self._ramps.pop(vendor, None)

    def measured(self, vendor: str) -> float:
        """What this process saw ``vendor`` accept over the last second, calls a second (a status or
        an error the vendor answered: anything its limiter let through)."""
        now = self.clock()
        with self._lock:
            accepted = self._accepted.get(vendor)
            return 0.0 if accepted is None else accepted.rate(now)
