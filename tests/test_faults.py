"""Faults over real loopback sockets against the sandbox under uvicorn."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import videojobs
from tests.cases import VENDORS
from tests.servers import serve
from videojobs._policy import AdaptivePolicy

pytestmark = pytest.mark.network
SCALE = 50.0
POLICY = AdaptivePolicy().scaled(SCALE)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_is_bounded_by_the_calls_budget(silent_server: int) -> None:
    urls = {"vozo": f"http://127.0.0.1:{silent_server}"}
    start = time.monotonic()
    with (
        videojobs.Client(api_keys={"vozo": "k"}, base_urls=urls, timeout=0.4, max_retries=1) as client,
        pytest.raises(videojobs.NetworkError, match="no complete answer within"),
    ):
        client.status("vozo:t")
    # one attempt of 0.4 s; a retry would need a backoff of 0.5 s or more, which the call's
    # budget (0.4 s x 2 attempts) no longer has: it ends within that budget
    assert 0.4 <= time.monotonic() - start < 0.8 + 1.0


def test_429_storm_and_5xx_bursts_do_not_end_a_wait() -> None:
    with (
        serve(time_scale=SCALE, retry_after=0.05) as (sb, root),
        videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(root), max_retries=2) as client,
    ):
        storm = client.wait("duomi:storm-e429x8-q1-d30", policy=POLICY)
        burst = client.wait("ezmodel:burst-e500x3-e502x2-e520x2-q1-d30", policy=POLICY)
    assert storm.state is videojobs.State.SUCCEEDED
    assert burst.state is videojobs.State.SUCCEEDED
    assert sb.job("duomi:storm-e429x8-q1-d30").polls >= 9  # type: ignore[union-attr]


def test_dropped_connections_under_load_lose_nothing() -> None:
    refs = [f"{VENDORS[i % 5]}:drop{i}-edropx2-q{i % 3}-d{20 + i % 10}" for i in range(100)]
    with serve(time_scale=SCALE) as (sb, root):

        async def run() -> list[videojobs.JobStatus | videojobs.VideoJobsError]:
            async with videojobs.AsyncClient(
                api_keys=sb.api_keys(), base_urls=sb.base_urls(root), rate_limits=dict.fromkeys(VENDORS)
            ) as client:
                return [r async for r in client.wait_all(refs, policy=POLICY, concurrency=32)]

        results = asyncio.run(run())
    assert sorted(r.ref for r in results) == sorted(refs)  # type: ignore[type-var]
    assert all(isinstance(r, videojobs.JobStatus) and r.state is videojobs.State.SUCCEEDED for r in results)


def test_a_vendor_down_for_the_whole_wait_all() -> None:
    refs = [f"{VENDORS[i % 5]}:w{i}-q1-d{15 + i % 10}" for i in range(50)]
    with serve(time_scale=SCALE) as (sb, root):
        urls = sb.base_urls(root)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            urls["jimmyai"] = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens there

            async def run() -> list[videojobs.JobStatus | videojobs.VideoJobsError]:
                async with videojobs.AsyncClient(
                    api_keys=sb.api_keys(), base_urls=urls, max_retries=1, rate_limits=dict.fromkeys(VENDORS)
                ) as client:
                    # failed polls back off 1, 2, 4 ... s: three in a row end the wait within seconds
                    # (the default, ten, rides out minutes of outage; see the next test)
                    return [r async for r in client.wait_all(refs, policy=POLICY, timeout=60, max_failed_polls=3)]

            start = time.monotonic()
            results = asyncio.run(run())
    by_ref = {r.ref: r for r in results}
    assert len(results) == len(refs)
    assert set(by_ref) == set(refs)
    for ref, result in by_ref.items():
        if ref.startswith("jimmyai:"):
            assert isinstance(result, videojobs.NetworkError)
            assert result.vendor == "jimmyai"
            assert "could not reach the vendor" in str(result)
        else:
            assert isinstance(result, videojobs.JobStatus)
            assert result.state is videojobs.State.SUCCEEDED
    assert time.monotonic() - start < 30


def test_a_vendor_down_for_a_while_costs_no_job_and_adds_no_load() -> None:
    """503s for 3 s mid-wait, every default: each job ends after the outage, and the outage is asked
    less often than the polling policy asked before it (failed polls back off, retries are budgeted)."""
    refs = [f"duomi:o{i}-q0-d{300 + i % 10}" for i in range(60)]  # 6 s of real time at SCALE

    async def run(sb: Any, root: str) -> tuple[list[Any], float]:
        async with videojobs.AsyncClient(api_keys=sb.api_keys(), base_urls=sb.base_urls(root)) as client:

            async def outage() -> float:
                await asyncio.sleep(0.5)
                before, start = sb._served()["duomi"], time.monotonic()
                await asyncio.sleep(1.0)
                rate = (sb._served()["duomi"] - before) / (time.monotonic() - start)
                async with httpx.AsyncClient() as http:
                    answer = await http.post(f"{root}/sandbox/outage", json={"vendor": "duomi", "seconds": 3})
                    assert answer.status_code == 200
                return rate

            counter = asyncio.create_task(outage())
            results = [r async for r in client.wait_all(refs, policy=POLICY)]
            return results, await counter

    with serve(time_scale=SCALE) as (sb, root):
        results, rate_before = asyncio.run(run(sb, root))
    assert sorted(r.ref for r in results) == sorted(refs)
    assert all(isinstance(r, videojobs.JobStatus) and r.state is videojobs.State.SUCCEEDED for r in results), [
        r for r in results if not isinstance(r, videojobs.JobStatus)
    ]
    during = sb.refused["duomi"]
    assert during > 0  # the outage was seen
    assert during <= 1.2 * rate_before * 3
