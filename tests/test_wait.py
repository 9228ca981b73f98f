"""Waiting: policies, the wait loop, watch, wait_all and rate limits, on a simulated clock."""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import videojobs
from scripts.policy_sim import population, simulate
from tests.cases import EZ_PROCESSING, VENDORS
from tests.clocks import SimClock
from tests.conftest import KEYS, Recorder, sync_client
from videojobs._policy import AdaptivePolicy, FixedPolicy, History
from videojobs._wait import Waiter
from videojobs.sandbox import Sandbox

RUNNING = videojobs.State.RUNNING


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def sandbox(clock: SimClock) -> Sandbox:
    return Sandbox(clock=clock, retry_after=2)


def _client_for(sb: Sandbox, **kwargs: Any) -> videojobs.Client:
    kwargs.setdefault("clock", sb.clock)
    return videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.sync_transport(), **kwargs)


def _aclient_for(sb: Sandbox, **kwargs: Any) -> videojobs.AsyncClient:
    kwargs.setdefault("clock", sb.clock)
    return videojobs.AsyncClient(api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.transport(), **kwargs)


FACES = pytest.mark.parametrize("face", ["sync", "async"])
"""wait_all and wait_all_list, run the same on both faces."""


async def _many(face: str, client: videojobs.Client | videojobs.AsyncClient, method: str, *args: Any, **kw: Any) -> Any:
    """``client.<method>(...)`` on either face: a list of what wait_all yields, or wait_all_list's list."""
    call = getattr(client, method)
    if face == "sync":
        with client:  # type: ignore[union-attr]
            got = call(*args, **kw)
            return got if isinstance(got, list) else list(got)
    async with client:  # type: ignore[union-attr]
        got = call(*args, **kw)
        return await got if inspect.isawaitable(got) else [r async for r in got]


def _face_client(face: str, sb: Sandbox, **kwargs: Any) -> Any:
    return _client_for(sb, **kwargs) if face == "sync" else _aclient_for(sb, **kwargs)


def test_both_faces_offer_the_same_methods_with_the_same_parameters() -> None:
    """Client and AsyncClient: the same public names, each with the same parameters and defaults."""

    def public(cls: type) -> dict[str, inspect.Signature]:
        names = {n for n in dir(cls) if not n.startswith("_")} - {"close", "aclose"}
        return {n: inspect.signature(getattr(cls, n)) for n in names if callable(getattr(cls, n))}

    sync, asynchronous = public(videojobs.Client), public(videojobs.AsyncClient)
    assert sorted(sync) == sorted(asynchronous)
    for name, signature in sync.items():
        theirs = asynchronous[name]
        assert [(p.name, p.kind, p.default) for p in signature.parameters.values()] == [
            (p.name, p.kind, p.default) for p in theirs.parameters.values()
        ], name
    assert (
        inspect.signature(videojobs.Client).parameters.keys()
        == inspect.signature(videojobs.AsyncClient).parameters.keys()
    )


# --- the policy meets its figures (a deterministic simulation, not a timing test) ---------------


@pytest.fixture(scope="module")
def jobs() -> list[Any]:
    return population(1200, seed=7)


def test_adaptive_beats_the_vendors_advice_on_jobs_with_progress(jobs: list[Any]) -> None:
    fixed = simulate(FixedPolicy(5), jobs)
    adaptive = simulate(AdaptivePolicy(), jobs)
    assert adaptive.requests_per_job <= 0.5 * fixed.requests_per_job
    assert adaptive.p95_lag <= 4.0


def test_adaptive_beats_the_vendors_advice_on_jobs_without_progress(jobs: list[Any]) -> None:
    fixed = simulate(FixedPolicy(5), jobs, progress=False)
    adaptive = simulate(AdaptivePolicy(), jobs, progress=False)
    assert adaptive.requests_per_job <= 0.75 * fixed.requests_per_job
    assert adaptive.p95_lag_share <= 0.25


def _answers(*points: tuple[float, str, float | None]) -> list[tuple[float, videojobs.JobStatus]]:
    return [
        (t, videojobs.JobStatus(vendor="v", task_id="t", state=videojobs.State(s), progress=p)) for t, s, p in points
    ]


def _h(*points: tuple[float, str, float | None]) -> History:
    return History.of(_answers(*points))


def test_adaptive_policy_shapes() -> None:
    policy = AdaptivePolicy()
    assert policy.next_delay(History()) == policy.min_delay
    assert policy.next_delay(_h((0, "queued", 0.0))) == pytest.approx(8.0)  # nothing can end within min_run
    # fast progress, far from the end: sparse; close to the end: dense
    far = policy.next_delay(_h((0, "running", 0.0), (10, "running", 0.10), (20, "running", 0.20)))
    near = policy.next_delay(_h((0, "running", 0.0), (10, "running", 0.45), (20, "running", 0.90)))
    assert far > near == policy.near_delay
    assert policy.next_delay(_h((0, "running", 0.5), (30, "running", 0.99))) == policy.near_delay
    # no progress: a share of the time waited so far, capped
    assert policy.next_delay(_h((40, "running", None))) == pytest.approx(0.22 * 40)
    # progress at 0 past min_run (a vendor that says 0 % until the end): the same; it polled every
    # near_delay for ever (8x the requests of a vendor without progress)
    assert policy.next_delay(_h((0, "running", 0.0), (40, "running", 0.0))) == pytest.approx(0.22 * 40)
    assert policy.next_delay(_h((0, "running", 0.0), (5, "running", 0.0))) == pytest.approx(
        (10 - 5) * 0.8
    )  # within min_run
    assert policy.next_delay(_h((4000, "running", None))) == policy.max_delay
    with pytest.raises(videojobs.UsageError, match=r"FixedPolicy\.seconds must be positive and finite, not 0"):
        FixedPolicy(0)
    with pytest.raises(videojobs.UsageError, match=r"AdaptivePolicy\.max_delay must be positive and finite, not -1"):
        AdaptivePolicy(max_delay=-1)
    for bad in ("5", math.inf, math.nan, True, None):  # a bare TypeError, or accepted and failing after a poll
        with pytest.raises(videojobs.UsageError, match=r"FixedPolicy\.seconds must be positive and finite"):
            FixedPolicy(bad)  # type: ignore[arg-type]


