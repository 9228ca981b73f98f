"""One implementation of a status call and of a wait; the sync and async clients only drive it.

A call is a *plan*: a generator that yields what it needs done and is sent the result,
without doing any I/O itself (the sans-I/O pattern of h11 and hyper):

- ``Send(timeout)``: send the request once, bounded by ``timeout`` seconds once it has its
  request slot (waiting for one is bounded by ``until``, the call's end on its clock); the driver
  sends back the :class:`~videojobs._translate.Exchange`, or throws the ``NetworkError`` in;
- ``Sleep(seconds)``: sleep on the client's clock;
- ``Pace(seconds)``: wait for the vendor's pace to grant a slot: a blocking driver sleeps
  ``seconds`` and the plan asks the rate again; an asyncio driver queues the call in the
  vendor's :class:`SlotQueue`, which takes the slot for it (and sends back True);
- ``Emit(status)``: hand a status to the caller (``watch`` yields it).

:func:`drive` and :func:`run` run a plan with blocking I/O, each a loop over ``_plan.Walk``, the
walker downloads share. :func:`adrive` and :func:`arun` run it with asyncio, each walking the
plan itself, inline: a ``Send`` is one ``await`` of the sender in the driver's own frame, so a
poll costs the driver's coroutine, the sender's and the transport's, nothing between.
``wait_all`` walks every job's plan in its scheduler (``_schedule``, ``_batch``).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar

from ._adapter import ForeignAnswer
from ._exceptions import TRANSIENT, MalformedResponseError, NetworkError, RateLimitError, VideoJobsError
from ._plan import Walk
from ._ratecontrol import AdaptiveRate, RetryBudget, SlotWithdrawn
from ._status import JobStatus
from ._translate import Exchange, translate
from ._wait import MIN_ATTEMPT, Clock, NotSent, Stop, Waiter

if TYPE_CHECKING:
    import asyncio
    import logging

    from ._adapter import VendorAdapter

__all__ = [
    "AsyncSend",
    "Emit",
    "Pace",
    "Send",
    "Sleep",
    "SlotQueue",
    "VendorCore",
    "adrive",
    "arun",
    "drive",
    "run",
    "status_plan",
    "watch_plan",
]

_DEBUG: Final = 10  # logging.DEBUG, without importing logging on import videojobs


_LOGGER: logging.Logger | None = None


def _logger() -> logging.Logger:
    """The videojobs logger, found once (logging itself loads with the first client, not on import)."""
    global _LOGGER
    if _LOGGER is None:
        import logging

        _LOGGER = logging.getLogger("videojobs")
    return _LOGGER


RETRY_WAIT_INITIAL: Final = 0.5
RETRY_WAIT_MAX: Final = 8.0
RETRY_JITTER: Final = 0.5
"""Backoff between retries: min(8, 0.5 * 2**(n-1)) s plus up to 0.5 s of jitter (stamina's
defaults, which this replaces: a retry here must also fit the call's budget)."""

PACING_JITTER: Final = 0.1
"""Up to 10 % added to a wait for a throttled vendor's next slot, so waiting calls do not all wake at once."""

POLL_FAILURES: Final[tuple[type[VideoJobsError], ...]] = (*TRANSIENT, MalformedResponseError)
"""What a wait rides out as a failed poll: a maintenance page mid-wait is no reason to stop."""


# The actions are plain slotted classes, not attrs records: one is made per step of every call.
class Send:
    __slots__ = ("epoch", "timeout", "until")

    def __init__(self, timeout: float, epoch: int | None = None, until: float = math.inf) -> None:
        self.timeout = timeout
        self.epoch = epoch  # the vendor's rate epoch the slot was granted in
        # when the call's time ends, on the client's clock: how long it may wait for a request
        # slot (wait_all's, a connection), so calls queued behind busy slots wait their turn
        # rather than time out and retry
        self.until = until


class Sleep:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Pace:
    __slots__ = ("core", "end", "seconds", "task_id")

    def __init__(self, core: VendorCore, task_id: str, seconds: float, end: float) -> None:
        self.core, self.task_id = core, task_id
        self.seconds = seconds  # how long a blocking driver sleeps before the plan asks again
        self.end = end  # the call's time: a queued call still waiting then fails


class Emit:
    __slots__ = ("status",)

    def __init__(self, status: JobStatus) -> None:
        self.status = status


Action = Send | Sleep | Pace | Emit
R = TypeVar("R")
Plan = Generator[Action, Exchange | bool | None, R]


class VendorCore:
    """What one vendor's calls need besides I/O: adapter, limits, retry settings, rate limiter,
    and the count of calls waiting for a slot from the rate limiter (their wake-ups are spaced)."""

    def __init__(
        self,
        adapter: VendorAdapter,
        *,
        timeout: float,
        max_retries: int,
        rate: AdaptiveRate,
        budget: RetryBudget,
        clock: Clock,
    ) -> None:
        self.adapter = adapter
        self.name: str = adapter.name
        self.timeout = timeout
        self.max_retries = max_retries
        self.rate = rate  # shared by every call to this vendor on the client
        self.budget = budget
        self.clock = clock
        self.rng = random.Random()
        # calls that began waiting for a slot from ``rate`` and those done waiting: tickets - served
        # are waiting (approximate across threads; it only spaces their wake-ups)
        self.tickets = self.served = 0
        self.queue: SlotQueue | None = None  # asyncio: the calls waiting for a slot, on the loop it serves

    def retry_wait(self, exc: VideoJobsError, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based): the vendor's Retry-After, or backoff with jitter."""
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            return float(exc.retry_after)
        backoff: float = RETRY_WAIT_INITIAL * 2.0 ** (retry - 1)
        return min(RETRY_WAIT_MAX, backoff) + self.rng.uniform(0, RETRY_JITTER)


def status_plan(core: VendorCore, task_id: str, until: float = math.inf, now: float | None = None) -> Plan[JobStatus]:
    """One status call: at most ``max_retries + 1`` attempts of at most ``timeout`` s each, all of it,
    backoffs and Retry-After waits included, within ``timeout * (max_retries + 1)`` s and before ``until``.
    The vendor's pace (``core.rate``) and retry budget (``core.budget``) are shared with every other call.
    ``now``: the clock's time, when the caller has just read it (the clock is read once per step)."""
    clock, rate = core.clock, core.rate
    if now is None:
        now = clock.now()
    end = min(until, now + core.timeout * (core.max_retries + 1))
    retry = 0
    last: VideoJobsError | None = None  # the error the retry under way is for
    core.budget.first_attempt(now)
    while True:
        if (delay := rate.acquire(now)) > 0:
            try:
                yield from _wait_for_slot(core, task_id, delay, end)
            except RateLimitError:
                if last is not None and not isinstance(last, NotSent):  # the pace took the time of a retry
                    raise last from last.__cause__  # for this one's own error: that stands
                raise
            now = clock.now()
        left = end - now
        if last is not None and left < MIN_ATTEMPT:
            raise last  # the retry's backoff (or its pace) took the time it had: the reason for it stands
        if left <= 0:
            raise NetworkError(
                f"task {task_id}: the call's time ran out before a request could be sent", vendor=core.name
            )
        sent = now
        answer = None
        try:
            answer = yield Send(min(core.timeout, left), rate.epoch, end)
            assert isinstance(answer, Exchange)
            status = translate(core.adapter, task_id, answer)
        except SlotWithdrawn:
            now = clock.now()
            continue  # queued behind the concurrency limit while the vendor throttled: a new slot
        except TRANSIENT as exc:
            now = clock.now()
            rate.observe(now, exc, sent)
            retry += 1
            wait = core.retry_wait(exc, retry)
            # no retry past max_retries, nor one that could not be sent in the call's time (the
            # vendor's Retry-After, or the backoff, asks for more), nor past the retry budget
            if retry > core.max_retries or now + wait + MIN_ATTEMPT > end or not core.budget.allow_retry(now):
                if isinstance(exc, NotSent):  # this attempt was never sent: what the call ends with
                    if last is not None and not isinstance(last, NotSent):
                        raise last from last.__cause__  # the error its retry was for, as it was
                    raise NetworkError(exc.message, vendor=core.name) from exc
                raise
            last = exc
            _logger().debug("%s %s: %s; retry %d in %.2f s", core.name, task_id, type(exc).__name__, retry, wait)
            yield Sleep(wait)
            now = clock.now()
            continue
        except VideoJobsError as exc:
            rate.observe(clock.now(), None, sent)  # an answer, not a throttle
            if isinstance(exc.__cause__, ForeignAnswer) and isinstance(answer, Exchange):
                # another job's answer: its connection is out of step (one merely unreadable is in
                # step, and dropped, it cost another thread's request on it a retry)
                answer.drop()
            raise
        rate.observe(clock.now(), None, sent)
        if (logger := _logger()).isEnabledFor(_DEBUG):
            logger.debug(
                "%s %s: HTTP %d, %s (%s)", core.name, task_id, answer.status_code, status.state, status.vendor_state
            )
            for problem in status.problems:
                logger.debug("%s %s: %s", core.name, task_id, problem)
        return status


def _wait_for_slot(
    core: VendorCore, task_id: str, delay: float, end: float
) -> Generator[Action, Exchange | bool | None, None]:
    """Sleep until the vendor's pace grants this call a slot (nothing is booked: each wake-up asks
    again), after the slots of the calls that began waiting before it.

    A paced vendor's rate grows at most ``rate.growth`` e-folds a second while calls wait for it
    (slow start, e-fold a round at most), so a call with ``n`` calls waiting before it sleeps
    ``ln(1 + n / rate) / growth`` s, the soonest their slots can all be taken, then asks again.
    Woken all at once, a thousand waiting calls took a thousand wake-ups per slot (one was sent,
    the rest slept again: 54 sleeps a request at 1,000 jobs); waking at the soonest their turn can
    come, none sleeps past its slot and a request costs about three. That holds for the threads
    of a blocking client; an asyncio driver serves ``Pace`` from the vendor's :class:`SlotQueue`
    instead, where a request costs one wake-up however many calls wait."""
    clock, rate, rng = core.clock, core.rate, core.rng
    core.tickets += 1
    ticket = core.tickets
    try:
        while True:
            now = clock.now()
            if now + delay >= end:
                raise no_slot(core, task_id, delay)
            ahead = ticket - core.served - 1  # calls waiting since before this one
            per_second = rate.rate
            if ahead > 0 and per_second:
                delay = max(delay, math.log1p(ahead / per_second) / rate.growth)
            if ahead > 0 or rate.throttled:  # calls woken together would all ask at once
                delay *= 1.0 + PACING_JITTER * rng.random()
            if (yield Pace(core, task_id, min(delay, end - now), end)):
                return  # an asyncio driver's queue took the slot for this call
            if (now := clock.now()) >= end:
                raise no_slot(core, task_id)  # as the asyncio queue ends a call whose time ran out
            if (delay := rate.acquire(now)) <= 0:
                return
    finally:
        core.served += 1


def no_slot(core: VendorCore, task_id: str, delay: float | None = None) -> RateLimitError:
    """The error of a call that gets no request slot from its vendor's pace in its time: one
    whose next slot is ``delay`` s away, past its time, or (None) one whose time ran out waiting."""
    why = (
        "the vendor is throttling"
        if core.rate.throttled
        else "its requests are paced (slow start: their rate grows until the vendor throttles)"
    )
    if delay is None:
        return RateLimitError(
            f"task {task_id}: {why} and no request slot came before this call's time ran out", vendor=core.name
        )
    return RateLimitError(
        f"task {task_id}: {why} and the next request slot is {delay:.2g} s away, past this call's time",
        vendor=core.name,
        retry_after=delay,
    )


PACE_LOOK: Final = 0.01
"""Seconds the slot queue sleeps at most, in slow start, before it asks the rate again: the rate
grows while calls wait (e-fold a round, at least 0.1 s), so a token's time at the rate of a
moment ago can be ten times too long. A throttled or fixed rate is slept on for a whole token."""


PACE_TICK: Final = 0.005
"""Seconds the slot queue sleeps at least between two grants: at a fast rate the tokens that came
meanwhile are granted together (five at 1,000 req/s), not one wake-up of the loop per token (at
1,000 jobs, slow start's ramp took half as many loop turns: 560 against 1,125). A vendor's
limiter counts per second; 5 ms of its rate at once is within any burst it allows."""


def slot_queue(core: VendorCore) -> SlotQueue:
    """The vendor's slot queue on the running event loop (a new one on a new loop)."""
    import asyncio

    loop = asyncio.get_running_loop()
    queue = core.queue
    if queue is None or queue.loop is not loop:
        queue = core.queue = SlotQueue(core, loop)
    return queue


class SlotQueue:
    """The calls of one vendor that wait on one event loop for its pace, first come first served.

    One pacer task takes each slot the vendor's rate grants (as many at once as there are tokens)
    for the call at the head of the queue and wakes it; a call whose time runs out first fails with
    a ``RateLimitError``, as one that sees its slot past its time at once does. A request costs one
    wake-up of its call however many wait: each asking the rate again on a timer of its own, a
    hundred thousand waiting calls woke about fifty times a request and the loop did little else.
    """

    __slots__ = ("core", "ends", "loop", "order", "pacer", "waiting")

    def __init__(self, core: VendorCore, loop: asyncio.AbstractEventLoop) -> None:
        self.core, self.loop = core, loop
        self.waiting: collections.deque[asyncio.Future[bool]] = collections.deque()  # in arrival order
        self.ends: list[tuple[float, int, asyncio.Future[bool], str]] = []  # a heap: whose time runs out first
        self.order = itertools.count()
        self.pacer: asyncio.Task[None] | None = None

    def wait(self, task_id: str, end: float) -> asyncio.Future[bool]:
        """A future set to True once a slot was taken for this call (cancel it to leave the queue)."""
        future: asyncio.Future[bool] = self.loop.create_future()
        self.waiting.append(future)
        heapq.heappush(self.ends, (end, next(self.order), future, task_id))
        if self.pacer is None or self.pacer.done():  # done: cut short, its _ended not run yet
            self.pacer = self.loop.create_task(self._pace(), name=f"videojobs pace {self.core.name}")
            self.pacer.add_done_callback(self._ended)
        return future

    def _ended(self, pacer: asyncio.Task[None]) -> None:
        """The pacer is done: with the queue served, or cut short (cancelled, even before its first
        step; its clock failed), and then no waiting call is left hanging: each gets a NetworkError."""
        cause = None if pacer.cancelled() else pacer.exception()
        if self.pacer is not pacer or (not pacer.cancelled() and cause is None):
            return  # it served the queue (and let go of it), or a new pacer serves it now
        self.pacer = None
        for future in self.waiting:
            if not future.done():
                kind = "CancelledError" if cause is None else type(cause).__name__
                error = NetworkError(f"the wait for a request slot was cut short ({kind})", vendor=self.core.name)
                error.__cause__ = cause
                future.set_exception(error)
        self.waiting.clear()
        self.ends.clear()

    async def _pace(self) -> None:
        core = self.core
        clock, rate, waiting, ends = core.clock, core.rate, self.waiting, self.ends
        while True:
            now = clock.now()
            while ends and (ends[0][2].done() or ends[0][0] <= now):
                _, _, future, task_id = heapq.heappop(ends)
                if not future.done():
                    future.set_exception(no_slot(core, task_id))
            while waiting and waiting[0].done():
                waiting.popleft()  # left the queue: its time ran out, or its caller was cancelled
            if not waiting:
                ends.clear()  # every future in it is done
                self.pacer = None  # now, not in a callback: a call queued next starts a new pacer
                return
            if len(ends) > 2 * len(waiting) + 64:  # served calls' entries: drop them in one go
                ends[:] = [entry for entry in ends if not entry[2].done()]
                heapq.heapify(ends)
            delay = rate.acquire(now)
            if delay <= 0:
                waiting.popleft().set_result(True)
                continue
            if rate.adaptive and not rate.throttled:
                delay = min(delay, PACE_LOOK)
            await clock.asleep(min(max(delay, PACE_TICK), ends[0][0] - now))


def watch_plan(core: VendorCore, task_id: str, waiter: Waiter) -> Plan[None]:
    """Poll until the job ends, emitting each change; failed polls are ridden out (see Waiter)."""
    clock = core.clock
    now = clock.now()
    polled = False
    while True:
        # the first poll goes while any time is left; a later one needs MIN_ATTEMPT of it (one
        # that could not be sent in time would count as a failed poll of the vendor's)
        if now >= waiter.deadline or (polled and now > waiter.deadline - MIN_ATTEMPT):
            raise waiter.timed_out() from waiter.last_error
        polled = True
        try:
            status = yield from status_plan(core, task_id, waiter.deadline, now)
        except POLL_FAILURES as exc:
            waiter.failed(exc)
            now = clock.now()
        else:
            now = clock.now()
            if waiter.observe(status, now):
                yield Emit(status)
                now = clock.now()  # the caller's on_update ran meanwhile
            if status.is_terminal:
                return
        delay = waiter.next_sleep(now)
        if delay is not None:
            yield Sleep(delay)
            now = clock.now()


def drive(
    plan: Plan[R], send: Callable[[float, int | None], Exchange], sleep: Callable[[float], None]
) -> Generator[JobStatus, None, R]:
    """Run a plan with blocking I/O, yielding what it emits; its result is the StopIteration value."""
    walk: Walk[Action, Exchange | bool, R] = Walk(plan)
    for action in walk:
        if type(action) is Emit:
            yield action.status
        elif type(action) is Sleep or type(action) is Pace:
            sleep(action.seconds)
        else:
            try:
                walk.value = send(action.timeout, action.epoch)  # type: ignore[union-attr]
            except VideoJobsError as exc:
                walk.error = exc
    return walk.result


def run(plan: Plan[R], send: Callable[[float, int | None], Exchange], sleep: Callable[[float], None]) -> R:
    """Run a plan that emits nothing (a status call) and return its result: :func:`drive`'s walk,
    in this frame (no generator of its own between the call and its plan)."""
    walk: Walk[Action, Exchange | bool, R] = Walk(plan)
    for action in walk:
        if type(action) is Send:
            try:
                walk.value = send(action.timeout, action.epoch)
            except VideoJobsError as exc:
                walk.error = exc
        elif type(action) is Sleep or type(action) is Pace:
            sleep(action.seconds)
        else:
            raise AssertionError("a status call emits nothing")  # pragma: no cover
    return walk.result


AsyncSend: TypeAlias = "Callable[[float, int | None, float], Awaitable[Exchange]]"
"""One status attempt: ``send(timeout, epoch, until)`` (see ``_sessions.AsyncVendorClient.exchange``):
a busy connection slot is waited for until ``until`` at most (the call's end, on its clock)."""


async def _queue_for_pace(walk: Walk[Action, Exchange | bool, Any], pace: Pace, stop: Stop | None = None) -> None:
    """An asyncio driver's ``Pace``: wait in the vendor's :class:`SlotQueue` (True back to the
    plan once a slot was taken for it), or hand the plan the error it ended with (``stop``'s
    when the client is closed meanwhile)."""
    waiting = slot_queue(pace.core).wait(pace.task_id, pace.end)
    forget = stop.fail_on_close(waiting, pace.core.name) if stop is not None else None
    try:
        walk.value = await waiting
    except VideoJobsError as exc:
        walk.error = exc
    finally:
        if forget is not None:
            forget()


async def adrive(
    plan: Plan[None], send: AsyncSend, sleep: Callable[[float], Awaitable[None]], stop: Stop | None = None
) -> AsyncIterator[JobStatus]:
    """The asyncio twin of :func:`drive`, for a plan that returns nothing (a wait: ``watch``);
    ``stop``: the client's close, which ends a wait in its vendor's slot queue."""
    walk: Walk[Action, Exchange | bool, None] = Walk(plan)
    for action in walk:
        kind = type(action)
        if kind is Send:
            try:
                walk.value = await send(action.timeout, action.epoch, action.until)  # type: ignore[union-attr]
            except VideoJobsError as exc:
                walk.error = exc
        elif kind is Sleep:
            await sleep(action.seconds)  # type: ignore[union-attr]
        elif kind is Pace:
            await _queue_for_pace(walk, action, stop)  # type: ignore[arg-type]
        else:
            yield action.status  # type: ignore[union-attr]


async def arun(plan: Plan[R], send: AsyncSend, sleep: Callable[[float], Awaitable[None]]) -> R:
    """Run a plan that emits nothing (a status call) with asyncio and return its result."""
    walk: Walk[Action, Exchange | bool, R] = Walk(plan)
    for action in walk:
        if type(action) is Send:
            try:
                walk.value = await send(action.timeout, action.epoch, action.until)
            except VideoJobsError as exc:
                walk.error = exc
        elif type(action) is Sleep:
            await sleep(action.seconds)
        elif type(action) is Pace:
            await _queue_for_pace(walk, action)
        else:
            raise AssertionError("a status call emits nothing")  # pragma: no cover
    return walk.result
