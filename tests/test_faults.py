"""Faults over real loopback sockets against the sandbox under uvicorn.

Client and sandbox share one :class:`~tests.clocks.ScaledClock`: the jobs' scripts, the sandbox's
Retry-After and outages, the default polling policy and the client's own backoff (retries and
failed polls) all run on one virtual timeline, ``SCALE`` times faster than real time, with the
defaults a user gets. Request timeouts stay real time (see tests/clocks.py).
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import videojobs
from tests.cases import VENDORS
from tests.clocks import ScaledClock
from tests.servers import serve
from videojobs.sandbox import Sandbox

pytestmark = pytest.mark.network
SCALE = 50.0
"""Virtual seconds per real second: a 30 s job plays in 0.6 s; a 5 ms round trip reads as 0.25 s."""
OUTAGE_SCALE = 40.0
"""Slower for the test that counts requests per virtual second: the real time the requests take
(more on a loaded machine) reads as less virtual time."""


class SilentServer:
    """Accepts connections and never answers; ``connections()`` says how many were made."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            if select.select([self.listener], [], [], 0.05)[0]:
                self.held.append(self.listener.accept()[0])

    def connections(self) -> int:
        """Every connection made so far (the ones still in the backlog too)."""
        self._stop.set()
        self._thread.join()
        self.listener.setblocking(False)
        while True:
            try:
                self.held.append(self.listener.accept()[0])
            except BlockingIOError:
                return len(self.held)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.held:
            conn.close()
        self.listener.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_a_server_that_never_answers_is_bounded_by_the_calls_budget(silent_server: SilentServer) -> None:
    urls = {"vozo": f"http://127.0.0.1:{silent_server.port}"}
    start = time.monotonic()
    with (
        videojobs.Client(api_keys={"vozo": "k"}, base_urls=urls, request_timeout=0.4, max_retries=1) as client,
        pytest.raises(videojobs.NetworkError, match=r"no complete answer within 0\.4 s"),
    ):
        client.status("vozo:t")
    elapsed = time.monotonic() - start
    # one attempt of 0.4 s; a retry would need a backoff of 0.5 s or more, which the call's
    # budget (0.4 s x 2 attempts) no longer has: the error names the attempt's timeout, and the
    # server saw one connection, not two
    assert silent_server.connections() == 1
    assert elapsed >= 0.4  # a timeout never trips early
    # only a hang misses this: 0.4 s of work, with ten times that of slack for a loaded machine
    assert elapsed < 10 * 0.4


def test_429_storm_and_5xx_bursts_do_not_end_a_wait() -> None:
    """Eight 429s (Retry-After 1 s) and seven 5xx in a row, with the client's defaults but two retries."""
    clock = ScaledClock(SCALE)
    with (
        serve(Sandbox(clock=clock)) as (sb, root),
        videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(root), max_retries=2, clock=clock) as client,
    ):
        storm = client.wait("duomi:storm-e429x8-q1-d30")
        burst = client.wait("ezmodel:burst-e500x3-e502x2-e520x2-q1-d30")
    assert storm.state is videojobs.State.SUCCEEDED
    assert burst.state is videojobs.State.SUCCEEDED
    assert sb.job("duomi:storm-e429x8-q1-d30").polls >= 9  # type: ignore[union-attr]
    assert sb.job("ezmodel:burst-e500x3-e502x2-e520x2-q1-d30").polls >= 8  # type: ignore[union-attr]


def test_dropped_connections_under_load_lose_nothing() -> None:
    refs = [f"{VENDORS[i % 5]}:drop{i}-edropx2-q{i % 3}-d{20 + i % 10}" for i in range(100)]
    clock = ScaledClock(SCALE)
    with serve(Sandbox(clock=clock)) as (sb, root):

        async def run() -> list[videojobs.JobStatus | videojobs.VideoJobsError]:
            async with videojobs.AsyncClient(
                api_keys=sb.api_keys(), base_urls=sb.base_urls(root), rate_limits=dict.fromkeys(VENDORS), clock=clock
            ) as client:
                return [r async for r in client.wait_all(refs, max_requests=32)]

        results = asyncio.run(run())
    assert sorted(r.ref for r in results) == sorted(refs)  # type: ignore[type-var]
    assert all(isinstance(r, videojobs.JobStatus) and r.state is videojobs.State.SUCCEEDED for r in results)
    assert all(sb.job(ref).polls >= 3 for ref in refs)  # type: ignore[union-attr]  # two drops, then answers