def test_waiter_honours_floors_and_the_deadline() -> None:
    w = Waiter("vozo:t", start=0.0, timeout=10.0, policy=FixedPolicy(1))
    (_, status), *_ = _answers((0, "running", None))
    assert w.observe(status, 1.0)
    assert not w.observe(status, 2.0)  # no change
    assert w.next_sleep(2.0) == 1.0
    w.failed(videojobs.RateLimitError("slow down", retry_after=5.0))
    assert w.next_sleep(3.0) == 5.0
    assert w.next_sleep(9.5) == pytest.approx(0.5)  # never past the deadline
    assert w.next_sleep(10.0) is None
    timeout = w.timed_out()
    assert timeout.last_status == status
    assert str(timeout).startswith("vozo: task t did not finish within 10 s; last seen running")
    assert "the last poll failed: slow down" in str(timeout)


def test_a_wait_sleeps_a_retry_after_as_long_as_the_vendor_wide_pause_and_never_past_time_t() -> None:
    """A day's Retry-After was each failed poll's floor (ten days at the default ten failed polls),
    though the pause kept for every call stops at MAX_PAUSE; a policy's 1e10 s, finite, overflowed
    time.sleep (a bare OverflowError on the blocking face, every job of a wait_all lost)."""
    from videojobs._base import MAX_SECONDS
    from videojobs._ratecontrol import MAX_PAUSE

    w = Waiter("vozo:t", start=0.0, timeout=None, policy=FixedPolicy(3))
    w.failed(videojobs.RateLimitError("slow down", retry_after=86400.0))
    assert w.next_sleep(0.0) == MAX_PAUSE

    class Far:
        def next_delay(self, history: History) -> float:
            return 1e10

    assert Waiter("vozo:t", start=0.0, timeout=None, policy=Far()).next_sleep(0.0) == MAX_SECONDS


def test_failed_polls_in_a_row_back_off_and_an_answer_resets_them() -> None:
    w = Waiter("vozo:t", start=0.0, timeout=3600.0, policy=FixedPolicy(3))
    sleeps = []
    for _ in range(9):
        w.failed(videojobs.ServerError("502"))
        sleeps.append(w.next_sleep(0.0))
    assert sleeps == [3, 3, 4, 8, 16, 32, 60, 60, 60]  # never below the policy, doubling, capped
    assert sum(sleeps) >= 60  # the default ten failures in a row outlast a one-minute outage
    with pytest.raises(videojobs.ServerError):
        w.failed(videojobs.ServerError("502"))  # the tenth
    (_, status), *_ = _answers((0, "running", None))
    w.observe(status, 1.0)
    assert w.next_sleep(1.0) == 3  # an answer: back to the policy


# --- Client.wait and friends against the sandbox -------------------------------------------------


@pytest.mark.anyio
async def test_failed_polls_are_reported_as_they_happen_and_the_wait_goes_on() -> None:
    clock = SimClock()
    sb = Sandbox(clock=clock)
    seen: list[tuple[str | None, str, int]] = []
    async with videojobs.AsyncClient(
        api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.transport(), clock=clock, max_retries=0
    ) as client:
        final = await client.wait(
            "vozo:r1-e502x3-q1-d10", on_poll_error=lambda exc, n: seen.append((exc.ref, type(exc).__name__, n))
        )
        assert final.state is videojobs.State.SUCCEEDED
        with pytest.raises(videojobs.CallbackError, match="on_poll_error raised ZeroDivisionError"):
            await client.wait("vozo:r2-e502x3-q1-d10", on_poll_error=lambda exc, n: 1 / 0)
    assert seen == [("vozo:r1-e502x3-q1-d10", "ServerError", n) for n in (1, 2, 3)]


def test_the_sync_client_reports_failed_polls_too() -> None:
    clock = SimClock()
    sb = Sandbox(clock=clock)
    seen: list[int] = []
    with videojobs.Client(
        api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.sync_transport(), clock=clock, max_retries=0
    ) as client:
        client.wait("duomi:r3-e429x2-q1-d10", on_poll_error=lambda exc, n: seen.append(n))
    assert seen == [1, 2]


@pytest.mark.parametrize("vendor", VENDORS)
def test_wait_from_queued_to_done(sandbox: Sandbox, clock: SimClock, vendor: str) -> None:
    seen: list[videojobs.JobStatus] = []
    with _client_for(sandbox) as client:
        final = client.wait(f"{vendor}:w-ok-q6-d120", on_update=seen.append)
    assert final.state is videojobs.State.SUCCEEDED
    assert final.has_video
    assert seen[0].state is videojobs.State.QUEUED
    assert seen[-1] == final
    assert [s.progress for s in seen if s.progress is not None] == sorted(
        s.progress for s in seen if s.progress is not None
    )
    job = sandbox.job(f"{vendor}:w-ok-q6-d120")
    assert job is not None
    assert job.terminal_seen_at is not None
    lag = job.terminal_seen_at - sandbox.ended_at(job)
    assert 0 <= lag <= (0.25 * 126 if vendor == "vozo" else 4.0)
    assert job.polls < 126 / 5  # fewer polls than every 5 s


