"""``wait_all``'s scheduler without its I/O: every job's plan walked to its next wait, for both faces.

One :class:`Schedule` holds every job of a ``wait_all``: those asleep (a heap on the client's
clock), those whose request waits for one of ``max_requests`` slots (first come first served,
each until its call's time runs out), and the results not yet handed to the caller. A driver
in ``_batch`` does the I/O: the blocking one hands each ``Send`` to a pool of threads; the
asyncio one runs ``max_requests`` sender coroutines that take the queued jobs in turn, so a
poll costs no task, timer or future of its own (one alarm serves every sleeper). Nothing here
sleeps, sends or touches an event loop.
"""

from __future__ import annotations

import collections
import heapq
import itertools
from collections.abc import Callable
from typing import Any, Final

from ._base import refer
from ._calls import Action, Emit, Pace, Plan, Send
from ._download import nothing_to_fetch
from ._exceptions import VideoJobsError
from ._plan import Walk
from ._status import JobStatus, State
from ._translate import Exchange
from ._wait import NotSent, OnUpdate, call_on_update

__all__ = ["ENDED", "SAVE", "SLEEPS", "Job", "Schedule", "no_slot", "unexpected"]


class _Outcome:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


SLEEPS: Final = _Outcome("SLEEPS")
"""What :meth:`Schedule.step` says of a job that went to sleep (it is in the heap)."""
ENDED: Final = _Outcome("ENDED")
"""... of a job that ended: its status or its error waits in ``finished``."""
SAVE: Final = _Outcome("SAVE")
"""... of a job that succeeded with videos to save (``job.last``): the driver saves, then ends it."""


def unexpected(ref: str, what: str, exc: BaseException) -> VideoJobsError:
    """A bug of ours must not cost the caller a job: the error that says so, typed, for that job."""
    error = VideoJobsError(
        f"the {what} for {ref} failed unexpectedly ({type(exc).__name__}); this is a videojobs bug",
        vendor=ref.partition(":")[0],
    )
    error.__cause__ = exc
    error.ref = ref
    return error


def no_slot(vendor: str) -> NotSent:
    return NotSent(
        # (or the event loop was too busy to run a sender: one job of one, its first GET, on a loaded machine)
        "no request slot came free before the call's time ran out (wait_all's max_requests were all busy, "
        "or its event loop was)",
        vendor=vendor,
    )


class Job:
    """One job's wait: its walk over the plan, what it waits on and its last status."""

    __slots__ = ("action", "last", "queued", "ref", "send", "steps", "vendor", "walk")

    def __init__(self, ref: str, plan: Plan[None], send: Any, vendor: str) -> None:
        self.ref = ref
        self.walk: Walk[Action, Exchange | bool, None] = Walk(plan)
        self.steps = iter(self.walk)
        self.send = send  # the sender of its attempts: blocking or asyncio, as its driver needs
        self.vendor = vendor
        self.last: JobStatus | None = None
        self.action: Send | Pace | None = None  # what it waits on
        self.queued = False  # its Send waits for a request slot


