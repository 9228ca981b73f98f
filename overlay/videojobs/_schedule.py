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

__all__ = ["ENDED", "SAVE", "SLEEPS", "Job", "Schedule", "no_slot", "share", "unexpected"]


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


def share(max_requests: int, vendors: int) -> int:
    """The requests one vendor may have in flight when ``vendors`` vendors have requests to send
    or under way: an equal share of ``max_requests`` (all of them for one). A vendor that stops
    answering then holds its share of the slots, each for up to a request's timeout, not all of
    them: with one line for every vendor, 1,000 jobs of a vendor that had begun to hang took
    every slot, and jobs of a healthy one that had ended at the vendor ended in WaitTimeout."""
    return max(1, max_requests // max(1, vendors))


class Schedule:
    """Every job of one ``wait_all`` and where each one is; ``now`` is the client's clock.

    The jobs whose request waits for a slot wait in one line per vendor, taken in turn, each
    vendor's first come first served, at most :func:`share` of ``max_requests`` of a vendor in
    flight (None: no bound but the driver's)."""

    __slots__ = (
        "_flying", "_lines", "_order", "_turn", "ends", "finished", "max_requests", "now", "on_update", "save",
        "sleepers",
    )  # fmt: skip

    def __init__(
        self, now: Callable[[], float], on_update: OnUpdate | None, save: bool, max_requests: int | None = None
    ) -> None:
        self.now = now
        self.on_update = on_update
        self.save = save  # a job that succeeds is saved before it ends (one without URLs: DownloadError)
        self.max_requests = max_requests
        self.sleepers: list[tuple[float, int, Job]] = []  # a heap: (wake on the clock, order, job)
        self._lines: dict[str, collections.deque[Job]] = {}  # each vendor's Sends waiting for a slot, in order
        self._turn: collections.deque[str] = collections.deque()  # the vendors, in the order they are served
        self._flying: collections.Counter[str] = collections.Counter()  # each vendor's requests taken, not yet sent
        self.ends: list[tuple[float, int, Job, Send]] = []  # a heap: when each queued Send's time runs out
        self.finished: collections.deque[JobStatus | VideoJobsError] = collections.deque()
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        """Entries in the lines (a job whose time ran out in line is dropped when its turn comes)."""
        return sum(map(len, self._lines.values()))

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

    def wake_all(self) -> list[Job]:
        """Every sleeper, taken out of the heap at once (their client was closed: each next poll
        says so, now rather than at its time)."""
        woken = [job for _, _, job in self.sleepers]
        self.sleepers.clear()
        return woken

    def queue(self, job: Job, send: Send, expires: float) -> None:
        """``job``'s ``send`` waits for a request slot, in line, until ``expires`` at most."""
        job.queued = True
        line = self._lines.get(job.vendor)
        if line is None:
            line = self._lines[job.vendor] = collections.deque()
            self._turn.append(job.vendor)
        line.append(job)
        ends = self.ends
        if len(ends) > 2 * self.waiting + 64:  # sent jobs' entries: drop them in one go
            ends[:] = [entry for entry in ends if entry[2].queued and entry[2].action is entry[3]]
            heapq.heapify(ends)
        heapq.heappush(ends, (expires, next(self._order), job, send))

    def take(self) -> Job | None:
        """The next job in line for a request slot, the vendors in turn (None: nobody waits, or
        every vendor with jobs in line has its share in flight). Each job taken is :meth:`sent`."""
        lines, turn, flying = self._lines, self._turn, self._flying
        cap = None
        if self.max_requests is not None and len(turn) > 1:
            cap = share(self.max_requests, sum(1 for v in turn if flying[v] or lines[v]))
        for _ in range(len(turn)):
            vendor = turn[0]
            turn.rotate(-1)
            line = lines[vendor]
            while line and not line[0].queued:  # one whose time ran out in line
                line.popleft()
            if line and (cap is None or flying[vendor] < cap):
                job = line.popleft()
                job.queued = False
                flying[vendor] += 1
                return job
        return None

    def sent(self, job: Job) -> None:
        """The request of a job :meth:`take` gave is over (answered, failed or never sent)."""
        self._flying[job.vendor] -= 1

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
