"""Many jobs at once, on asyncio: ``wait_all`` and ``download_all``'s orchestration.

The faces hand in what one job needs (a wait's plan and its sender, a save); this module runs
them all at once, one coroutine per job, with the gates that bound them (``concurrency``
requests in flight, ``download_concurrency`` jobs saving), and yields each job exactly once:
its final status, or the typed error that ended it (``error.ref`` set). No threads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable

from ._calls import AsyncSend, Plan, awalk
from ._exceptions import VideoJobsError
from ._status import JobStatus, State
from ._wait import OnUpdate, call_on_update

__all__ = ["AsyncSend", "download_all", "in_order", "unexpected", "wait_all"]

Poll = Callable[[str], "tuple[Plan[None], AsyncSend, str]"]
"""A job's wait: its plan, the sender of its attempts and its vendor's name."""
Save = Callable[[JobStatus, "float | None"], Awaitable[JobStatus]]
"""Every video of a finished job saved, before a deadline (``time.monotonic()``) or none."""


def unexpected(ref: str, what: str, exc: Exception) -> VideoJobsError:
    """A bug of ours must not cost the caller a job: the error that says so, typed, for that job."""
    error = VideoJobsError(
        f"the {what} for {ref} failed unexpectedly ({type(exc).__name__}); this is a videojobs bug",
        vendor=ref.partition(":")[0],
    )
    error.__cause__ = exc
    error.ref = ref
    return error


async def wait_all(
    refs: list[str],
    poll: Poll,
    sleep: Callable[[float], Awaitable[None]],
    save: Save | None,
    *,
    timeout: float | None,
    on_update: OnUpdate | None,
    concurrency: int,
    download_concurrency: int,
    attempt_timeout: float,
) -> AsyncGenerator[JobStatus | VideoJobsError, None]:
    """Wait for every job (arguments checked by the caller), yielding each as it ends; with
    ``save``, a job that succeeds with video URLs is saved first (``download_concurrency`` at a
    time, by the wait's deadline plus one attempt's ``attempt_timeout``: the slack a poll has)."""
    gate = asyncio.Semaphore(concurrency)
    saving = asyncio.Semaphore(download_concurrency)
    saves_until = None if timeout is None else time.monotonic() + timeout + attempt_timeout  # real time
    done: asyncio.Queue[JobStatus | VideoJobsError] = asyncio.Queue()

    async def one(ref: str) -> None:
        result: JobStatus | VideoJobsError
        try:
            plan, send, _ = poll(ref)
            latest: list[JobStatus] = []

            def emit(status: JobStatus) -> None:
                latest[:] = (status,)
                call_on_update(on_update, status)

            await awalk(plan, send, sleep, emit, gate)  # the gate is waited for within each attempt's timeout
            last = latest[0]
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
    concurrency: int,
) -> AsyncGenerator[JobStatus | VideoJobsError, None]:
    """Save every job's videos (``(job, ref)`` pairs; a ref is asked about first), ``concurrency``
    jobs at a time, yielding each job once: its status with ``downloads``, or the error."""
    gate = asyncio.Semaphore(concurrency)

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
