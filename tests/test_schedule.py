"""wait_all's scheduler: the pure part (``_schedule.Schedule``) on a hand-moved clock, and the
asyncio driver's promise that a job costs no task of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import httpx
import pytest

import videojobs
from videojobs._calls import Emit, Pace, Send, Sleep
from videojobs._schedule import ENDED, SAVE, SLEEPS, Schedule
from videojobs._status import JobStatus, State
from videojobs.sandbox import Sandbox


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


RUNNING = JobStatus(vendor="vozo", task_id="t", state=State.RUNNING, progress=0.1)
DONE = JobStatus(vendor="vozo", task_id="t", state=State.SUCCEEDED, video_urls=("https://v.example/a.mp4",))


def _plan(*actions: Any) -> Generator[Any, Any, None]:
    """A plan that asks for ``actions`` in turn, recording what it is sent back."""
    for action in actions:
        answer = yield action
        sent.append(answer)


sent: list[Any] = []


def _poll(*actions: Any) -> Any:
    return lambda ref: (_plan(*actions), None, ref.partition(":")[0])


def test_a_job_walks_to_each_wait_and_ends_once() -> None:
    clock, updates = Clock(), []
    schedule = Schedule(clock, updates.append, save=False)
    send = Send(5.0, None, 200.0)
    job = schedule.start("vozo:t", _poll(Emit(RUNNING), Sleep(3.0), send, Emit(DONE)))
    assert job is not None
    assert schedule.step(job) is SLEEPS
    assert updates == [RUNNING]
    assert schedule.due() == []  # not yet
    assert schedule.next_time() == 103.0
    clock.t = 103.0
    assert schedule.due() == [job]
    assert schedule.step(job) is send
    job.walk.value = "the answer"
    assert schedule.step(job) is ENDED
    assert list(schedule.finished) == [DONE]
    assert updates == [RUNNING, DONE]


def test_a_succeeded_job_with_videos_is_saved_first_when_saving() -> None:
    schedule = Schedule(Clock(), None, save=True)
    job = schedule.start("vozo:t", _poll(Emit(DONE)))
    assert job is not None
    assert schedule.step(job) is SAVE
    assert job.last is DONE
    assert not schedule.finished  # the driver ends it once saved


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (JobStatus(vendor="colossyan", task_id="t", state=State.SUCCEEDED, video_id="vid-1"), "returns a video id"),
        (JobStatus(vendor="vozo", task_id="t", state=State.SUCCEEDED), "succeeded without a video"),
    ],
    ids=["video-id-only", "no-video"],
)
def test_a_succeeded_job_with_nothing_to_fetch_ends_at_once_when_saving(status: JobStatus, words: str) -> None:
    """It went to saving, and waited for a save slot behind other jobs' downloads (minutes), to
    end with the DownloadError ``download`` gives it: it needs no I/O, so it ends as it succeeds."""
    schedule = Schedule(Clock(), None, save=True)
    job = schedule.start(status.ref, _poll(Emit(status)))
    assert job is not None
    assert schedule.step(job) is ENDED
    (error,) = schedule.finished
    assert isinstance(error, videojobs.DownloadError)
    assert words in str(error)
    assert error.ref == status.ref
    assert error.last_status is status


def test_a_pace_is_the_drivers_or_slept_out() -> None:
    pace = Pace(None, "t", 0.5, 200.0)  # type: ignore[arg-type]
    schedule = Schedule(Clock(), None, save=False)
    job = schedule.start("vozo:t", _poll(pace))
    assert job is not None
    assert schedule.step(job) is pace  # asyncio: the vendor's slot queue
    blocking = schedule.start("vozo:u", _poll(pace))
    assert blocking is not None
    assert schedule.step(blocking, pace_sleeps=True) is SLEEPS  # blocking: slept, then asked again
    assert schedule.next_time() == 100.5


def test_a_callback_or_a_bug_ends_only_its_own_job_typed() -> None:
    def boom(status: JobStatus) -> None:
        raise RuntimeError("the caller's bug")

    def buggy() -> Generator[Any, Any, None]:
        yield Sleep(1.0)
        raise KeyError("ours")

    schedule = Schedule(Clock(), boom, save=False)
    job = schedule.start("vozo:cb", _poll(Emit(RUNNING)))
    assert job is not None
    assert schedule.step(job) is ENDED
    ours = schedule.start("vozo:bug", lambda ref: (buggy(), None, "vozo"))
    assert ours is not None
    assert schedule.step(ours) is SLEEPS
    assert schedule.step(ours) is ENDED
    callback, bug = schedule.finished
    assert isinstance(callback, videojobs.CallbackError)
    assert callback.ref == "vozo:cb"
    assert type(bug) is videojobs.VideoJobsError
    assert "videojobs bug" in str(bug)
    assert bug.ref == "vozo:bug"


def test_a_job_that_cannot_start_ends_with_its_error() -> None:
    def refuse(ref: str) -> Any:
        raise videojobs.ConfigurationError("no key", vendor="vozo")

    def buggy(ref: str) -> Any:
        raise KeyError("ours")

    schedule = Schedule(Clock(), None, save=False)
    assert schedule.start("vozo:t", refuse) is None
    assert schedule.start("vozo:u", buggy) is None  # a bug of ours in making the wait: typed, for that job
    error, bug = schedule.finished
    assert isinstance(error, videojobs.ConfigurationError)
    assert error.ref == "vozo:t"
    assert type(bug) is videojobs.VideoJobsError
    assert bug.ref == "vozo:u"


def test_the_line_is_first_come_first_served_and_a_request_leaves_it_when_its_time_runs_out() -> None:
    clock = Clock()
    schedule = Schedule(clock, None, save=False)
    jobs = []
    for n, expires in enumerate((110.0, 105.0, 120.0)):
        job = schedule.start(f"vozo:t{n}", _poll(Send(5.0, None, expires)))
        assert job is not None
        send = schedule.step(job)
        assert type(send) is Send
        schedule.queue(job, send, expires)
        jobs.append(job)
    assert schedule.next_time() == 105.0
    clock.t = 106.0
    (late,) = schedule.expired()
    assert late is jobs[1]
    assert isinstance(late.walk.error, videojobs.NetworkError)
    assert late.walk.error.vendor == "vozo"
    assert "max_requests" in str(late.walk.error)
    assert [schedule.take(), schedule.take(), schedule.take()] == [jobs[0], jobs[2], None]  # in order, without it
    assert schedule.next_time() is None  # those sent are no longer in line
    clock.t = 130.0
    assert schedule.expired() == []


def test_requests_sent_at_once_leave_no_trace_in_the_line() -> None:
    """A hundred thousand polls through the line keep it as small as the jobs waiting in it."""
    schedule = Schedule(Clock(), None, save=False)
    job = schedule.start("vozo:t", _poll(*(Send(5.0, None, 1e9) for _ in range(100_000))))
    assert job is not None
    for _ in range(100_000):
        send = schedule.step(job)
        assert type(send) is Send
        schedule.queue(job, send, 1e9)
        assert schedule.take() is job
    assert len(schedule.ends) <= 64 + 1
    assert schedule.waiting == 0


@pytest.mark.anyio
async def test_wait_all_runs_no_task_per_job() -> None:
    """200 jobs, 4 request slots: 4 senders and the vendor's pacer (slow start), whatever the number of jobs."""
    sb = Sandbox()
    inner = sb.transport()
    tasks_seen = 0

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal tasks_seen
            tasks_seen = max(tasks_seen, len(asyncio.all_tasks()))
            return await inner.handle_async_request(request)

    refs = [f"vozo:t{i}-q0-d0" for i in range(200)]
    before = len(asyncio.all_tasks())
    async with videojobs.AsyncClient(api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=Counting()) as client:
        results = await client.wait_all_list(refs, max_requests=4)
    assert all(isinstance(r, JobStatus) and r.is_terminal for r in results)
    assert 4 <= tasks_seen - before <= 4 + 1
