"""Another job's answer on a kept-alive connection, against real loopback servers (attack atk17's e1
and e1c): a server or proxy that leaves a second answer after the first one made the next status
call, about another job, read it as its own: that job's state and video, no problem named.

Where the vendor's answer repeats the job's id (ezmodel's ``id``), it is refused as a
``MalformedResponseError``; a wait counts it as a failed poll and goes on to the job's own answer.
The answer's id is checked in translation (tests/test_conformance.py covers every vendor); these
tests are the connection's side: the blocking client (its lane onto httpcore's pool) and the
asyncio one (aiohttp), the stray answer in the same write as the first or arriving while the
connection idles in the pool.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import videojobs
from tests import hostile

KEYS = {"ezmodel": "sk-ezmodel-foreign-answer-test"}
EVIL = "https://evil.example/injected.mp4"


def _answer(body: dict[str, object]) -> bytes:
    raw = json.dumps(body).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(raw), raw)


def _job(request: hostile.Request) -> str:
    return request.line.split()[1].rsplit("/", 1)[-1]


def _own(job: str) -> bytes:
    """The job's own answer: job ``done`` has finished (its video named after it), any other is running."""
    if job == "done":
        return _answer({"id": job, "status": "completed", "progress": 100, "url": f"https://cdn.example/{job}.mp4"})
    return _answer({"id": job, "status": "processing", "progress": 40})


STRAY = _answer({"id": "t1", "status": "completed", "progress": 100, "url": EVIL})
"""What the server leaves after its first answer: job t1's, finished, with a URL no poll asked for."""


@contextmanager
def stray_server(delay: float | None) -> Iterator[tuple[str, list[str]]]:
    """A server that, on its first request of all, writes the stray answer after the asked job's own:
    in the same write (``delay`` None) or ``delay`` s later, while the connection idles. Yields its
    base URL and the jobs it was asked about, in order."""
    asked: list[str] = []

    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        asked.append(job := _job(request))
        if len(asked) == 2:  # late: the next request goes out before it, on an idle, quiet connection
            time.sleep(0.3)
        if len(asked) > 1:
            conn.sendall(_own(job))
        elif delay is None:
            conn.sendall(_own(job) + STRAY)
        else:
            conn.sendall(_own(job))
            time.sleep(delay)
            conn.sendall(STRAY)

    with hostile.hostile(scenario) as url:
        yield url, asked


def _client(url: str) -> videojobs.Client:
    return videojobs.Client(api_keys=KEYS, base_urls={"ezmodel": url}, request_timeout=5, max_retries=0)


def _aclient(url: str) -> videojobs.AsyncClient:
    return videojobs.AsyncClient(api_keys=KEYS, base_urls={"ezmodel": url}, request_timeout=5, max_retries=0)


def _check_refused(exc: videojobs.MalformedResponseError) -> None:
    assert exc.vendor == "ezmodel"
    assert "task t2: the answer is for another job (id is 't1')" in str(exc)
    assert EVIL.encode() in (exc.raw or b"")  # what was refused, kept


@pytest.mark.parametrize("delay", [None, 0.05], ids=["same-write", "while-idle"])
def test_sync_another_job_s_answer_is_refused_and_its_connection_not_reused(delay: float | None) -> None:
    with stray_server(delay) as (url, asked), _client(url) as client:
        assert client.status("ezmodel:t1").state is videojobs.State.RUNNING
        time.sleep(0.2)  # the stray answer is there before the next request
        try:
            status = client.status("ezmodel:t2")
        except videojobs.MalformedResponseError as exc:
            _check_refused(exc)
        else:  # httpcore saw the idle connection readable and opened another (the stray came late)
            assert (status.task_id, status.raw.id, status.video_url) == ("t2", "t2", None)
        status = client.status("ezmodel:t3")  # on a connection that is not one answer behind
        assert (status.task_id, status.state, status.raw.id) == ("t3", videojobs.State.RUNNING, "t3")
        assert asked[0] == "t1"
        assert "t3" in asked


@pytest.mark.anyio
@pytest.mark.parametrize("delay", [None, 0.05], ids=["same-write", "while-idle"])
async def test_async_another_job_s_answer_is_refused_not_read(delay: float | None) -> None:
    with stray_server(delay) as (url, asked):
        async with _aclient(url) as client:
            assert (await client.status("ezmodel:t1")).state is videojobs.State.RUNNING
            await asyncio.sleep(0.2)
            try:
                status = await client.status("ezmodel:t2")
            except videojobs.MalformedResponseError as exc:
                _check_refused(exc)
            else:  # aiohttp dropped the stray bytes (they came in the same read as the first answer)
                assert (status.task_id, status.raw.id, status.video_url) == ("t2", "t2", None)
            assert asked[0] == "t1"


