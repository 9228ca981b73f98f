"""Many jobs at once: ``wait_all`` and ``download_all``'s orchestration, for both faces.

The faces hand in what one job needs (a wait's plan and its sender, a save); this module runs
them all at once with the bounds they are given (``max_requests`` requests in flight,
``max_downloads`` jobs saving), and yields each job exactly once: its final status, or the
typed error that ended it (``error.ref`` set).

``wait_all`` is one :class:`~videojobs._schedule.Schedule` (every job's plan walked to its next
wait, the sleepers in a heap on the client's clock, the requests waiting for a slot in line)
with a driver for each face, no task or thread per job:

- asyncio (``wait_all``): ``max_requests`` sender coroutines take the jobs in line in turn, each
  request one ``await`` of the job's sender in the sender's frame; one alarm wakes the sleepers
  and fails a request still in line when its call's time runs out; a paced vendor's slot queue
  hands its jobs back; a save is a task (``max_downloads`` at a time).
- blocking (``wait_all_sync``): the caller's thread runs the schedule and hands each ``Send`` to a
  pool of ``max_requests`` threads and each save to a pool of ``max_downloads`` threads
  (``concurrent.futures``). A ``Send`` waits for a free thread while its status call has time
  (the call's end, ``until``), as the async face's line does, and fails with the same error.

``download_all`` runs a coroutine (or a pool thread) per job behind a gate of ``max_downloads``.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import math
import queue
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

from ._calls import AsyncSend, Pace, Plan, Send, slot_queue
from ._exceptions import VideoJobsError
from ._gate import Gate
from ._schedule import ENDED, SAVE, SLEEPS, Job, Schedule, no_slot, unexpected
from ._status import JobStatus
from ._translate import Exchange
from ._wait import MIN_ATTEMPT, Clock, OnUpdate, Stop

__all__ = [
    "AsyncSend",
    "SyncSend",
    "download_all",
    "download_all_sync",
    "in_order",
    "in_order_sync",
    "wait_all",
    "wait_all_sync",
]

Poll = Callable[[str], "tuple[Plan[None], AsyncSend, str]"]
"""A job's wait: its plan, the sender of its attempts and its vendor's name."""
Save = Callable[[JobStatus, "float | None"], Awaitable[JobStatus]]
"""Every video of a finished job saved, before a deadline (``time.monotonic()``) or none."""
SyncSend = Callable[[float, "int | None"], Exchange]
"""One status attempt, blocking: ``send(timeout, epoch)`` (see ``_sessions.VendorClient.exchange``)."""
SyncPoll = Callable[[str], "tuple[Plan[None], SyncSend, str]"]
SyncSave = Callable[[JobStatus, "float | None"], JobStatus]

TICK: Final = 0.05
"""While requests are in flight and a job sleeps, the scheduler checks for answers this often
(seconds on the client's clock): a wake-up is at most this late. A sleep with nothing in
flight is one ``clock.sleep``."""
TICK_REAL: Final = 0.01
"""... after first waiting this long (real seconds) for an answer, so a fast answer is handled
before the clock moves (on a simulated clock, a loopback answer arrives within it)."""


class _Alarm:
    """Rings ``ring`` once at a time on the client's clock, the soonest it was ``set`` to: a
    timer on the event loop for the system clock (the loop's own), else a task sleeping on the
    clock (a simulated clock moves only when something sleeps on it)."""

    __slots__ = ("_at", "_clock", "_handle", "_loop", "_ring", "_system")

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Clock, ring: Callable[[], None]) -> None:
        self._loop, self._clock, self._ring = loop, clock, ring
        self._system = clock.now is time.monotonic  # SystemClock: the loop's timers run on it
        self._at = math.inf
        self._handle: asyncio.TimerHandle | asyncio.Task[None] | None = None

    def set(self, at: float) -> None:
        """Ring at ``at`` (or sooner, if set sooner already)."""
        if at >= self._at:
            return
        self.cancel()
        self._at = at
        delay = max(0.0, at - self._clock.now())
        if self._system:
            self._handle = self._loop.call_at(self._loop.time() + delay, self._rang)
        else:
            self._handle = self._loop.create_task(self._sleep(delay), name="videojobs wait_all alarm")

    async def _sleep(self, delay: float) -> None:
        await self._clock.asleep(delay)
        self._rang()

    def _rang(self) -> None:
        self._handle, self._at = None, math.inf
        self._ring()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle, self._at = None, math.inf


async def wait_all(
    refs: list[str],
    poll: Poll,
    clock: Clock,
    save: Save | None,
    *,
    timeout: float | None,
    on_update: OnUpdate | None,
    max_requests: int,
    max_downloads: int,
    request_timeout: float,
    stop: Stop | None = None,
) -> AsyncGenerator[JobStatus | VideoJobsError, None]:
    """Wait for every job (arguments checked by the caller), yielding each as it ends; with
    ``save``, a job that succeeds is saved first (one with no URL to fetch ends at once with the
    ``DownloadError`` ``download`` gives it; ``max_downloads`` at a
    time, by the wait's deadline plus one attempt's ``request_timeout``: the slack a poll has).

    A request waits in line for one of ``max_requests`` senders until its call's time runs out
    (less ``MIN_ATTEMPT``), and its attempt's time runs from when a sender takes it. Once
    ``stop`` is set (the client closed), every sleeping job polls at once (and hears so)."""
    loop = asyncio.get_running_loop()
    now = clock.now
    schedule = Schedule(now, on_update, save is not None, max_requests)
    saving = Gate(max_downloads)
    saves_until = None if timeout is None else time.monotonic() + timeout + request_timeout  # real time
    idle: collections.deque[asyncio.Future[None]] = collections.deque()  # senders with nothing to send
    pending: set[asyncio.Future[Any]] = set()  # slot-queue waits and saves: cancelled on leaving
    paced_for: dict[asyncio.Future[bool], str] = {}  # each slot-queue wait's vendor
    consumer: asyncio.Future[None] | None = None  # the caller, waiting for a result
    over = False  # the caller left: a callback already scheduled (a slot granted as it left) starts nothing
    failure: BaseException | None = None
    """What a caller's code raised that is not an ``Exception`` (``pytest.fail()``, ``GeneratorExit``,
    ``KeyboardInterrupt``): raised to the caller at once, as the blocking face raises it. Raised in a
    sender or a loop callback, it would end that task (or be logged by the loop) and leave its job
    unfinished: the wait would then never end, its timeout's alarm gone with it."""

    def stray(exc: asyncio.CancelledError) -> bool:
        """A CancelledError out of one job's send or save that is not this wait_all being cancelled
        (a transport cancelling a future of its own): it ends that job, typed, not a sender."""
        task = asyncio.current_task()
        return not over and task is not None and not task.cancelling()

    def tell() -> None:
        if consumer is not None and not consumer.done():
            consumer.set_result(None)

    def fail(exc: BaseException) -> None:
        nonlocal failure
        if failure is None:
            failure = exc
        tell()

    def go(job: Job) -> None:
        """Walk the job's plan to its next wait and start that wait."""
        if over or failure is not None:
            return
        try:
            what = schedule.step(job)  # the caller's callbacks and policy run here
        except BaseException as exc:  # an Exception ends the job in step, typed: see `failure`
            fail(exc)
            return
        if what is SLEEPS:
            if stop is not None and stop.is_set():  # asleep after the close was told (its poll was under way)
                loop.call_soon(woken)
                return
            alarm.set(schedule.sleepers[0][0])
        elif type(what) is Send:
            expires = what.until - MIN_ATTEMPT
            schedule.queue(job, what, expires)
            if idle:
                idle.popleft().set_result(None)
            alarm.set(expires)
        elif type(what) is Pace:
            if stop is not None and stop.is_set():  # paced after the close was told
                job.walk.error = Stop.error(job.vendor)
                loop.call_soon(go, job)
                return
            waiting = slot_queue(what.core).wait(what.task_id, what.end)
            pending.add(waiting)
            paced_for[waiting] = job.vendor
            waiting.add_done_callback(functools.partial(paced, job))
        elif what is SAVE:
            task = loop.create_task(saved(job), name=f"videojobs save {job.ref}")
            pending.add(task)
            task.add_done_callback(pending.discard)
        else:
            assert what is ENDED
            tell()

    def paced(job: Job, waiting: asyncio.Future[bool]) -> None:
        """The vendor's slot queue took a slot for the job (or says why not)."""
        pending.discard(waiting)
        paced_for.pop(waiting, None)
        if over or waiting.cancelled():
            return  # the wait_all is over
        error = waiting.exception()
        if error is None:
            job.walk.value = waiting.result()
        elif isinstance(error, VideoJobsError):
            job.walk.error = error
        else:  # a bug of ours, in the slot queue
            schedule.end(job, unexpected(job.ref, "wait", error))
            tell()
            return
        go(job)

    def rang() -> None:
        for job in schedule.expired():
            go(job)
        for job in schedule.due():
            go(job)
        if (at := schedule.next_time()) is not None:
            alarm.set(at)

    async def saved(job: Job) -> None:
        result: JobStatus | VideoJobsError
        try:
            assert job.last is not None
            async with saving:
                result = await save(job.last, saves_until)  # type: ignore[misc]
        except VideoJobsError as exc:
            result = exc
        except asyncio.CancelledError as exc:
            if not stray(exc):
                raise
            result = unexpected(job.ref, "download", exc)
        except Exception as exc:  # a bug of ours must not cost the caller this job: say so, typed
            result = unexpected(job.ref, "download", exc)
        except BaseException as exc:  # from an on_progress callback: see `failure`
            fail(exc)
            return
        schedule.end(job, result)
        tell()

    async def sender() -> None:
        """Send the jobs in line, one at a time, each answer walked on to the job's next wait."""
        while True:
            job = schedule.take()
            if job is None:
                wake: asyncio.Future[None] = loop.create_future()
                idle.append(wake)
                await wake
                continue
            send = job.action
            assert type(send) is Send
            walk = job.walk
            try:
                left = send.until - now()
                if left < MIN_ATTEMPT:
                    raise no_slot(job.vendor)
                walk.value = await job.send(min(send.timeout, left), send.epoch, send.until)
            except VideoJobsError as exc:
                walk.error = exc
            except (Exception, asyncio.CancelledError) as exc:  # a bug of ours must not cost the caller this job
                if isinstance(exc, asyncio.CancelledError) and not stray(exc):
                    raise  # this wait_all is cancelled
                schedule.end(job, unexpected(job.ref, "wait", exc))
                tell()
                continue
            except BaseException as exc:  # see `failure`
                fail(exc)
                return
            finally:
                schedule.sent(job)
            go(job)

    def woken() -> None:
        """The client was closed: every job asleep, or waiting for its vendor's pace, ends now."""
        if over:
            return
        for job in schedule.wake_all():
            job.walk.error = Stop.error(job.vendor)
            go(job)
        for waiting, vendor in list(paced_for.items()):
            if not waiting.done():  # its vendor's slot queue skips it (see paced)
                waiting.set_exception(Stop.error(vendor))

    alarm = _Alarm(loop, clock, rang)
    senders: list[asyncio.Task[None]] = []

    def closed() -> None:  # from close() on any thread: woken runs on this loop (if it still runs)
        if not loop.is_closed():
            loop.call_soon_threadsafe(woken)

    forget = stop.tell(closed) if stop is not None else None
    try:
        # the senders first: their tasks run before the alarm's (on a simulated clock, a task that
        # sleeps it to the first polls' expiry, which they were then sent at, with MIN_ATTEMPT left)
        senders = [
            loop.create_task(sender(), name=f"videojobs wait_all sender {n}")
            for n in range(min(max_requests, len(refs)))
        ]
        for ref in refs:
            if (job := schedule.start(ref, poll)) is not None:
                go(job)
        left = len(refs)
        while left:
            if failure is not None:
                raise failure
            if not schedule.finished:
                consumer = loop.create_future()
                await consumer
                continue
            left -= 1
            yield schedule.finished.popleft()
    finally:
        # leaving early: every job's wait ends at once; what runs is cancelled and waited for
        over = True
        if forget is not None:
            forget()
        alarm.cancel()
        for each in (*senders, *pending):
            each.cancel()
        await asyncio.gather(*senders, *(p for p in pending if isinstance(p, asyncio.Task)), return_exceptions=True)


async def in_order(
    refs: list[str], results: AsyncIterator[JobStatus | VideoJobsError]
) -> list[JobStatus | VideoJobsError]:
    """``wait_all``'s results gathered into a list in the order of ``refs`` (each result's ``ref`` says where)."""
    slots: dict[str, list[int]] = {}
    for index, ref in enumerate(refs):
        slots.setdefault(ref, []).append(index)
    out: list[JobStatus | VideoJobsError | None] = [None] * len(refs)
    async for result in results:
        assert result.ref is not None
        out[slots[result.ref].pop(0)] = result
    return [r for r in out if r is not None]


class _Raised(Exception):
    """What a caller's callback raised that is not an ``Exception`` (``KeyboardInterrupt``,
    ``SystemExit``), carried out of the job's task: raised in a task, asyncio lets those two
    out of the event loop itself (the caller's await saw a CancelledError, ``asyncio.run`` the
    interrupt), where the blocking face and ``wait_all`` raise it to the caller."""

    def __init__(self, raised: BaseException) -> None:
        super().__init__(type(raised).__name__)
        self.raised = raised


async def download_all(
    items: list[tuple[JobStatus | str, str]],
    status: Callable[[str], Awaitable[JobStatus]],
    save: Callable[[JobStatus], Awaitable[JobStatus]],
    max_downloads: int,
) -> AsyncGenerator[JobStatus | VideoJobsError, None]:
    """Save every job's videos (``(job, ref)`` pairs; a ref is asked about first), ``max_downloads``
    jobs at a time, yielding each job once: its status with ``downloads``, or the error."""
    gate = Gate(max_downloads)

    async def one(item: JobStatus | str, ref: str) -> JobStatus | VideoJobsError:
        try:
            async with gate:
                job = item if isinstance(item, JobStatus) else await status(item)
                return await save(job)
        except VideoJobsError as exc:
            exc.ref = ref
            return exc
        except Exception as exc:  # a bug of ours must not cost the caller this job: say so, typed
            return unexpected(ref, "download", exc)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # from an on_progress callback: to the caller, as wait_all raises it
            raise _Raised(exc) from exc

    try:
        async for result in _each_once([one(item, ref) for item, ref in items]):
            yield result
    except _Raised as carried:  # the others are cancelled on the way out (see _each_once)
        raise carried.raised from None


async def _each_once(
    jobs: Iterable[Awaitable[JobStatus | VideoJobsError]],
) -> AsyncIterator[JobStatus | VideoJobsError]:
    """Run every job's coroutine at once; yield each result as it comes; cancel the rest on exit."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- the blocking face: one scheduler, two pools -------------------------------------------------


def _slots(refs: list[str]) -> dict[str, list[int]]:
    slots: dict[str, list[int]] = {}
    for index, ref in enumerate(refs):
        slots.setdefault(ref, []).append(index)
    return slots


def in_order_sync(refs: list[str], results: Iterator[JobStatus | VideoJobsError]) -> list[JobStatus | VideoJobsError]:
    """:func:`in_order` for the blocking face."""
    slots = _slots(refs)
    out: list[JobStatus | VideoJobsError | None] = [None] * len(refs)
    for result in results:
        assert result.ref is not None
        out[slots[result.ref].pop(0)] = result
    return [r for r in out if r is not None]


def _gated_send(job: Job, timeout: float, epoch: int | None, until: float, now: Callable[[], float]) -> Exchange:
    """One attempt on a pool thread: the wait for that thread is bounded by ``until`` (the call's
    end on the client's clock, ``now``), the attempt by ``timeout`` from then, within the same time."""
    left = until - now()
    if left < MIN_ATTEMPT:
        raise no_slot(job.vendor)
    send: SyncSend = job.send
    return send(min(timeout, left), epoch)


def wait_all_sync(
    refs: list[str],
    poll: SyncPoll,
    clock: Clock,
    save: SyncSave | None,
    *,
    timeout: float | None,
    on_update: OnUpdate | None,
    max_requests: int,
    max_downloads: int,
    request_timeout: float,
    halt: threading.Event | None = None,
    stop: Stop | None = None,
) -> Generator[JobStatus | VideoJobsError, None, None]:
    """The blocking twin of :func:`wait_all`, with its guarantees: each job once, deadlines from
    the call, the wait for a request slot bounded by the call's time, saves by the same deadline.
    ``halt`` is set as the batch is left early: the saves under way (which look at it) stop."""
    saves_until = None if timeout is None else time.monotonic() + timeout + request_timeout  # real time
    schedule = Schedule(clock.now, on_update, save is not None, max_requests)
    answers: queue.SimpleQueue[tuple[Job, Future[Exchange] | Future[JobStatus], bool]] = queue.SimpleQueue()
    ready: collections.deque[Job] = collections.deque()  # walked on first come first served, as the async face's line
    in_flight = 0
    sending = 0  # requests on the pool's threads: the jobs past max_requests wait in the schedule's lines
    sleep = clock.sleep if stop is None else stop.sleep  # cut short by the client's close
    requests = ThreadPoolExecutor(max_workers=max_requests, thread_name_prefix="videojobs-wait")
    downloads = ThreadPoolExecutor(max_workers=max_downloads, thread_name_prefix="videojobs-save")
    interrupted = False

    def submit(job: Job, future: Future[Exchange] | Future[JobStatus], saving: bool) -> None:
        nonlocal in_flight
        in_flight += 1
        future.add_done_callback(lambda f: answers.put((job, f, saving)))

    def pump() -> None:
        """Hand the jobs in line to free threads, the vendors in turn, each to its share."""
        nonlocal sending
        while sending < max_requests and (job := schedule.take()) is not None:
            send = job.action
            assert type(send) is Send
            sending += 1
            submit(job, requests.submit(_gated_send, job, send.timeout, send.epoch, send.until, clock.now), False)

    def go(job: Job) -> None:
        """Walk the job's plan to its next wait and start that wait (a Pace is slept out)."""
        what = schedule.step(job, pace_sleeps=True)
        if type(what) is Send:
            schedule.queue(job, what, what.until - MIN_ATTEMPT)  # sent by pump(), in this loop
        elif what is SAVE:
            assert save is not None
            assert job.last is not None
            submit(job, downloads.submit(save, job.last, saves_until), True)

    def answered(job: Job, future: Future[Exchange] | Future[JobStatus], saving: bool) -> None:
        nonlocal in_flight, sending
        in_flight -= 1
        if not saving:
            sending -= 1
            schedule.sent(job)
        try:
            value = future.result()
        except VideoJobsError as exc:
            if saving:
                schedule.end(job, exc)
                return
            job.walk.error = exc
        except Exception as exc:  # a bug of ours (in a send or a save): typed, for this job
            schedule.end(job, unexpected(job.ref, "download" if saving else "wait", exc))
            return
        else:
            if saving:
                assert isinstance(value, JobStatus)
                schedule.end(job, value)
                return
            job.walk.value = value  # type: ignore[assignment]
        ready.append(job)

    try:
        for ref in refs:
            if (job := schedule.start(ref, poll)) is not None:
                ready.append(job)
        finished, sleepers = schedule.finished, schedule.sleepers
        left = len(refs)
        while left:
            while ready:
                go(ready.popleft())
            pump()
            while finished:
                left -= 1
                yield finished.popleft()
            if not left:
                break
            ready.extend(schedule.expired())  # jobs whose time ran out in line (no thread came free)
            if stop is not None and stop.is_set():  # the client was closed: every sleeper ends now
                for job in schedule.wake_all():
                    job.walk.error = Stop.error(job.vendor)
                    ready.append(job)
            ready.extend(schedule.due())
            if ready:
                continue
            try:
                if not in_flight:
                    sleep(max(0.0, sleepers[0][0] - clock.now()))
                    continue
                if not sleepers and not schedule.waiting:
                    answered(*answers.get())
                else:
                    try:
                        answered(*answers.get(timeout=TICK_REAL))
                    except queue.Empty:
                        if sleepers:
                            sleep(max(0.0, min(TICK, sleepers[0][0] - clock.now())))
                        continue
            finally:
                while not answers.empty():
                    answered(*answers.get_nowait())
    except GeneratorExit:
        raise
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C in the caller's thread, which runs this scheduler
        interrupted = True
        raise
    finally:
        # leaving early: nothing new starts; a request ends within its own deadline, a save at
        # its next chunk (threads cannot be cancelled: it looks at ``halt``). Left by a break,
        # this returns once they have; interrupted, at once (Ctrl-C waited a request_timeout)
        if halt is not None:
            halt.set()
        requests.shutdown(wait=not interrupted, cancel_futures=True)
        downloads.shutdown(wait=not interrupted, cancel_futures=True)


def download_all_sync(
    items: list[tuple[JobStatus | str, str]],
    status: Callable[[str], JobStatus],
    save: Callable[[JobStatus], JobStatus],
    max_downloads: int,
    halt: threading.Event | None = None,
) -> Generator[JobStatus | VideoJobsError, None, None]:
    """The blocking twin of :func:`download_all`: a pool of ``max_downloads`` threads; ``halt``
    is set as the batch is left early, and the saves under way (which look at it) stop."""

    def one(item: JobStatus | str, ref: str) -> JobStatus | VideoJobsError:
        try:
            job = item if isinstance(item, JobStatus) else status(item)
            return save(job)
        except VideoJobsError as exc:
            exc.ref = ref
            return exc
        except Exception as exc:  # a bug of ours must not cost the caller this job: say so, typed
            return unexpected(ref, "download", exc)

    from concurrent.futures import as_completed

    pool = ThreadPoolExecutor(max_workers=max_downloads, thread_name_prefix="videojobs-save")
    interrupted = False
    try:
        futures = [pool.submit(one, item, ref) for item, ref in items]
        for future in as_completed(futures):
            yield future.result()
    except (KeyboardInterrupt, SystemExit):
        interrupted = True
        raise
    finally:
        if halt is not None:
            halt.set()
        # saves look at halt at every chunk; a status call under way does not: interrupted, this
        # returns at once, as wait_all_sync does (Ctrl-C waited for every status call's timeouts)
        pool.shutdown(wait=not interrupted, cancel_futures=True)
