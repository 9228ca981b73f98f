"""Many jobs at once: ``wait_all`` and ``download_all``'s orchestration, for both faces.

The faces hand in what one job needs (a wait's plan and its sender, a save); this module runs
them all at once with the gates that bound them (``max_requests`` requests in flight,
``max_downloads`` jobs saving), and yields each job exactly once: its final status, or the
typed error that ended it (``error.ref`` set).

- asyncio (``wait_all``, ``download_all``): one coroutine per job, no threads.
- blocking (``wait_all_sync``, ``download_all_sync``): one scheduler in the caller's thread
  advances every job's plan (``_plan.Walk``, no I/O), keeps the sleeping jobs in a heap on the
  client's clock, and hands each ``Send`` to a pool of ``max_requests`` threads and each save
  to a pool of ``max_downloads`` threads (``concurrent.futures``); no thread per job. A
  ``Send`` that waits for a free thread counts that wait against its attempt's deadline, as
  the asyncio gate does, and fails with the same :class:`NetworkError`.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import queue
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final

from ._calls import Action, AsyncSend, Emit, Pace, Plan, Send, Sleep, awalk
from ._exceptions import NetworkError, VideoJobsError
from ._exchange import MIN_ATTEMPT
from ._gate import Gate
from ._plan import Walk
from ._status import JobStatus, State
from ._translate import Exchange
from ._wait import Clock, OnUpdate, call_on_update

__all__ = [
    "AsyncSend",
    "SyncSend",
    "download_all",
    "download_all_sync",
    "in_order",
    "in_order_sync",
    "unexpected",
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


def unexpected(ref: str, what: str, exc: Exception) -> VideoJobsError:
    """A bug of ours must not cost the caller a job: the error that says so, typed, for that job."""
    error = VideoJobsError(
        f"the {what} for {ref} failed unexpectedly ({type(exc).__name__}); this is a videojobs bug",
        vendor=ref.partition(":")[0],
    )
    error.__cause__ = exc
    error.ref = ref
    return error


def _no_slot(vendor: str) -> NetworkError:
    return NetworkError(
        "no request slot came free before the call's time ran out (every one of wait_all's max_requests is busy)",
        vendor=vendor,
    )


async def wait_all(
    refs: list[str],
    poll: Poll,
    sleep: Callable[[float], Awaitable[None]],
    save: Save | None,
    *,
    timeout: float | None,
    on_update: OnUpdate | None,
    max_requests: int,
    max_downloads: int,
    request_timeout: float,
) -> AsyncGenerator[JobStatus | VideoJobsError, None]:
    """Wait for every job (arguments checked by the caller), yielding each as it ends; with
    ``save``, a job that succeeds with video URLs is saved first (``max_downloads`` at a
    time, by the wait's deadline plus one attempt's ``request_timeout``: the slack a poll has)."""
    gate, saving = Gate(max_requests), Gate(max_downloads)
    saves_until = None if timeout is None else time.monotonic() + timeout + request_timeout  # real time
    done: asyncio.Queue[JobStatus | VideoJobsError] = asyncio.Queue()
    emit = None if on_update is None else functools.partial(call_on_update, on_update)  # one for every job

    async def one(ref: str) -> None:
        result: JobStatus | VideoJobsError
        try:
            plan, send, _ = poll(ref)
            last = await awalk(plan, send, sleep, gate, emit)  # the gate is waited for within each attempt's timeout
            assert last is not None
            if save is not None and last.state is State.SUCCEEDED and last.video_urls:
                async with saving:
                    last = await save(last, saves_until)
            result = last
        except VideoJobsError as exc:
            result = exc
        except Exception as exc:  # a bug of ours must not cost the caller this job: say so, typed
            result = unexpected(ref, "wait", exc)
        if isinstance(result, VideoJobsError):
            result.ref = ref
        done.put_nowait(result)

    tasks = [asyncio.create_task(one(ref), name=f"videojobs wait {ref}") for ref in refs]
    try:
        for _ in tasks:
            yield await done.get()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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

    async for result in _each_once([one(item, ref) for item, ref in items]):
        yield result


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


class _Job:
    """One job's wait in the blocking scheduler: its walk over the plan and its last status."""

    __slots__ = ("last", "ref", "send", "steps", "vendor", "walk")

    def __init__(self, ref: str, plan: Plan[None], send: SyncSend, vendor: str) -> None:
        self.ref = ref
        self.walk: Walk[Action, Exchange | bool, None] = Walk(plan)
        self.steps = iter(self.walk)
        self.send = send
        self.vendor = vendor
        self.last: JobStatus | None = None


