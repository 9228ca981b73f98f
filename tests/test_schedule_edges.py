"""wait_all's scheduler at its edges, from a review with fresh eyes: a slot granted as the caller
leaves, a stray cancellation out of one send, a bug in making one job's wait."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import types
from collections.abc import Generator
from typing import Any

import httpx
import pytest

import videojobs
from videojobs import _batch
from videojobs._calls import Emit, Pace, Send, Sleep
from videojobs._status import JobStatus, State
from videojobs._wait import SystemClock
from videojobs.sandbox import Sandbox

DONE = JobStatus(vendor="vozo", task_id="a", state=State.SUCCEEDED)


@pytest.mark.anyio
async def test_a_slot_granted_as_the_caller_leaves_starts_nothing_after_wait_all_ends() -> None:
    """The vendor's pacer grants a queued job its slot in the same loop turn as the caller leaves
    the ``async for``: the slot-queue future is already done, so ``finally``'s ``cancel()`` is a
    no-op and its ``paced`` callback (already scheduled) runs after the wait_all is over. It walks
    the job's plan on (``go``): a Sleep arms a new alarm after ``alarm.cancel()``, the alarm wakes
    the job, whose Send is queued for a sender that was cancelled: ``idle.popleft().set_result``
    on a cancelled future raises InvalidStateError in the loop's exception handler. (On a SimClock
    with a paced vendor the same happens through the public API, tens of times in 16 early exits.)"""
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    grants: list[asyncio.Future[bool]] = []

    class Queue:  # the vendor's slot queue on this loop: the test grants the slot itself
        def __init__(self) -> None:
            self.loop = loop

        def wait(self, task_id: str, end: float) -> asyncio.Future[bool]:
            grants.append(loop.create_future())
            return grants[-1]

    core = types.SimpleNamespace(queue=Queue())  # a vendor's core, as far as its slot queue goes
    after_leaving: list[str] = []

    def ends_at_once() -> Generator[Any, Any, None]:
        yield Emit(DONE)

    def paced() -> Generator[Any, Any, None]:
        yield Pace(core, "b", 1.0, math.inf)  # type: ignore[arg-type]
        after_leaving.append("walked on once its slot came")
        yield Sleep(0.01)
        after_leaving.append("woke from a sleep")
        yield Send(1.0, None, time.monotonic() + 60)
        after_leaving.append("sent")  # pragma: no cover

    async def send(timeout: float, epoch: int | None, until: float) -> Any:  # pragma: no cover
        await asyncio.sleep(10)

    plans = {"vozo:a": ends_at_once, "vozo:b": paced}
    results = _batch.wait_all(
        list(plans),
        lambda ref: (plans[ref](), send, "vozo"),
        SystemClock(),
        None,
        timeout=None,
        on_update=None,
        max_requests=2,
        max_downloads=1,
        request_timeout=1.0,
    )
    try:
        async with contextlib.aclosing(results):
            async for first in results:
                assert first.ref == "vozo:a"
                await asyncio.sleep(0)  # the senders wait for work
                grants[0].set_result(True)  # the pacer's grant, in the turn the caller leaves
                break
        for _ in range(20):  # the loop turns in which a callback scheduled then would run
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert after_leaving == []  # nothing of a job's wait runs once wait_all has returned
    assert [context["message"] for context in problems] == []


@pytest.mark.anyio
async def test_a_cancelled_error_out_of_one_send_ends_only_that_job() -> None:
    """A CancelledError that comes out of one job's send while nobody cancelled the sender (a
    transport or library that cancels a future of its own) is a BaseException: it ends the
    sender coroutine (``except Exception`` lets it through), and with it the job it held (never
    yielded) and one of the ``max_requests`` senders for good. With max_requests=1 nothing is
    sent again: the other jobs end as WaitTimeout at 2 s, unsent, and wait_all never returns
    (still running at 10 s). Before 11a05f0 only that job was lost (a task per job), the others
    were polled to their end. It should end that job typed, as any bug in a send does."""
    sb = Sandbox()
    inner = sb.transport()

    class OneCancels(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if "bad" in str(request.url):
                raise asyncio.CancelledError  # not a cancellation of the sender
            return await inner.handle_async_request(request)

    refs = ["vozo:bad-q0-d0"] + [f"vozo:ok{i}-q0-d0" for i in range(5)]
    results: list[JobStatus | videojobs.VideoJobsError] = []
    async with videojobs.AsyncClient(
        api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=OneCancels()
    ) as client:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):  # wait_all's own timeout is 2 s
                async for result in client.wait_all(refs, timeout=2, max_requests=1):
                    results.append(result)
    by_ref = {r.ref: r for r in results}
    assert set(by_ref) == set(refs), f"never yielded: {sorted(set(refs) - set(by_ref))}"
    assert isinstance(by_ref["vozo:bad-q0-d0"], videojobs.VideoJobsError)
    assert all(isinstance(by_ref[ref], JobStatus) for ref in refs[1:])


def test_the_lines_serve_each_vendor_its_share_of_the_slots() -> None:
    """Jobs of two vendors in line for 4 slots: taken in turn, at most two of a vendor in flight
    while the other has jobs waiting, and its share again as each request ends."""
    from videojobs._calls import Send
    from videojobs._schedule import Schedule

    schedule = Schedule(lambda: 0.0, None, save=False, max_requests=4)
    jobs = []
    for ref in [*(f"vozo:a{n}" for n in range(6)), "duomi:b0", "duomi:b1", "duomi:b2"]:
        vendor = ref.partition(":")[0]

        def poll(ref: str, vendor: str = vendor) -> tuple[Any, Any, str]:
            def plan() -> Generator[Any, Any, None]:
                yield Send(5.0, None, 100.0)

            return plan(), None, vendor

        job = schedule.start(ref, poll)
        assert job is not None
        send = schedule.step(job)
        assert isinstance(send, Send)
        schedule.queue(job, send, 100.0)
        jobs.append(job)
    taken = [schedule.take() for _ in range(5)]
    assert [job.ref if job else None for job in taken] == ["vozo:a0", "duomi:b0", "vozo:a1", "duomi:b1", None]
    schedule.sent(taken[0])  # a vozo request ends: vozo may have one more
    assert [getattr(schedule.take(), "ref", None), schedule.take()] == ["vozo:a2", None]
    schedule.sent(taken[1])
    assert getattr(schedule.take(), "ref", None) == "duomi:b2"


@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_vendor_that_stops_answering_holds_its_share_of_wait_alls_slots_not_all(face: str) -> None:
    """A vendor that accepts and never answers, its jobs first in line, and one that answers at
    once: with one line for all, the silent vendor's requests held every slot (each for a
    request's timeout) and the other's jobs, finished at their vendor, ended in WaitTimeout."""
    from tests import hostile
    from tests.cases import CASES

    done = next(case for case in CASES["duomi"].states if case.state == "succeeded").body
    answer = hostile.answer(body=json.dumps(done).encode())
    refs = [*(f"vozo:slow{n}" for n in range(12)), *(f"duomi:fast{n}" for n in range(6))]
    with hostile.hostile(hostile.silent()) as silent, hostile.hostile(answer) as fast:
        kwargs: dict[str, Any] = {
            "api_keys": {"vozo": "sk-test-silent-vendor", "duomi": "sk-test-fast-vendor"},
            "base_urls": {"vozo": silent, "duomi": fast},
            "request_timeout": 30,
            "max_retries": 0,
            "adaptive": False,
        }
        if face == "sync":
            with videojobs.Client(**kwargs) as client:
                results = client.wait_all_list(refs, timeout=1.5, max_requests=4)
        else:

            async def go() -> list[Any]:
                async with videojobs.AsyncClient(**kwargs) as client:
                    return await client.wait_all_list(refs, timeout=1.5, max_requests=4)

            results = asyncio.run(go())
    by_ref = dict(zip(refs, results, strict=True))
    assert all(isinstance(by_ref[f"duomi:fast{n}"], videojobs.JobStatus) for n in range(6)), results
    assert all(by_ref[f"duomi:fast{n}"].state is videojobs.State.SUCCEEDED for n in range(6))
    assert all(isinstance(by_ref[f"vozo:slow{n}"], videojobs.WaitTimeout) for n in range(12))
