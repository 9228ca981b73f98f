"""A fleet of workers sharing one vendor's pace, simulated: no clock, no sockets, the same figures at
every run. What the workers run is the real thing: :class:`SharedPace` (through a
:class:`MemoryPaceStore`) or ``videojobs.celery``'s Redis :class:`Store` (one per worker, each
knowing only what its own answers told it), driven as ``videojobs.celery``'s poll task drives it:
a vendor not known to be paced is called when the worker's own slow start lets it (the worker
sleeps, holding the hop, until then: ``videojobs.celery._local.WorkerPaces``); a paced one books a slot (a hop that must wait
comes back at its slot holding it, or sooner when the slot is further out than ``longest``, the
countdown a broker holds a message for: it then hears the time left and comes back again); a 429
is reported with what the worker measured accepted over the last second, and the vendor's first
cut is heard by every other worker at once (its notice), each adding its share; after each answer
a paced vendor's next slot is booked.

The vendor is the sandbox's limiter: a token bucket of ``allowance`` requests per second with a
one-second burst. Jobs poll back to back (``interval`` after each answer), so demand is far above
any allowance, as in ``make bench``'s rate-control section.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from typing import Any, Protocol

from videojobs._exceptions import RateLimitError
from videojobs._ratecontrol import Booking, MemoryPaceStore
from videojobs.celery._local import WorkerPaces

VENDOR = "duomi"


class Worker(Protocol):
    def paced(self) -> bool:
        """Whether this worker knows the vendor is paced."""
        ...

    def book(
        self, now: float, booked: float | None, slot: float | None, at: float | None, *, ahead: bool = False
    ) -> Booking:
        """The wait for a slot (or the time left to the one ``booked``, due at ``slot``, the pace's
        rate ``at``), and what is held; ``ahead``: for the job's next call, not this one."""
        ...

    def throttled(self, now: float, *, measured: float, sent: float, retry_after: float | None) -> None: ...

    def heard(self, now: float, local: WorkerPaces) -> None:
        """The notice of the vendor's first cut came: this worker learns of the pace, and adds its
        share (what ``local``, its process's own record, saw accepted)."""
        ...


class MemoryWorker:
    """A worker of a fleet whose pace is one :class:`MemoryPaceStore` (it knows it at once)."""

    def __init__(self, store: MemoryPaceStore, name: str) -> None:
        self.store, self.name = store, name

    def paced(self) -> bool:
        return self.store.pace(VENDOR).paced

    def book(
        self, now: float, booked: float | None, slot: float | None, at: float | None, *, ahead: bool = False
    ) -> Booking:
        return self.store.book(VENDOR, now, booked, slot, at, ahead=ahead)

    def throttled(self, now: float, *, measured: float, sent: float, retry_after: float | None) -> None:
        self.store.throttled(VENDOR, now, measured=measured, sent=sent, retry_after=retry_after, reporter=self.name)

    def heard(self, now: float, local: WorkerPaces) -> None:
        self.store.share(VENDOR, now, measured=local.measured(VENDOR), reporter=self.name)


def memory_fleet(workers: int) -> list[Worker]:
    store = MemoryPaceStore()
    return [MemoryWorker(store, f"w{i}") for i in range(workers)]


class Run:
    """What a simulated fleet did. Called as ``run(a, b)``: the calls the vendor accepted in
    ``[a, b)`` as a share of its allowance, and the share of the calls sent then that it answered
    429."""

    def __init__(self, allowance: float, jobs: int) -> None:
        self.allowance = allowance
        self.sent: list[tuple[float, bool]] = []  # (when, accepted)
        self.calls: list[list[float]] = [[] for _ in range(jobs)]  # each job's calls
        self.hops: list[tuple[float, bool]] = []  # (when, called the vendor): each hop a worker ran

    def idle(self, start: float, end: float) -> float:
        """The share of the hops run in ``[start, end)`` that called no vendor (the shared rate sent
        them back to wait for their slot)."""
        hops = [called for when, called in self.hops if start <= when < end]
        return (len(hops) - sum(hops)) / max(1, len(hops))

    def __call__(self, start: float, end: float) -> tuple[float, float]:
        calls = [accepted for when, accepted in self.sent if start <= when < end]
        return sum(calls) / (end - start) / self.allowance, (len(calls) - sum(calls)) / max(1, len(calls))