def test_failed_job_is_returned_and_raise_for_failure_raises(sandbox: Sandbox) -> None:
    with _client_for(sandbox) as client:
        final = client.wait("ezmodel:f-fail-q1-d30")
    assert final.state is videojobs.State.FAILED
    assert final.error is not None
    assert final.error.code == "content_policy_violation"
    with pytest.raises(videojobs.JobFailedError, match="content moderation") as info:
        final.raise_for_failure()
    assert info.value.status is final
    ok = videojobs.JobStatus(vendor="v", task_id="t", state=videojobs.State.SUCCEEDED)
    assert ok.raise_for_failure() is ok


def test_deleted_colossyan_job_ends_canceled(sandbox: Sandbox) -> None:
    with _client_for(sandbox) as client:
        final = client.wait("colossyan:c-cancel-q1-d20")
    assert final.state is videojobs.State.CANCELED
    assert final.vendor_state == "deleted"


def test_finished_job_without_video_is_flagged(sandbox: Sandbox) -> None:
    with _client_for(sandbox) as client:
        final = client.wait("jimmyai:n-ok-q1-d15-novideo")
    assert final.state is videojobs.State.SUCCEEDED
    assert not final.has_video


def test_timeout_raises_with_the_last_status(sandbox: Sandbox, clock: SimClock) -> None:
    start = clock.t
    with _client_for(sandbox) as client, pytest.raises(videojobs.WaitTimeout) as info:
        client.wait("duomi:t-q0-d600", timeout=60)
    assert info.value.last_status is not None
    assert info.value.last_status.state is RUNNING
    assert clock.t - start == pytest.approx(60)


def test_transient_faults_never_end_a_wait(sandbox: Sandbox) -> None:
    with _client_for(sandbox, max_retries=0) as client:
        final = client.wait("vozo:t-e429x2-e502x2-edropx1-e520x1-q1-d20")
    assert final.state is videojobs.State.SUCCEEDED


def test_a_fault_that_persists_ends_the_wait_with_it(sandbox: Sandbox) -> None:
    with _client_for(sandbox, max_retries=0) as client, pytest.raises(videojobs.ServerError):
        client.wait("duomi:down-e500")
    job = sandbox.job("duomi:down-e500")
    assert job is not None
    assert job.polls == 10


def test_not_found_ends_the_wait_at_once(sandbox: Sandbox) -> None:
    with _client_for(sandbox) as client, pytest.raises(videojobs.NotFoundError):
        client.wait("vozo:gone-e404")


def test_retry_after_is_slept_between_polls(sandbox: Sandbox, clock: SimClock) -> None:
    with _client_for(sandbox, max_retries=0) as client:
        client.wait("vozo:r-e429x1-q0-d12", policy=FixedPolicy(0.5))
    assert clock.sleeps[0] == 2.0  # the sandbox's Retry-After, over the policy's 0.5 s


def test_vendor_poll_after_hint_is_honoured_on_every_poll(clock: SimClock) -> None:
    sb = Sandbox(clock=clock)
    inner = sb.sync_transport()

    class Hinting(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = inner.handle_request(request)
            response.headers["openai-poll-after-ms"] = "7000"
            return response

    client = videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=Hinting(), clock=clock)
    client.wait("ezmodel:h-ok-q0-d30", policy=FixedPolicy(1))
    assert clock.sleeps
    assert all(s == 7.0 for s in clock.sleeps)


@pytest.mark.parametrize("hint", ["-5", "nan", "inf", "1e400", "abc", "", "9" * 5000])
def test_a_poll_after_hint_that_is_no_number_of_milliseconds_is_named(hint: str) -> None:
    """It was dropped silently: a header is part of the answer, and what of it is not used is named."""
    with sync_client(
        Recorder(httpx.Response(200, json={**EZ_PROCESSING, "id": "t"}, headers={"openai-poll-after-ms": hint}))
    ) as c:
        status = c.status("ezmodel:t")
    assert status.poll_after is None
    (problem,) = status.problems
    said = repr(hint) if hint in ("-5", "nan", "inf", "1e400") else f"a value of {len(hint)} characters"
    assert problem == f"openai-poll-after-ms: {said} is not milliseconds from 0 to an hour; ignored"


def test_a_poll_after_header_echoing_the_key_is_described_not_quoted() -> None:
    """Headers are not scrubbed of keys (bodies are): the first version quoted 40 characters of it."""
    from tests.conftest import KEYS

    key = KEYS["ezmodel"]
    answer = httpx.Response(200, json={**EZ_PROCESSING, "id": "t"}, headers={"openai-poll-after-ms": f"Bearer {key}"})
    with sync_client(Recorder(answer)) as c:
        status = c.status("ezmodel:t")
    assert status.problems == (
        f"openai-poll-after-ms: a value of {len(key) + 7} characters is not milliseconds from 0 to an hour; ignored",
    )
    assert key[:8] not in repr(status)


def test_watch_yields_changes_and_ends(sandbox: Sandbox) -> None:
    with _client_for(sandbox) as client:
        states = list(client.watch("colossyan:wt-ok-q4-d40"))
    assert states[-1].state is videojobs.State.SUCCEEDED
    pairs = [(s.state, s.progress) for s in states]
    assert len(pairs) == len(set(pairs))