def test_sync_wait_rides_out_another_job_s_answer() -> None:
    """The stray answer is a failed poll of the wait: it goes on and ends with the job's own answer."""
    with stray_server(None) as (url, asked), _client(url) as client:
        client.status("ezmodel:t1")
        errors: list[BaseException] = []
        status = client.wait(
            "ezmodel:done",
            timeout=10,
            policy=videojobs.FixedPolicy(0.05),
            on_poll_error=lambda exc, n: errors.append(exc),
        )
    assert (status.task_id, status.state, status.video_url) == ("done", videojobs.State.SUCCEEDED, _url("done"))
    assert [type(e) for e in errors] == [videojobs.MalformedResponseError]
    assert asked[0] == "t1"


@pytest.mark.anyio
async def test_async_wait_rides_out_another_job_s_answer() -> None:
    with stray_server(0.05) as (url, asked):
        async with _aclient(url) as client:
            await client.status("ezmodel:t1")
            await asyncio.sleep(0.2)
            errors: list[BaseException] = []
            status = await client.wait(
                "ezmodel:done",
                timeout=10,
                policy=videojobs.FixedPolicy(0.05),
                on_poll_error=lambda exc, n: errors.append(exc),
            )
    assert (status.task_id, status.state, status.video_url) == ("done", videojobs.State.SUCCEEDED, _url("done"))
    assert all(isinstance(e, videojobs.MalformedResponseError) for e in errors)
    assert asked[0] == "t1"


def _url(job: str) -> str:
    return f"https://cdn.example/{job}.mp4"


@pytest.mark.parametrize("echo", ["same", "absent"])
def test_sync_an_answer_with_the_asked_id_or_none_is_read(echo: str) -> None:
    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        body: dict[str, object] = {"status": "processing", "progress": 10}
        if echo == "same":
            body["id"] = _job(request)
        conn.sendall(_answer(body))

    with hostile.hostile(scenario) as url, _client(url) as client:
        for job in ("a", "b"):
            status = client.status(f"ezmodel:{job}")
            assert (status.task_id, status.state, status.problems) == (job, videojobs.State.RUNNING, ())


def test_an_answer_merely_unreadable_keeps_its_connection() -> None:
    """A connection is shut down only under another job's answer, which shows it out of step. One
    that is merely unreadable (not JSON) came in step: dropped too, as at first, another thread's
    request that had meanwhile taken it from the pool failed (7 of 10 in a review's repro)."""
    peers: list[tuple[str, int]] = []

    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        peers.append(conn.getpeername())
        job = _job(request)
        if job == "t1":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\nnot json")
        else:
            conn.sendall(_own(job))

    with hostile.hostile(scenario) as url, _client(url) as client:
        with pytest.raises(videojobs.MalformedResponseError, match="task t1"):
            client.status("ezmodel:t1")
        assert client.status("ezmodel:t2").state is videojobs.State.RUNNING
    assert len(peers) == 2
    assert peers[0] == peers[1]  # the same connection, kept


def test_the_id_a_refusal_names_is_scrubbed_in_its_cause_too() -> None:
    """A vendor (or a proxy) that echoes a piece of the key as the job's id: the refusal's message
    quoted it scrubbed, but its ``__cause__`` kept it, and a traceback (a worker's failure log)
    printed it. A review's finding."""
    key = "sk-ezmodel-Ab3dEfGh1jKlMnOpQrStUvWxYz0123456789"
    piece = key[:24]

    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        conn.sendall(_answer({"id": piece + "...", "status": "processing"}))

    with (
        hostile.hostile(scenario) as url,
        videojobs.Client(api_keys={"ezmodel": key}, base_urls={"ezmodel": url}, max_retries=0) as client,
        pytest.raises(videojobs.MalformedResponseError, match="the answer is for another job") as caught,
    ):
        client.status("ezmodel:t2")
    assert caught.value.__cause__ is not None
    printed = "".join(traceback.format_exception(caught.value))
    assert "another job" in printed
    assert piece not in printed


def test_an_adapter_of_the_protocol_from_before_the_echoed_id_still_reads() -> None:
    """``VendorAdapter`` is public: a plugin written to it before ``echoed_id`` (no BaseAdapter under
    it) had every answer refused, the attribute's AttributeError read as an answer that could not
    be mapped. Its answers are read, unchecked."""
    from videojobs._translate import Exchange, translate
    from videojobs.vendors.ezmodel import EzmodelAdapter

    inner = EzmodelAdapter()

    class Plugin:
        def __getattr__(self, name: str) -> object:
            if name == "echoed_id":
                raise AttributeError(name)
            return getattr(inner, name)

    body = json.dumps({"id": "t1", "status": "processing", "progress": 40}).encode()
    status = translate(Plugin(), "t2", Exchange(200, {}, body))  # type: ignore[arg-type]
    assert status.state is videojobs.State.RUNNING
    with pytest.raises(videojobs.MalformedResponseError, match="another job"):
        translate(inner, "t2", Exchange(200, {}, body))