def simulate(
    fleet: Sequence[Worker],
    *,
    allowance: float,
    jobs: int = 400,
    seconds: float = 180.0,
    interval: float = 0.01,
    rtt: float = 0.05,
    quiet: tuple[float, float] | None = None,
    longest: float = math.inf,
    retry_after: float | None = None,
    raised: tuple[float, float] | None = None,
    seed: int = 1,
) -> Run:
    """Run the fleet (see :class:`Run`). ``quiet``: no job polls within it (each comes back at its
    end, as a wave of new jobs would). ``longest``: the longest countdown a hop is sent with.
    ``retry_after``: what each 429 says (the sandbox's limiter says 1 s). ``raised``: the vendor's
    allowance becomes ``raised[1]`` at ``raised[0]`` (a :class:`Run` judges shares of the first)."""
    rng = random.Random(seed)
    run = Run(allowance, jobs)
    clock = [0.0]  # the simulation's time, each worker process's own clock
    local = [WorkerPaces(clock=lambda: clock[0]) for _ in fleet]  # what each saw accepted, its slow start
    throttle = RateLimitError("429", vendor=VENDOR)
    heard = False  # the first cut's notice went out
    tokens, stamp = allowance, 0.0
    # (time, 0 = a hop / 1 = an answer, job, (booked cut, slot, its rate) or (accepted, sent), worker: for a
    # hop, -1 until a worker takes it, and the worker that holds it while its slow start waits)
    events: list[tuple[float, int, int, Any, int]] = [
        (rng.random() * 0.1, 0, job, (None, None, None), -1) for job in range(jobs)
    ]
    heapq.heapify(events)
    while events:
        t, kind, job, value, w = heapq.heappop(events)
        if t > seconds:
            break
        clock[0] = t
        if kind == 0:
            if quiet and quiet[0] <= t < quiet[1]:
                heapq.heappush(events, (quiet[1] + rng.random() * 0.1, 0, job, (None, None, None), -1))
                continue
            if w < 0:
                w = rng.randrange(len(fleet))
            if fleet[w].paced():
                wait, held, at = fleet[w].book(t, *value)
                if wait > 0:
                    run.hops.append((t, False))
                    slot = None if held is None else t + wait
                    heapq.heappush(events, (t + min(wait, longest), 0, job, (held, slot, at), -1))
                    continue
            elif (wait := local[w].wait(VENDOR)) > 0:  # its slow start: the worker sleeps, holding the hop
                heapq.heappush(events, (t + wait, 0, job, value, w))
                continue
            limit = raised[1] if raised and t >= raised[0] else allowance
            tokens = min(limit, tokens + (t - stamp) * limit)
            stamp = t
            accepted = tokens >= 1
            tokens -= 1.0 if accepted else 0.0
            run.sent.append((t, accepted))
            run.hops.append((t, True))
            run.calls[job].append(t)
            heapq.heappush(events, (t + rtt, 1, job, (accepted, t), w))
            continue
        accepted, sent = value
        local[w].answered(VENDOR, None if accepted else throttle, sent, paced=fleet[w].paced())
        if not accepted:
            fleet[w].throttled(t, measured=local[w].measured(VENDOR), sent=sent, retry_after=retry_after)
            if not heard:  # the first cut: every other worker hears of it, and adds its share
                heard = True
                for other, worker in enumerate(fleet):
                    if other != w:
                        worker.heard(t, local[other])
        after, held, slot, at = t + interval, None, None, None
        if fleet[w].paced():
            wait, held, at = fleet[w].book(t, None, None, None, ahead=True)
            slot = None if held is None else t + wait
            after = t + min(max(interval, wait), longest)
        heapq.heappush(events, (after, 0, job, (held, slot, at), -1))
    return run