def test_rate_limit_is_shared_by_all_calls_of_a_client(sandbox: Sandbox, clock: SimClock) -> None:
    with _client_for(sandbox, rate_limits={"vozo": 2.0}) as client:
        start = clock.t
        for i in range(6):
            client.status(f"vozo:r{i}")
    assert clock.t - start == pytest.approx(2.0)  # burst of 2, then every 0.5 s


# --- async --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_wait_and_watch(sandbox: Sandbox) -> None:
    async with _aclient_for(sandbox) as client:
        final = await client.wait("jimmyai:a-ok-q3-d50")
        seen = [s async for s in client.watch("duomi:b-fail-q2-d40")]
    assert final.state is videojobs.State.SUCCEEDED
    assert final.expires_at is not None
    assert seen[-1].state is videojobs.State.FAILED


@pytest.mark.anyio
@FACES
async def test_wait_all_returns_every_job_exactly_once(face: str, sandbox: Sandbox) -> None:
    refs = [f"{VENDORS[i % len(VENDORS)]}:j{i}-q{i % 7}-d{20 + i}" + ("-fail" if i % 9 == 0 else "") for i in range(60)]
    refs += ["duomi:down-e500", "vozo:gone-e404"]
    updates: list[videojobs.JobStatus] = []
    client = _face_client(face, sandbox, max_retries=0)
    results = await _many(face, client, "wait_all", refs, on_update=updates.append, max_requests=8)
    by_ref = {r.ref: r for r in results}
    assert len(results) == len(refs)
    assert set(by_ref) == set(refs)
    assert isinstance(by_ref["duomi:down-e500"], videojobs.ServerError)
    assert isinstance(by_ref["vozo:gone-e404"], videojobs.NotFoundError)
    finished = [r for r in results if isinstance(r, videojobs.JobStatus)]
    assert len(finished) == 60
    assert all(r.is_terminal for r in finished)
    assert sum(r.state is videojobs.State.FAILED for r in finished) == 7
    assert len(updates) > len(refs)


@pytest.mark.anyio
@FACES
async def test_wait_all_sends_first_come_first_served(face: str, sandbox: Sandbox) -> None:
    """One request slot, every job done at its first poll: the jobs are asked about, and so end, in
    the order given, on both faces (the blocking face served its line last in, first out: with
    fewer slots than jobs and a tight timeout, it starved the first refs where the async face
    starved the last)."""
    refs = [f"vozo:j{i}-at_done" for i in range(6)]
    results = await _many(face, _face_client(face, sandbox), "wait_all", refs, max_requests=1)
    assert [r.ref for r in results] == refs


@pytest.mark.anyio
async def test_wait_all_bounds_requests_in_flight(clock: SimClock) -> None:
    sb = Sandbox(clock=clock)
    inner = sb.transport()
    state = {"now": 0, "peak": 0}

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await asyncio.sleep(0)
            try:
                return await inner.handle_async_request(request)
            finally:
                state["now"] -= 1

    client = videojobs.AsyncClient(
        api_keys=sb.api_keys(),
        base_urls=sb.base_urls(),
        transport=Counting(),
        adaptive=False,  # no pacing: the bound on requests in flight is what holds them back
        clock=clock,
    )
    refs = [f"vozo:c{i}-q0-d15" for i in range(40)]
    results = await client.wait_all_list(refs, max_requests=5)
    await client.aclose()
    assert [r.ref for r in results] == refs
    assert state["peak"] == 5


@pytest.mark.anyio
async def test_wait_all_refuses_bad_refs_before_starting(sandbox: Sandbox) -> None:
    async with _aclient_for(sandbox) as client:
        with pytest.raises(videojobs.InvalidReferenceError):
            _ = [r async for r in client.wait_all(["vozo:ok", "vozo:"])]
    assert sandbox.jobs == {}


async def _async_callback(*args: Any) -> None:
    raise AssertionError("never called")


class _AsyncCall:
    async def __call__(self, *args: Any) -> None:
        raise AssertionError("never called")


class _AsyncPolicy:
    async def next_delay(self, history: Any) -> float:
        raise AssertionError("never called")