def test_a_vendor_down_for_the_whole_wait_all() -> None:
    refs = [f"{VENDORS[i % 5]}:w{i}-q1-d{15 + i % 10}" for i in range(50)]
    clock = ScaledClock(SCALE)
    failures: dict[str, list[int]] = {}

    def on_poll_error(error: videojobs.VideoJobsError, in_a_row: int) -> None:
        failures.setdefault(str(error.ref), []).append(in_a_row)

    with serve(Sandbox(clock=clock)) as (sb, root):
        urls = sb.base_urls(root)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            urls["jimmyai"] = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens there

            async def run() -> list[videojobs.JobStatus | videojobs.VideoJobsError]:
                async with videojobs.AsyncClient(
                    api_keys=sb.api_keys(),
                    base_urls=urls,
                    max_retries=1,
                    rate_limits=dict.fromkeys(VENDORS),
                    clock=clock,
                ) as client:
                    # failed polls back off 1, 2, 4 ... s: three in a row end the wait within seconds
                    # (the default, ten, rides out minutes of outage; see the next test). The timeout
                    # is far off: what ends the dead vendor's waits is their failed polls.
                    waits = client.wait_all(refs, timeout=600, max_failed_polls=3, on_poll_error=on_poll_error)
                    return [r async for r in waits]

            results = asyncio.run(run())
    by_ref = {r.ref: r for r in results}
    assert len(results) == len(refs)
    assert set(by_ref) == set(refs)
    for ref, result in by_ref.items():
        if ref.startswith("jimmyai:"):
            assert isinstance(result, videojobs.NetworkError)
            assert result.vendor == "jimmyai"
            assert "could not reach the vendor" in str(result)
            assert failures[ref] == [1, 2]  # two failed polls ridden out, the third ended the wait
        else:
            assert isinstance(result, videojobs.JobStatus)
            assert result.state is videojobs.State.SUCCEEDED
            assert ref not in failures


def test_a_vendor_down_for_a_while_costs_no_job_and_adds_no_load() -> None:
    """503s for a minute mid-wait, every default: each job ends after the outage, and the outage is
    asked less often than the polling policy asked before it (failed polls back off, retries are budgeted)."""
    # queues of 0-12 s and runs of 90-109 s: the jobs' polls are spread out, as a real batch's are
    # (jobs started together with one script poll in lockstep, and a rate read over a window then
    # depends on whether a round of polls falls just inside it or just outside)
    refs = [f"duomi:o{i}-q{i % 13}-d{90 + i * 7 % 20}" for i in range(30)]
    outage = 60.0  # virtual seconds, from 30 s into the wait: every job is still running after it
    clock = ScaledClock(OUTAGE_SCALE)

    async def run(sb: Any, root: str) -> tuple[list[Any], float]:
        async with videojobs.AsyncClient(api_keys=sb.api_keys(), base_urls=sb.base_urls(root), clock=clock) as client:

            async def cut() -> float:
                await clock.asleep(10)
                before, start = sb._served()["duomi"], clock.now()
                await clock.asleep(20)
                rate = (sb._served()["duomi"] - before) / (clock.now() - start)
                async with httpx.AsyncClient() as http:
                    answer = await http.post(f"{root}/sandbox/outage", json={"vendor": "duomi", "seconds": outage})
                    assert answer.status_code == 200
                return rate

            counter = asyncio.create_task(cut())
            results = [r async for r in client.wait_all(refs)]
            return results, await counter

    with serve(Sandbox(clock=clock)) as (sb, root):
        results, rate_before = asyncio.run(run(sb, root))
    assert sorted(r.ref for r in results) == sorted(refs)
    assert all(isinstance(r, videojobs.JobStatus) and r.state is videojobs.State.SUCCEEDED for r in results), [
        r for r in results if not isinstance(r, videojobs.JobStatus)
    ]
    during = sb.refused["duomi"]
    assert during > 0  # the outage was seen
    assert during <= 1.2 * rate_before * outage, (during, rate_before)