def _gated_send(job: _Job, timeout: float, epoch: int | None, until: float, now: Callable[[], float]) -> Exchange:
    """One attempt on a pool thread: the wait for that thread is bounded by ``until`` (the call's
    end on the client's clock, ``now``), the attempt by ``timeout`` from then, within the same time."""
    left = until - now()
    if left < MIN_ATTEMPT:
        raise _no_slot(job.vendor)
    return job.send(min(timeout, left), epoch)


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
) -> Generator[JobStatus | VideoJobsError, None, None]:
    """The blocking twin of :func:`wait_all`, with its guarantees: each job once, deadlines from
    the call, the wait for a request slot part of the attempt, saves by the same deadline."""
    saves_until = None if timeout is None else time.monotonic() + timeout + request_timeout  # real time
    answers: queue.SimpleQueue[tuple[_Job, Future[Exchange] | Future[JobStatus], bool]] = queue.SimpleQueue()
    sleepers: list[tuple[float, int, _Job]] = []  # (wake on the clock, order, job): a heap
    order = itertools.count()
    ready: list[_Job] = []
    finished: list[JobStatus | VideoJobsError] = []
    in_flight = 0
    requests = ThreadPoolExecutor(max_workers=max_requests, thread_name_prefix="videojobs-wait")
    downloads = ThreadPoolExecutor(max_workers=max_downloads, thread_name_prefix="videojobs-save")

    def end(job: _Job, result: JobStatus | VideoJobsError) -> None:
        if isinstance(result, VideoJobsError):
            result.ref = job.ref
        finished.append(result)

    def submit(job: _Job, future: Future[Exchange] | Future[JobStatus], saving: bool) -> None:
        nonlocal in_flight
        in_flight += 1
        future.add_done_callback(lambda f: answers.put((job, f, saving)))

    def advance(job: _Job) -> None:
        """Walk the job's plan until it needs to wait: a request, a sleep, or its end."""
        try:
            for action in job.steps:
                kind = type(action)
                if kind is Emit:
                    job.last = action.status  # type: ignore[union-attr]
                    call_on_update(on_update, job.last)
                elif kind is Sleep or kind is Pace:  # a blocking driver sleeps a Pace out and the plan asks again
                    heapq.heappush(sleepers, (clock.now() + action.seconds, next(order), job))  # type: ignore[union-attr]
                    return
                else:
                    send: Send = action  # type: ignore[assignment]
                    submit(
                        job,
                        requests.submit(_gated_send, job, send.timeout, send.epoch, send.until, clock.now),
                        False,
                    )
                    return
            last = job.last
            assert last is not None
            if save is not None and last.state is State.SUCCEEDED and last.video_urls:
                submit(job, downloads.submit(save, last, saves_until), True)
                return
            end(job, last)
        except VideoJobsError as exc:
            end(job, exc)
        except Exception as exc:  # a bug of ours must not cost the caller this job: say so, typed
            end(job, unexpected(job.ref, "wait", exc))

    def answered(job: _Job, future: Future[Exchange] | Future[JobStatus], saving: bool) -> None:
        nonlocal in_flight
        in_flight -= 1
        try:
            value = future.result()
        except VideoJobsError as exc:
            if saving:
                end(job, exc)
                return
            job.walk.error = exc
        except Exception as exc:  # a bug of ours (in a send or a save): typed, for this job
            end(job, unexpected(job.ref, "download" if saving else "wait", exc))
            return
        else:
            if saving:
                assert isinstance(value, JobStatus)
                end(job, value)
                return
            job.walk.value = value  # type: ignore[assignment]
        ready.append(job)

    try:
        for ref in refs:
            try:
                plan, send, vendor = poll(ref)
            except VideoJobsError as exc:
                exc.ref = ref
                finished.append(exc)
                continue
            ready.append(_Job(ref, plan, send, vendor))
        left = len(refs)
        while left:
            while ready:
                advance(ready.pop())
            while finished:
                left -= 1
                yield finished.pop(0)
            if not left:
                break
            while sleepers and sleepers[0][0] <= clock.now():
                ready.append(heapq.heappop(sleepers)[2])
            if ready:
                continue
            try:
                if not in_flight:
                    clock.sleep(max(0.0, sleepers[0][0] - clock.now()))
                    continue
                if not sleepers:
                    answered(*answers.get())
                else:
                    try:
                        answered(*answers.get(timeout=TICK_REAL))
                    except queue.Empty:
                        clock.sleep(max(0.0, min(TICK, sleepers[0][0] - clock.now())))
                        continue
            finally:
                while not answers.empty():
                    answered(*answers.get_nowait())
    finally:
        # leaving early: nothing new starts; what runs ends within its own deadline
        requests.shutdown(wait=True, cancel_futures=True)
        downloads.shutdown(wait=True, cancel_futures=True)


def download_all_sync(
    items: list[tuple[JobStatus | str, str]],
    status: Callable[[str], JobStatus],
    save: Callable[[JobStatus], JobStatus],
    max_downloads: int,
) -> Generator[JobStatus | VideoJobsError, None, None]:
    """The blocking twin of :func:`download_all`: a pool of ``max_downloads`` threads."""

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
    try:
        futures = [pool.submit(one, item, ref) for item, ref in items]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