@pytest.mark.anyio
@FACES
@pytest.mark.parametrize(
    ("method", "kwargs", "words"),
    [
        ("wait", {"timeout": -1}, "timeout must be a positive number of seconds or None, not -1"),
        ("wait", {"timeout": 10**400}, r"timeout must be a positive number of seconds or None \(at most 1e\+09\)"),
        ("wait_all", {"timeout": 1e308}, r"timeout must be a positive number of seconds or None \(at most 1e\+09\)"),
        ("wait_all", {"max_requests": 0}, "max_requests must be a whole number >= 1, not 0"),
        ("wait_all", {"max_downloads": 0, "dest": "."}, "max_downloads must be a whole number >= 1, not 0"),
        ("wait_all_list", {"max_failed_polls": 0}, "max_failed_polls must be a whole number >= 1, not 0"),
        ("wait_all_list", {"max_bytes": 0, "dest": "."}, "max_bytes must be a whole number of bytes >= 1"),
        # caller code of the wrong kind: it used to fail only after each job's first request
        ("wait", {"policy": 5}, r"policy must have a next_delay\(history\) method .*, not int"),
        ("wait", {"policy": FixedPolicy}, r"policy must be a policy object, not the class FixedPolicy"),
        ("wait_all", {"policy": FixedPolicy}, r"policy must be a policy object, not the class FixedPolicy"),
        ("wait", {"on_update": "print"}, "on_update must be a function or None, not str"),
        ("wait_all_list", {"on_poll_error": 3}, "on_poll_error must be a function or None, not int"),
        ("wait_all", {"on_progress": 3, "dest": "."}, "on_progress must be a function or None, not int"),
        # an async def is called, never awaited: its body would silently never run
        ("wait", {"on_update": _async_callback}, "on_update must be a plain function, not an async one"),
        ("wait_all", {"on_update": _async_callback}, "on_update must be a plain function, not an async one"),
        ("wait_all_list", {"on_poll_error": _AsyncCall()}, "on_poll_error must be a plain function, not an async"),
        ("wait", {"policy": _AsyncPolicy()}, "policy _AsyncPolicy.next_delay must be a plain method, not an async"),
    ],
)
async def test_bad_wait_arguments_are_usage_errors(
    face: str, method: str, kwargs: dict[str, Any], words: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """Every argument mistake is a UsageError naming the argument and its value, before any request."""
    if kwargs.get("dest") == ".":  # a folder of the test's own: a check that regressed would save into it
        kwargs = {**kwargs, "dest": str(tmp_path)}
    with pytest.raises(videojobs.UsageError, match=words):
        await _many(face, _face_client(face, sandbox), method, "vozo:t" if method == "wait" else ["vozo:t"], **kwargs)
    assert sandbox.jobs == {}


@pytest.mark.anyio
@FACES
@pytest.mark.parametrize(
    ("method", "args", "kwargs", "words"),
    [
        ("wait_all", ["vozo:t"], {}, r"refs must be a list of jobs, not one str \('vozo:t'\): wrap it in a list"),
        ("wait_all_list", [None], {}, r"refs must be a list \(an iterable\) of jobs, not NoneType"),
        ("wait_all", [["vozo:t"]], {"dest": 5}, r"dest must be a folder or file path \(str or os.PathLike\), not int"),
        ("download_all", ["vozo:t", "."], {}, "jobs must be a list of jobs, not one str"),
        ("download_all", [["vozo:t"], None], {}, "dest must be a folder or file path .*, not NoneType"),
        ("download_all", [["vozo:t"], b"videos/"], {}, "dest must be a folder or file path .*, not bytes"),
        ("download", ["vozo:t", 5], {}, "dest must be a folder or file path .*, not int"),
        ("download", ["vozo:t", "videos/\x00x"], {}, "holds a NUL character"),
    ],
)
async def test_a_batch_or_a_destination_of_the_wrong_kind_is_a_usage_error(
    face: str, method: str, args: list[Any], kwargs: dict[str, Any], words: str, sandbox: Sandbox
) -> None:
    """One string where a list of jobs goes (each character would be a job), or a dest that is not
    a path: a UsageError that says what was expected, before any request."""
    with pytest.raises(videojobs.UsageError, match=words):
        await _many(face, _face_client(face, sandbox), method, *args, **kwargs)
    assert sandbox.jobs == {}


@pytest.mark.anyio
@FACES
async def test_an_error_names_its_job(face: str, sandbox: Sandbox) -> None:
    """status() and wait() set error.ref, as wait_all does."""

    async def call(method: str) -> Any:
        client = _face_client(face, sandbox, max_retries=0)
        if face == "sync":
            with client:
                return getattr(client, method)("vozo:gone-e404")
        async with client:
            return await getattr(client, method)("vozo:gone-e404")

    for method in ("status", "wait"):
        with pytest.raises(videojobs.NotFoundError) as info:
            await call(method)
        assert info.value.ref == "vozo:gone-e404"


@pytest.mark.anyio
async def test_wait_all_counts_the_wait_for_a_slot_against_the_deadline() -> None:
    """A vendor that accepts requests and never answers: the jobs queued behind the hung ones
    end at their deadline too, without ever sending (before, each waited its turn: 10 rounds)."""
    sent = 0
    never = asyncio.Event()

    class BlackHole(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal sent
            sent += 1
            await never.wait()
            raise AssertionError("unreachable")  # pragma: no cover

    concurrency, jobs = 2, 20
    async with videojobs.AsyncClient(  # the sync face: the test below
        api_keys={"vozo": "k-test-vozo"},
        base_urls={"vozo": "http://vendor.invalid"},
        transport=BlackHole(),
        request_timeout=0.3,
    ) as client:
        results = await client.wait_all_list([f"vozo:t{i}" for i in range(jobs)], timeout=0.3, max_requests=concurrency)
    assert len(results) == jobs
    assert all(isinstance(r, videojobs.WaitTimeout) for r in results)
    assert sent <= 2 * concurrency  # the queued jobs never got a slot before their deadline


def test_sync_wait_all_bounds_requests_in_flight(clock: SimClock) -> None:
    """The sync face's pool of max_requests threads: never more requests at once (a thread per
    job would send all 40 at once)."""
    sb = Sandbox(clock=clock)
    inner = sb.sync_transport()
    lock = threading.Lock()
    first_five = threading.Barrier(5, timeout=5)
    state = {"now": 0, "peak": 0, "sent": 0}

    class Counting(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            with lock:
                state["now"] += 1
                state["sent"] += 1
                state["peak"] = max(state["peak"], state["now"])
                sent = state["sent"]
            if sent <= 5:
                first_five.wait()  # five in flight at once: the pool's size is reached
            try:
                return inner.handle_request(request)
            finally:
                with lock:
                    state["now"] -= 1

    refs = [f"vozo:c{i}-q0-d15" for i in range(40)]
    with videojobs.Client(
        api_keys=sb.api_keys(),
        base_urls=sb.base_urls(),
        transport=Counting(),
        rate_limits=dict.fromkeys(sb.api_keys()),
        clock=clock,
    ) as client:
        results = client.wait_all_list(refs, max_requests=5)
    assert [r.ref for r in results] == refs
    assert all(isinstance(r, videojobs.JobStatus) and r.is_terminal for r in results)
    assert state["peak"] == 5


def test_sync_wait_all_counts_the_wait_for_a_slot_against_the_deadline() -> None:
    """As the async face: jobs queued behind requests that hang end at their deadline, unsent."""
    sent = 0
    never = threading.Event()

    class BlackHole(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal sent
            sent += 1
            never.wait(request.extensions["timeout"]["read"])  # hangs until the attempt's deadline
            raise httpx.ReadTimeout("no answer", request=request)

    concurrency, jobs = 2, 20
    started = time.monotonic()
    with videojobs.Client(
        api_keys={"vozo": "k-test-vozo"},
        base_urls={"vozo": "http://vendor.invalid"},
        transport=BlackHole(),
        request_timeout=0.3,
    ) as client:
        results = client.wait_all_list([f"vozo:t{i}" for i in range(jobs)], timeout=0.3, max_requests=concurrency)
    assert len(results) == jobs
    assert all(isinstance(r, videojobs.WaitTimeout) for r in results), results
    assert sent <= 2 * concurrency  # the queued jobs never got a slot before their deadline
    assert time.monotonic() - started < 10  # not one request_timeout per job in turn (20 x 0.3 s x 3 tries)


@pytest.mark.anyio
@FACES
async def test_wait_all_runs_in_no_real_time_on_a_simulated_clock(face: str, sandbox: Sandbox, clock: SimClock) -> None:
    """Sleepers wait on the client's clock: jobs that last minutes end at once on a SimClock, the
    clock moved as far as the jobs needed (both faces: one alarm, or one sleep, for every sleeper)."""
    refs = [f"vozo:long{i}-q60-d600" for i in range(10)]
    started, virtual = time.monotonic(), clock.now()
    results = await _many(face, _face_client(face, sandbox), "wait_all_list", refs)
    assert all(isinstance(r, videojobs.JobStatus) and r.state is videojobs.State.SUCCEEDED for r in results)
    assert 600 <= clock.now() - virtual < 1200  # the jobs' time passed on the clock ...
    assert time.monotonic() - started < 5  # ... not in real time


def test_leaving_sync_wait_all_early_stops_the_rest(sandbox: Sandbox) -> None:
    """Breaking out of the loop returns: nothing new is sent for the jobs left."""
    refs = ["vozo:quick-q0-d1"] + [f"vozo:slow{i}-q0-d9000" for i in range(5)]
    with _client_for(sandbox) as client:
        results = client.wait_all(refs)
        first = next(results)
        results.close()
        polls = sum(job.polls for job in sandbox.jobs.values())
        assert first.ref == "vozo:quick-q0-d1"
        assert sum(job.polls for job in sandbox.jobs.values()) == polls


@pytest.mark.anyio
@FACES
async def test_a_callback_that_returns_a_coroutine_ends_the_wait_with_a_callback_error(
    face: str, sandbox: Sandbox
) -> None:
    """``on_update=lambda s: notify(s)`` with an async ``notify``: each update made a coroutine that
    never ran (a RuntimeWarning at most). The wait now ends with a CallbackError that says why,
    and the coroutine is closed (never run, and no warning)."""
    ran: list[str] = []

    async def notify(status: videojobs.JobStatus) -> None:
        ran.append(status.ref)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would be an error
        with pytest.raises(videojobs.CallbackError, match="on_update raised TypeError") as info:
            await _many(face, _face_client(face, sandbox), "wait", "vozo:cb1", on_update=lambda s: notify(s))
    assert "a callback is called, never awaited" in str(info.value.__cause__)
    assert ran == []


@pytest.mark.anyio
@FACES
async def test_wait_alls_timeout_and_argument_checks_start_at_the_call(
    face: str, sandbox: Sandbox, clock: SimClock
) -> None:
    """As documented: ``timeout`` counts from the call, for every job. It counted from the first
    iteration (a batch made, then iterated 1.5 s later, still had its whole second); on asyncio
    the arguments were checked only then too."""
    client = _face_client(face, sandbox)
    if face == "async":
        with pytest.raises(videojobs.UsageError, match="max_requests must be"):
            client.wait_all(["vozo:t"], max_requests=0)  # at the call: no await, no iteration
    results = client.wait_all(["vozo:late1", "vozo:late2"], timeout=1.0, policy=FixedPolicy(0.1))
    clock.sleep(1.5)
    if face == "sync":
        with client:
            got = list(results)
    else:
        async with client:
            got = [r async for r in results]
    assert [type(r).__name__ for r in got] == ["WaitTimeout", "WaitTimeout"]
    assert sandbox.jobs == {}  # its time was up before any poll could go


@pytest.mark.anyio
async def test_a_callback_that_starts_a_task_and_returns_it_is_taken() -> None:
    """What the refusal of an async callback recommends: ``lambda s: loop.create_task(notify(s))``.
    The task is scheduled already; returning it is no mistake (it ended the wait for a while)."""
    ran: list[str] = []

    async def notify(status: videojobs.JobStatus) -> None:
        ran.append(status.state.value)

    sb = Sandbox(clock=SimClock())
    async with _aclient_for(sb) as client:
        loop = asyncio.get_running_loop()
        final = await client.wait("vozo:t-q1-d5", on_update=lambda s: loop.create_task(notify(s)))
        await asyncio.sleep(0)
    assert final.state is videojobs.State.SUCCEEDED
    assert ran[-1] == "succeeded"


def test_ctrl_c_in_a_sync_wait_all_reaches_the_caller_without_waiting_for_the_requests_under_way() -> None:
    """Ctrl-C (here: on_update raising KeyboardInterrupt in the caller's thread) while another
    job's request waits on a vendor that never answers: it reached the caller only once that
    request's request_timeout ran out (10 s here); wait() stopped at once. Now both do."""
    import socket as sockets

    from tests.hostile import OK_BODY, Request, hostile

    released = threading.Event()

    def scenario(request: Request, conn: sockets.socket) -> None:
        if "slow" in request.line:
            released.wait(30)  # never answers while the test runs
            return
        body = OK_BODY.replace(b"processing", b"done")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    def interrupt(status: videojobs.JobStatus) -> None:
        if status.is_terminal:
            raise KeyboardInterrupt

    with hostile(scenario) as url:
        client = videojobs.Client(api_keys={"vozo": "k" * 20}, base_urls={"vozo": url}, request_timeout=10)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            list(client.wait_all(["vozo:slow", "vozo:quick"], on_update=interrupt, policy=FixedPolicy(0.05)))
        took = time.monotonic() - started
        released.set()
        client.close()
    assert took < 5  # half the request_timeout it used to take


def test_an_awaitable_that_is_no_task_is_refused_too() -> None:
    """A generator-based or compiled coroutine (what Cython's async functions return) passed the
    check for a coroutine, and never ran."""
    import types

    from videojobs._exceptions import not_awaited

    @types.coroutine
    def legacy() -> Any:
        yield

    with pytest.raises(TypeError, match="a callback is called, never awaited"):
        not_awaited(legacy())
    not_awaited(None)


class _Stop(BaseException):
    """What ``pytest.fail()`` raises: a BaseException neither KeyboardInterrupt nor SystemExit."""


@pytest.mark.anyio
@FACES
@pytest.mark.parametrize("where", ["on_update", "policy"])
async def test_a_base_exception_out_of_the_callers_code_reaches_the_caller_of_wait_all(
    face: str, where: str, sandbox: Sandbox
) -> None:
    """Raised from an answer's on_update (in a sender) or a policy (after a sleep, in a loop
    callback), it ended that sender or was logged by the loop, and the async wait_all waited for
    ever, its timeout's alarm gone: it reaches the caller at once, as on the blocking face."""
    seen: list[str] = []

    def on_update(status: videojobs.JobStatus) -> None:
        seen.append(status.ref or "")
        if where == "on_update" and len(seen) == 4:
            raise _Stop

    class Stops:
        def next_delay(self, history: History) -> float:
            if where == "policy" and len(seen) >= 4:
                raise _Stop
            return 1.0

    client = _client_for(sandbox) if face == "sync" else _aclient_for(sandbox)
    refs = ["vozo:a-q1-d30", "vozo:b-q1-d30"]
    waiting = _many(face, client, "wait_all", refs, on_update=on_update, policy=Stops(), timeout=100)
    with pytest.raises(_Stop):
        await asyncio.wait_for(waiting, 10)  # a guard: it hung for ever
    assert len(seen) == 4


@pytest.mark.anyio
@FACES
async def test_wait_alls_first_polls_go_when_it_starts_on_a_simulated_clock(face: str, sandbox: Sandbox) -> None:
    """The async wait_all queued every job's first poll, then made its senders: the alarm's task ran
    first and slept a simulated clock to the polls' expiry (90 s on), and they went with 0.05 s
    of real time each; a process stalled 50 ms (a loaded machine) lost them, and the jobs ended in
    WaitTimeout with one update seen (1 run in 3,000 under load; a helper's finding). Each job's
    first poll goes at the start, on both faces."""
    start = sandbox.clock()
    first: dict[str, float] = {}

    def on_update(status: videojobs.JobStatus) -> None:
        first.setdefault(status.ref or "", sandbox.clock())

    refs = ["vozo:f-q1-d30", "vozo:g-q1-d30"]
    results = await _many(face, _face_client(face, sandbox), "wait_all", refs, on_update=on_update, timeout=100)
    assert {r.ref for r in results} == set(refs)
    assert first == dict.fromkeys(refs, start)


def test_closing_the_client_ends_its_waits_asleep_between_polls_at_once() -> None:
    """A service closes its client, then joins its workers: a wait asleep between two polls (a
    minute with the default policy) woke only at its next poll to hear the client was closed.
    On the system clock close() wakes every wait, wait_all and watch of the client: each ends now
    with a UsageError (the 10 s joined for below stand for the 60 s the policy asks)."""
    from tests import hostile

    with hostile.hostile(hostile.answer()) as url:  # always running
        client = videojobs.Client(api_keys={"vozo": KEYS["vozo"]}, base_urls={"vozo": url})
        polled, seen = threading.Event(), []
        results: dict[str, Any] = {}

        def first_poll(status: videojobs.JobStatus) -> None:
            seen.append(status.task_id)  # list.append: atomic
            if len(seen) >= 3:
                polled.set()

        def run(name: str, call: Callable[[], Any]) -> None:
            try:
                results[name] = call()
            except videojobs.VideoJobsError as exc:
                results[name] = exc

        policy = videojobs.FixedPolicy(60)
        threads = [
            threading.Thread(
                target=run, args=("wait", lambda: client.wait("vozo:a", policy=policy, on_update=first_poll))
            ),
            threading.Thread(
                target=run,
                args=(
                    "wait_all",
                    lambda: client.wait_all_list(["vozo:b", "vozo:c"], policy=policy, on_update=first_poll),
                ),
            ),
        ]
        for thread in threads:
            thread.start()
        assert polled.wait(10)  # each job has polled once and sleeps for a minute
        client.close()
        for thread in threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads)
    assert isinstance(results["wait"], videojobs.UsageError), results
    assert all(isinstance(r, videojobs.UsageError) for r in results["wait_all"]), results
    assert "closed while this job was waited for" in str(results["wait_all"][0])


@pytest.mark.anyio
async def test_aclose_ends_the_clients_waits_asleep_between_polls_at_once() -> None:
    """The asyncio twin: ``aclose()`` from another task wakes every wait asleep (the test's
    10 s stand for the policy's 60)."""
    from tests import hostile

    with hostile.hostile(hostile.answer()) as url:
        client = videojobs.AsyncClient(api_keys={"vozo": KEYS["vozo"]}, base_urls={"vozo": url})
        polls = 0
        polled = asyncio.Event()

        def first_poll(status: videojobs.JobStatus) -> None:
            nonlocal polls
            polls += 1
            if polls == 3:
                polled.set()

        policy = videojobs.FixedPolicy(60)
        one = asyncio.ensure_future(client.wait("vozo:a", policy=policy, on_update=first_poll))
        many = asyncio.ensure_future(client.wait_all_list(["vozo:b", "vozo:c"], policy=policy, on_update=first_poll))
        await asyncio.wait_for(polled.wait(), 10)
        await client.aclose()
        async with asyncio.timeout(10):
            with pytest.raises(videojobs.UsageError):
                await one
            results = await many
    assert all(isinstance(r, videojobs.UsageError) for r in results), results


def test_close_ends_a_wait_held_by_its_vendors_pace_without_spinning() -> None:
    """A wait whose next poll waits for its vendor's pace (a ceiling of one request in 20 s):
    once the client was closed, its sleeps returned at once and it asked the pace again, and
    again, at 100 % of a core until the slot came."""
    from tests import hostile

    with hostile.hostile(hostile.answer()) as url:
        kwargs: dict[str, Any] = {"api_keys": {"vozo": KEYS["vozo"]}, "base_urls": {"vozo": url}}
        client = videojobs.Client(**kwargs, rate_limits={"vozo": 0.05})
        polled, result = threading.Event(), []
        policy = videojobs.FixedPolicy(0.1)  # the pace, not the policy, holds the next poll

        def run() -> None:
            try:
                client.wait("vozo:a", policy=policy, on_update=lambda status: polled.set())
            except videojobs.VideoJobsError as exc:
                result.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        assert polled.wait(10)
        client.close()
        thread.join(10)
        assert not thread.is_alive()
    assert isinstance(result[0], videojobs.UsageError), result


@pytest.mark.anyio
async def test_aclose_ends_a_wait_in_its_vendors_slot_queue_and_a_poll_answered_after_it() -> None:
    """Two waits the close did not reach: one in its vendor's slot queue (a single ``wait``), and
    a ``wait_all`` job whose poll was under way at ``aclose()`` on a transport of the caller's
    (it answered, and the job went to sleep for its policy's minute)."""
    in_flight, release = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/held"):
            in_flight.set()
            await release.wait()
        return httpx.Response(200, json={"task_id": "t", "status": "processing"})

    kwargs: dict[str, Any] = {"api_keys": {"vozo": KEYS["vozo"]}, "transport": httpx.MockTransport(handler)}
    pacing = videojobs.AsyncClient(**kwargs, rate_limits={"vozo": 0.05})  # a request in 20 s
    client = videojobs.AsyncClient(**kwargs)
    first = asyncio.Event()
    paced = asyncio.ensure_future(
        pacing.wait("vozo:paced", policy=videojobs.FixedPolicy(0.1), on_update=lambda s: first.set())
    )
    held = asyncio.ensure_future(client.wait_all_list(["vozo:held"], policy=videojobs.FixedPolicy(60)))
    await asyncio.wait_for(first.wait(), 10)
    await asyncio.wait_for(in_flight.wait(), 10)
    await pacing.aclose()
    await client.aclose()
    release.set()  # the poll under way answers after the close
    async with asyncio.timeout(10):
        with pytest.raises(videojobs.UsageError):
            await paced
        (result,) = await held
    assert isinstance(result, videojobs.UsageError), result


def test_aclose_after_a_loop_closed_under_a_wait_all_closes_the_client() -> None:
    """A ``wait_all`` left suspended on a loop closed without ``shutdown_asyncgens`` stayed told
    of the close: ``aclose()`` on the next loop raised RuntimeError ('Event loop is closed') from
    it, before closing a single vendor handle."""

    def answer(request: httpx.Request) -> httpx.Response:
        status = "failed" if request.url.path.endswith("/a") else "processing"
        return httpx.Response(200, json={"task_id": "t", "status": status})

    client = videojobs.AsyncClient(api_keys={"vozo": KEYS["vozo"]}, transport=httpx.MockTransport(answer))
    loop = asyncio.new_event_loop()
    results = client.wait_all(["vozo:a", "vozo:b"], policy=videojobs.FixedPolicy(60))

    async def first() -> None:
        async with asyncio.timeout(10):
            await results.__anext__()  # "a" has failed; "b" sleeps a minute

    loop.run_until_complete(first())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the pending senders the closed loop drops
        loop.close()
    asyncio.run(client.aclose())
    with pytest.raises(videojobs.UsageError, match="closed"):
        client.vendor("vozo")