class Schedule:
    """Every job of one ``wait_all`` and where each one is; ``now`` is the client's clock."""

    __slots__ = ("_order", "ends", "finished", "now", "on_update", "ready", "save", "sleepers")

    def __init__(self, now: Callable[[], float], on_update: OnUpdate | None, save: bool) -> None:
        self.now = now
        self.on_update = on_update
        self.save = save  # a job that succeeds is saved before it ends (one without URLs: DownloadError)
        self.sleepers: list[tuple[float, int, Job]] = []  # a heap: (wake on the clock, order, job)
        self.ready: collections.deque[Job] = collections.deque()  # Sends waiting for a slot, in order
        self.ends: list[tuple[float, int, Job, Send]] = []  # a heap: when each queued Send's time runs out
        self.finished: collections.deque[JobStatus | VideoJobsError] = collections.deque()
        self._order = itertools.count()

    def start(self, ref: str, poll: Callable[[str], tuple[Plan[None], Any, str]]) -> Job | None:
        """A job for ``ref`` (None, and its error in ``finished``, when it cannot even start)."""
        try:
            plan, send, vendor = poll(ref)
        except VideoJobsError as exc:
            refer(exc, ref)
            self.finished.append(exc)
            return None
        except Exception as exc:  # a bug of ours must not cost the caller the other jobs: say so, typed
            self.finished.append(unexpected(ref, "wait", exc))
            return None
        return Job(ref, plan, send, vendor)

    def step(self, job: Job, pace_sleeps: bool = False) -> Send | Pace | _Outcome:
        """Walk the job's plan to its next wait: the ``Send`` or ``Pace`` the driver must do, or
        SLEEPS, ENDED or SAVE. A blocking driver sleeps a ``Pace`` out (``pace_sleeps``: into the
        heap, and the plan asks the rate again). ``job.walk``'s value or error is the last answer."""
        try:
            for action in job.steps:
                kind = type(action)
                if kind is Send or (kind is Pace and not pace_sleeps):
                    job.action = action  # type: ignore[assignment]
                    return action  # type: ignore[return-value]
                if kind is Emit:
                    job.last = action.status  # type: ignore[union-attr]
                    call_on_update(self.on_update, job.last)
                else:  # a Sleep, or a Pace slept out
                    heapq.heappush(self.sleepers, (self.now() + action.seconds, next(self._order), job))  # type: ignore[union-attr]
                    return SLEEPS
            last = job.last
            assert last is not None
            if self.save and last.state is State.SUCCEEDED:
                if last.video_urls:
                    return SAVE
                # nothing to fetch (a video id only, no video): download's answer for it, at once,
                # not after a save slot (other jobs' downloads held it minutes): no I/O to wait for
                self.end(job, nothing_to_fetch(last))
                return ENDED
            self.end(job, last)
        except VideoJobsError as exc:
            self.end(job, exc)
        except Exception as exc:  # a bug of ours must not cost the caller this job: say so, typed
            self.end(job, unexpected(job.ref, "wait", exc))
        return ENDED

    def end(self, job: Job, result: JobStatus | VideoJobsError) -> None:
        if isinstance(result, VideoJobsError):
            result.ref = job.ref
        job.action = None
        self.finished.append(result)

    def due(self) -> list[Job]:
        """The sleepers whose time has come, taken out of the heap."""
        sleepers, now = self.sleepers, self.now()
        woken = []
        while sleepers and sleepers[0][0] <= now:
            woken.append(heapq.heappop(sleepers)[2])
        return woken

    def queue(self, job: Job, send: Send, expires: float) -> None:
        """``job``'s ``send`` waits for a request slot, in line, until ``expires`` at most."""
        job.queued = True
        self.ready.append(job)
        ends = self.ends
        if len(ends) > 2 * len(self.ready) + 64:  # sent jobs' entries: drop them in one go
            ends[:] = [entry for entry in ends if entry[2].queued and entry[2].action is entry[3]]
            heapq.heapify(ends)
        heapq.heappush(ends, (expires, next(self._order), job, send))

    def take(self) -> Job | None:
        """The first job in line for a request slot (None: nobody waits)."""
        ready = self.ready
        while ready:
            job = ready.popleft()
            if job.queued:  # not one whose time ran out in line
                job.queued = False
                return job
        return None

    def expired(self) -> list[Job]:
        """The jobs in line whose time ran out, taken out of the line (their plans are told so)."""
        ends, now = self.ends, self.now()
        out = []
        while ends and ends[0][0] <= now:
            _, _, job, send = heapq.heappop(ends)
            if job.queued and job.action is send:
                job.queued = False
                job.walk.error = no_slot(job.vendor)
                out.append(job)
        return out

    def next_time(self) -> float | None:
        """When the next sleeper wakes or the next queued Send expires, on the clock (None: neither)."""
        soonest = None
        if self.sleepers:
            soonest = self.sleepers[0][0]
        ends = self.ends
        while ends and not (ends[0][2].queued and ends[0][2].action is ends[0][3]):
            heapq.heappop(ends)  # sent: no longer in line
        if ends and (soonest is None or ends[0][0] < soonest):
            soonest = ends[0][0]
        return soonest
