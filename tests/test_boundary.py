"""The boundary is total: against hostile servers on real loopback sockets, every call ends in a
JobStatus or a typed VideoJobsError, within its deadline and a memory bound, and no key leaks."""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import fractions
import functools
import gzip
import json
import logging
import pathlib
import re
import socket
import threading
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

import videojobs
from tests import hostile
from tests.clocks import SimClock
from tests.conftest import Recorder, sync_client

KEY = "sk-vozo-ECHOED-key/42"
DEADLINE_SLACK = 4.5
"""Seconds a call against a real socket may run past its deadline here. A deadline is real time
(a socket does not run on a fake clock), so these tests must read the wall clock; a loaded CI
machine can stall a process for a second or more, hence several times the deadlines they set
(0.5 s), and still far below what a missing deadline costs: the hostile servers go on for 30 s
(``hostile.MAX_SECONDS``) and the client's own timeout in the wait tests is 30 s."""
MEMORY_BOUND = 48 * 1024 * 1024  # what one call may allocate, whatever the server sends


class InstantSleeps:
    """Real monotonic time, except that sleeping takes none: each sleep moves the clock forward at
    once and is recorded. Requests still take the real time they take (their deadlines are real),
    so a call's budget on this clock counts its attempts as they ran and its backoffs as asked."""

    def __init__(self) -> None:
        self.skipped = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return time.monotonic() + self.skipped

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.skipped += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


def counting(scenario: hostile.Scenario, seen: list[str]) -> hostile.Scenario:
    """``scenario``, noting each request it gets in ``seen``."""

    def counted(request: hostile.Request, conn: Any) -> None:
        seen.append(request.line)
        scenario(request, conn)

    return counted


def _client(url: str, **kwargs: Any) -> videojobs.Client:
    kwargs.setdefault("max_retries", 0)
    return videojobs.Client(api_keys={"vozo": KEY}, base_urls={"vozo": url}, **kwargs)


def _aclient(url: str, **kwargs: Any) -> videojobs.AsyncClient:
    kwargs.setdefault("max_retries", 0)
    return videojobs.AsyncClient(api_keys={"vozo": KEY}, base_urls={"vozo": url}, **kwargs)


def call(mode: str, url: str, ref: str = "vozo:t", **kwargs: Any) -> tuple[Any, float, int]:
    """``(JobStatus or the VideoJobsError, seconds, peak bytes allocated)`` of one status call."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        if mode == "sync":
            with _client(url, **kwargs) as client:
                result: Any = client.status(ref)
        else:

            async def run() -> Any:
                async with _aclient(url, **kwargs) as client:
                    return await client.status(ref)

            result = asyncio.run(run())
    except videojobs.VideoJobsError as exc:
        result = exc
    finally:
        elapsed = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, elapsed, peak


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


# --- deadlines --------------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize("scenario", [hostile.trickle_headers, hostile.trickle_body, hostile.silent])
def test_a_slow_server_cannot_outlast_the_call(mode: str, scenario: Callable[[], hostile.Scenario]) -> None:
    with hostile.hostile(scenario()) as url:
        result, elapsed, _ = call(mode, url, request_timeout=0.5)
    assert isinstance(result, videojobs.NetworkError), result
    # the attempt's own deadline ended it (0.5 s, or a hair less: it counts from when the attempt began)
    assert re.search(r"no complete answer within 0\.(5|4\d*) s", str(result)), result
    assert elapsed < 0.5 + DEADLINE_SLACK  # wall clock, as a deadline is (see DEADLINE_SLACK)


@MODES
@pytest.mark.parametrize("method", ["download", "download_all"])
def test_a_downloads_timeout_covers_the_status_call_it_starts_with(
    mode: str, method: str, tmp_path: pathlib.Path
) -> None:
    """download(ref, timeout=) asks the vendor first: that call, and its retries, end by the
    download's deadline too (a status call's own budget here is 4 x 3 s)."""

    async def run_async() -> Any:
        async with _aclient(url, request_timeout=3, max_retries=3) as client:
            if method == "download":
                return await client.download("vozo:t", tmp_path, timeout=0.5)
            return [r async for r in client.download_all(["vozo:t1", "vozo:t2"], tmp_path, timeout=0.5)]

    def run_sync() -> Any:
        with _client(url, request_timeout=3, max_retries=3) as client:
            if method == "download":
                return client.download("vozo:t", tmp_path, timeout=0.5)
            return list(client.download_all(["vozo:t1", "vozo:t2"], tmp_path, timeout=0.5, max_downloads=1))

    with hostile.hostile(hostile.silent()) as url:
        start = time.monotonic()
        try:
            result = run_sync() if mode == "sync" else asyncio.run(run_async())
        except videojobs.VideoJobsError as exc:
            result = [exc]
        elapsed = time.monotonic() - start
    assert all(isinstance(r, videojobs.NetworkError) for r in result), result
    assert elapsed < 0.5 + DEADLINE_SLACK  # wall clock, as a deadline is (see DEADLINE_SLACK)
    assert list(tmp_path.iterdir()) == []


@MODES
def test_retries_share_the_calls_budget(mode: str) -> None:
    """Attempts and backoffs together stay within ``timeout * (max_retries + 1)``: here 1.25 s,
    where four backoffs alone (0.5, 1, 2, 4 s and jitter) would be 7.5 s and more."""
    clock, seen = InstantSleeps(), []
    with hostile.hostile(counting(hostile.trickle_body(), seen)) as url:
        start = clock.now()
        result, _, _ = call(mode, url, request_timeout=0.25, max_retries=4, clock=clock)
        spent = clock.now() - start  # the attempts' real time and the backoffs asked for
    budget = 0.25 * 5
    assert isinstance(result, videojobs.NetworkError), result
    assert "no complete answer within" in str(result) or "time ran out" in str(result), result
    assert 1 <= len(seen) < 5  # retried, but not all four retries: the budget ran out first
    assert sum(clock.sleeps) < budget  # the backoffs the call slept fit in what was left
    assert spent < budget + DEADLINE_SLACK  # and the attempts' real time counted against it


def test_a_wait_against_a_silent_server_ends_on_time_with_the_cause() -> None:
    with hostile.hostile(hostile.silent()) as url, _client(url, request_timeout=30) as client:
        start = time.monotonic()
        with pytest.raises(videojobs.WaitTimeout) as info:
            client.wait("vozo:t", timeout=0.5)
        elapsed = time.monotonic() - start
    assert elapsed < 0.5 + DEADLINE_SLACK  # the wait's deadline, not the request's 30 s timeout
    assert info.value.last_status is None
    assert isinstance(info.value.__cause__, videojobs.NetworkError)
    assert "no complete answer within" in str(info.value.__cause__)
    assert "within 30 s" not in str(info.value.__cause__)  # the poll was cut to what the wait had left
    assert "the last poll failed" in str(info.value)


@pytest.mark.anyio
async def test_an_async_wait_against_a_silent_server_ends_on_time() -> None:
    with hostile.hostile(hostile.silent()) as url:
        async with _aclient(url, request_timeout=30) as client:
            start = time.monotonic()
            with pytest.raises(videojobs.WaitTimeout) as info:
                await client.wait("vozo:t", timeout=0.5)
            assert time.monotonic() - start < 0.5 + DEADLINE_SLACK  # not the request's 30 s
    assert isinstance(info.value.__cause__, videojobs.NetworkError)
    assert "within 30 s" not in str(info.value.__cause__)


# --- sizes and encodings ------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize(
    "scenario",
    [hostile.endless_body, hostile.gzip_bomb, lambda: hostile.gzip_bomb(encoding="deflate")],
    ids=["endless", "gzip-bomb", "deflate-bomb"],
)
def test_a_body_too_large_is_refused_within_the_memory_bound(mode: str, scenario: Callable[[], Any]) -> None:
    with hostile.hostile(scenario()) as url:
        result, elapsed, peak = call(mode, url, request_timeout=10)
    assert isinstance(result, videojobs.MalformedResponseError), result
    assert "larger than max_response_bytes" in str(result)
    assert result.raw is not None
    assert len(result.raw) <= 1024  # a bounded sample of what came
    assert peak < MEMORY_BOUND
    assert elapsed < 10


def _sends(data: bytes) -> hostile.Scenario:
    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        conn.sendall(data)
        conn.close()

    return scenario


@MODES
@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 2" + b"x" * 60_000 + b" OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X" * 60_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X\x01" * 3_000 + b": v\r\n\r\n",
    ],
    ids=["status-line", "header-line", "header-name"],
)
def test_a_transports_words_on_a_broken_answer_are_quoted_on_one_bounded_line(mode: str, data: bytes) -> None:
    """h11 and aiohttp quote a bad status or header line whole, aiohttp over several lines."""
    with hostile.hostile(_sends(data)) as url:
        error, _, _ = call(mode, url)
    assert isinstance(error, videojobs.NetworkError)
    assert error.message.startswith("could not reach the vendor: ")
    assert len(error.message) < 300
    assert error.message.endswith("…")
    assert "\n" not in error.message


def _read_answer(slug: str, body: Any) -> videojobs.JobStatus:
    with sync_client(Recorder(httpx.Response(200, json=body))) as client:
        return client.status(f"{slug}:t1")


def test_an_answer_names_at_most_max_problems_and_counts_the_rest() -> None:
    from videojobs._adapter import MAX_PROBLEMS

    body = {"state": "succeeded", "progress": 100, "data": {"videos": [{"url": ""}] * 1_000}}
    status = _read_answer("duomi", body)
    assert status.state is videojobs.State.SUCCEEDED
    assert len(status.problems) <= MAX_PROBLEMS + 2  # the count, and the job's own "no video" line
    assert status.problems[0] == "data.videos[0].url: '' is not a video URL; left out"
    (count,) = [p for p in status.problems if p.startswith("and ")]
    more = re.match(r"and ([\d,]+) more problems of this answer", count)
    assert more is not None
    assert int(more[1].replace(",", "")) >= 1_000 - MAX_PROBLEMS
    assert len(repr(status)) < 20_000


def test_a_video_url_longer_than_any_server_takes_is_left_out_and_named() -> None:
    from videojobs._adapter import MAX_URL

    base = "https://cdn.example/v.mp4?sig="
    kept = _read_answer("vozo", {"status": "done", "video_url": base + "a" * (MAX_URL - len(base))})
    assert kept.video_urls == (base + "a" * (MAX_URL - len(base)),)
    huge = _read_answer("vozo", {"status": "done", "video_url": base + "a" * 1_000_000})
    assert huge.video_urls == ()
    assert huge.problems[0].startswith("video_url: 'https://cdn.example/v.mp4?sig=aaaaaaaaaa'… is 1,000,030 characters")
    assert len(repr(huge)) < 5_000


def test_a_video_id_too_long_to_be_one_is_left_out_and_named() -> None:
    status = _read_answer("colossyan", {"status": "finished", "videoId": "v" * 1_000_000})
    assert status.video_id is None
    assert status.problems[0] == "videoId: expected an id, got 1,000,000 characters; left out"
    assert len(repr(status)) < 5_000


def test_a_download_error_quotes_a_video_id_cut(tmp_path: pathlib.Path) -> None:
    status = videojobs.JobStatus(
        vendor="colossyan", task_id="t", state=videojobs.State.SUCCEEDED, video_id="v" * 1_000_000
    )
    with (
        videojobs.Client(api_keys={"colossyan": "k"}, environ={}) as client,
        pytest.raises(videojobs.DownloadError) as caught,
    ):
        client.download(status, tmp_path)
    assert len(str(caught.value)) < 600
    assert "returns a video id (vvvv" in str(caught.value)


def test_max_response_bytes_is_the_callers_to_set() -> None:
    body = json.dumps({"task_id": "t", "status": "processing", "pad": "x" * 5000}).encode()
    with hostile.hostile(hostile.answer(body=body)) as url:
        small, _, _ = call("sync", url, max_response_bytes=4096)
        large, _, _ = call("sync", url, max_response_bytes=8192)
    assert isinstance(small, videojobs.MalformedResponseError)
    assert isinstance(large, videojobs.JobStatus)


@MODES
@pytest.mark.parametrize(("encoding", "words"), [("gzip", "does not decode"), ("br", "was not asked for")])
def test_a_body_in_the_wrong_encoding_is_malformed(mode: str, encoding: str, words: str) -> None:
    with hostile.hostile(hostile.claims(encoding)) as url:
        result, _, _ = call(mode, url)
    assert isinstance(result, videojobs.MalformedResponseError)
    assert words in str(result)
    assert result.status_code == 200


@MODES
def test_real_gzip_and_deflate_answers_are_read(mode: str) -> None:
    import zlib

    for encoding, wbits in (("gzip", 31), ("deflate", 15), ("deflate", -15)):
        comp = zlib.compressobj(6, zlib.DEFLATED, wbits)
        body = comp.compress(hostile.OK_BODY) + comp.flush()
        with hostile.hostile(hostile.answer(body=body, headers={"Content-Encoding": encoding})) as url:
            result, _, _ = call(mode, url)
        assert isinstance(result, videojobs.JobStatus), (encoding, wbits, result)


@MODES
@pytest.mark.parametrize(
    ("encoding", "tail", "words"),
    [
        ("gzip", "zeros", "the compressed answer ran past 2 times max_response_bytes"),
        ("gzip", "members", "the answer's gzip body has more than 64 members"),
        ("deflate", "zeros", "the compressed answer ran past 2 times max_response_bytes"),
    ],
    ids=["gzip", "members", "deflate"],
)
def test_an_endless_tail_after_a_compressed_answer_is_bounded(mode: str, encoding: str, tail: str, words: str) -> None:
    """zlib keeps what follows a compressed stream in ``unused_data``, copied whole at every
    chunk: an endless tail after a small gzip'd answer grew a call to 200 MB. The tail is now
    dropped (or read as gzip's next members) and the compressed bytes read are bounded."""
    with hostile.hostile(hostile.compressed_then_endless(encoding, tail)) as url:
        result, elapsed, peak = call(mode, url, request_timeout=10)
    assert isinstance(result, videojobs.MalformedResponseError), result
    assert words in str(result)
    assert result.raw is not None
    assert b"processing" in result.raw  # what was decoded, kept
    assert peak < MEMORY_BOUND
    assert elapsed < 10


@MODES
def test_gzip_members_are_read_in_turn_and_a_short_tail_after_them_is_dropped(mode: str) -> None:
    """RFC 1952: a gzip body is a series of members (an answer split across two was read as its
    first half, not JSON); bytes after a whole member that are no member are dropped, as urllib3
    and gzip(1) drop them."""
    import gzip

    half = len(hostile.OK_BODY) // 2
    members = gzip.compress(hostile.OK_BODY[:half]) + gzip.compress(hostile.OK_BODY[half:])
    for body in (members, members + b"\x00" * 5000, gzip.compress(hostile.OK_BODY) + b"trailing garbage"):
        with hostile.hostile(hostile.answer(body=body, headers={"Content-Encoding": "gzip"})) as url:
            result, _, _ = call(mode, url)
        assert isinstance(result, videojobs.JobStatus), result
        assert result.state is videojobs.State.RUNNING


@MODES
def test_a_reset_mid_body_is_a_network_error(mode: str) -> None:
    with hostile.hostile(hostile.reset_mid_body()) as url:
        result, _, _ = call(mode, url)
    assert isinstance(result, videojobs.NetworkError)


@MODES
def test_a_status_line_without_a_status_is_a_network_error_on_both_faces(mode: str) -> None:
    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\n{}")

    with hostile.hostile(scenario) as url:
        result, _, _ = call(mode, url, max_retries=0)
    assert isinstance(result, videojobs.NetworkError), result


@MODES
def test_an_interim_answer_given_as_the_final_one_is_a_network_error_on_both_faces(mode: str) -> None:
    """101 Switching Protocols to a status poll (the transports read 100 and 103 past themselves):
    the sync face's httpcore raised a NetworkError, the async face made it an APIError."""

    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")

    with hostile.hostile(scenario) as url:
        result, _, _ = call(mode, url, max_retries=0)
    assert isinstance(result, videojobs.NetworkError), result


def _statuses(mode: str, url: str, refs: list[str]) -> list[Any]:
    """The JobStatus or VideoJobsError of each of ``refs``, polled in turn on one client."""

    def one(get: Callable[[], Any]) -> Any:
        try:
            return get()
        except videojobs.VideoJobsError as exc:
            return exc

    if mode == "sync":
        with _client(url) as client:
            return [one(lambda ref=ref: client.status(ref)) for ref in refs]

    async def run() -> list[Any]:
        async with _aclient(url) as client:
            found = []
            for ref in refs:
                try:
                    found.append(await client.status(ref))
                except videojobs.VideoJobsError as exc:
                    found.append(exc)
            return found

    return asyncio.run(run())


@MODES
@pytest.mark.parametrize("status", [204, 304])
def test_a_body_sent_with_an_answer_http_gives_none_is_not_the_next_polls_answer(mode: str, status: int) -> None:
    """A 204 or 304 carrying a body anyway (here a whole answer saying the job is done): HTTP
    gives them none, so the body stayed on the kept-alive connection and the sync face read it as
    the next poll's answer, another job's video for a job still running."""
    done = json.dumps({"task_id": "t1", "status": "done", "video_url": "https://cdn.example/t1.mp4"}).encode()
    inner = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(done), done)

    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        if request.line.split()[1].endswith("/t1"):
            conn.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(inner), inner))
        else:
            hostile.answer()(request, conn)

    with hostile.hostile(scenario) as url:
        first, second = _statuses(mode, url, ["vozo:t1", "vozo:t2"])
    assert isinstance(first, videojobs.VideoJobsError), first
    assert isinstance(second, videojobs.JobStatus), second
    assert second.state is videojobs.State.RUNNING, second
    assert not second.has_video, second


@MODES
def test_a_repeated_content_encoding_is_read_whole_on_both_faces(mode: str) -> None:
    """``identity`` then ``gzip`` on two header lines: httpx joins them, aiohttp's ``get`` gave
    the first only, so the async face read the gzip bytes as the answer ("not UTF-8")."""
    body = gzip.compress(hostile.OK_BODY)

    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Encoding: identity\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
        conn.sendall(head % len(body) + body)

    with hostile.hostile(scenario) as url:
        result, _, _ = call(mode, url)
    assert isinstance(result, videojobs.JobStatus), result
    assert result.state is videojobs.State.RUNNING


@MODES
@pytest.mark.parametrize("depth", [100_000, 900])
def test_deep_json_is_malformed_or_read(mode: str, depth: int) -> None:
    body = b'{"task_id": "t", "status": "processing", "x": ' + b"[" * depth + b"]" * depth + b"}"
    with hostile.hostile(hostile.answer(body=body)) as url:
        result, _, _ = call(mode, url)
    if depth > 10_000:  # deeper than Python's parser goes: not an answer we can read
        assert isinstance(result, videojobs.MalformedResponseError)
    else:  # deep, but in a field nobody reads: the state is what matters
        assert isinstance(result, videojobs.JobStatus)
        assert result.vendor_state == "processing"


# --- degrade, don't drop --------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["1" + "0" * 400, "1" + "0" * 5000, "-1" + "0" * 5000, "1e999", "-1e999"], ids=len)
def test_numbers_too_large_for_a_float_cost_the_field_not_the_state(number: str) -> None:
    body = b'{"id": "v", "status": "processing", "progress": NUMBER, "created_at": NUMBER}'.replace(
        b"NUMBER", number.encode()
    )
    with sync_client(Recorder(httpx.Response(200, content=body))) as client:
        status = client.status("ezmodel:v")
    assert status.state is videojobs.State.RUNNING
    assert status.progress is None
    assert status.created_at is None
    assert any(p.startswith("progress:") for p in status.problems)
    assert any(p.startswith("created_at:") for p in status.problems)


# --- a vendor's words in an error's text --------------------------------------------------------------------

EVIL_WORDS = "\x1b]0;pwned\x07 bad\nvozo: forged line \u202e"


@MODES
def test_an_errors_text_shows_a_vendors_escape_codes_and_keeps_them_in_its_data(mode: str) -> None:
    """``str(e)`` goes to logs and terminals (a traceback prints it): a vendor's ESC sequence,
    newline or bidi override in its error message is shown, not acted on. ``message`` and
    ``to_dict()`` are data: exact."""
    body = json.dumps({"error": {"message": EVIL_WORDS, "code": "x\x1b[2J"}}).encode()
    with hostile.hostile(hostile.answer(400, body)) as url:
        error, _, _ = call(mode, url)
    assert isinstance(error, videojobs.APIError)
    text = str(error)
    assert text == "vozo: \\x1b]0;pwned\\x07 bad\\nvozo: forged line \\u202e (HTTP 400, code 'x\\x1b[2J')"
    assert "\x1b" not in repr(error)
    assert "\n" not in repr(error)
    assert "".join(traceback.format_exception_only(error)).count("\n") == 1  # one line, its own
    assert error.message == EVIL_WORDS
    assert error.to_dict()["message"] == EVIL_WORDS


def test_a_failed_jobs_error_shows_the_vendors_escape_codes() -> None:
    failed = videojobs.JobStatus(
        vendor="vozo", task_id="t", state=videojobs.State.FAILED, error=videojobs.JobError(message=EVIL_WORDS)
    )
    with pytest.raises(videojobs.JobFailedError) as caught:
        failed.raise_for_failure()
    assert str(caught.value) == "vozo: job t failed: \\x1b]0;pwned\\x07 bad\\nvozo: forged line \\u202e"
    assert caught.value.status.error is not None
    assert caught.value.status.error.message == EVIL_WORDS


# --- Retry-After abuse ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("999999999", 86400.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 86400.0),
        ("Tue, 01 Jan 10000 00:00:00 GMT", None),
        ("1e400", None),  # not delta-seconds (ASCII digits): what else float() reads is unreadable
        ("nan", None),
        ("-inf", None),
        ("1_000", None),
        ("\u0665", None),  # ARABIC-INDIC DIGIT FIVE: float() reads 5
        ("9" * 5000, 86400.0),
        ("1, 7", 1.0),  # a repeated header, as httpx joins it: the first, as aiohttp's get() gives it
        ("1.5, 7", 1.5),
    ],
)
def test_retry_after_is_parsed_safely_and_capped(header: str, expected: float | None) -> None:
    from videojobs._translate import parse_retry_after

    assert parse_retry_after(header) == expected


@MODES
def test_a_huge_retry_after_ends_the_call_at_once(mode: str) -> None:
    clock, seen = SimClock(), []
    with hostile.hostile(counting(hostile.answer(429, b"{}", {"Retry-After": "999999999"}), seen)) as url:
        result, _, _ = call(mode, url, max_retries=3, clock=clock)
    assert isinstance(result, videojobs.RateLimitError)
    assert result.retry_after == 86400.0
    assert clock.sleeps == []  # not a second waited for a pause longer than the call's time
    assert len(seen) == 1  # and no retry: the vendor asked for more time than the call has


@MODES
def test_a_retry_that_could_not_start_in_time_is_not_made(mode: str) -> None:
    """A retry whose wait leaves less than MIN_ATTEMPT of the call is not made: the call ends at
    once with the error that asked for it, not with a doomed attempt or a "no request slot"."""
    from videojobs._wait import MIN_ATTEMPT

    clock, seen = SimClock(), []
    budget = 1.0 + MIN_ATTEMPT / 2  # request_timeout * (max_retries + 1): a 1 s Retry-After fits, a send after it not
    with hostile.hostile(counting(hostile.answer(429, b"{}", {"Retry-After": "1"}), seen)) as url:
        result, _, _ = call(mode, url, max_retries=1, request_timeout=budget / 2, clock=clock)
    assert isinstance(result, videojobs.RateLimitError), result
    assert result.retry_after == 1.0
    assert clock.sleeps == []
    assert len(seen) == 1


def test_a_status_call_with_a_budget_under_min_attempt_still_sends() -> None:
    """MIN_ATTEMPT bounds retries and queued requests, not a call's first attempt: a call whose
    whole budget is shorter (request_timeout * (max_retries + 1)) still asks the vendor."""
    from videojobs._wait import MIN_ATTEMPT

    rec = Recorder(httpx.Response(200, json={"task_id": "t", "status": "processing"}))
    with (
        sync_client(rec, request_timeout=MIN_ATTEMPT * 0.9, max_retries=0) as client,
        contextlib.suppress(videojobs.NetworkError),  # a machine slower than the budget
    ):
        client.status("vozo:t")  # what matters: the request went
    assert len(rec.requests) == 1


def test_a_wait_sends_no_poll_it_could_not_send_in_time() -> None:
    """A poll due less than MIN_ATTEMPT before the wait's deadline is not started: the wait times
    out with its polls as they were, no failed poll is made up and on_poll_error is not called."""
    from videojobs._wait import MIN_ATTEMPT

    rec = Recorder(httpx.Response(200, json={"task_id": "t", "status": "processing"}))
    errors: list[Exception] = []
    timeout = 1.0
    policy = videojobs.FixedPolicy(timeout - MIN_ATTEMPT / 2)  # the second poll would fall inside the margin
    with sync_client(rec) as client, pytest.raises(videojobs.WaitTimeout) as info:
        client.wait("vozo:t", timeout=timeout, policy=policy, on_poll_error=lambda exc, n: errors.append(exc))
    assert len(rec.requests) == 1
    assert errors == []
    assert info.value.__cause__ is None


def test_a_retry_never_sent_ends_the_call_with_the_error_it_was_for() -> None:
    """The plan of a status call, driven by hand as its drivers do: a refused connection, then
    its retry left in line until the call's time ran out (NotSent, from a wait_all sender or a
    vendor's connection slots). The call ends with the refusal, not with "no request slot"."""
    from videojobs._calls import Send, Sleep, status_plan
    from videojobs._wait import NotSent

    clock = SimClock()
    with sync_client(Recorder(), clock=clock, max_retries=1) as client:
        core = client.vendor("vozo").core
        plan = status_plan(core, "t", until=clock.now() + 10)
        assert isinstance(next(plan), Send)
        refused = videojobs.NetworkError("could not reach the vendor: ConnectError: refused", vendor="vozo")
        backoff = plan.throw(refused)
        assert isinstance(backoff, Sleep)
        clock.sleep(backoff.seconds)
        assert isinstance(plan.send(None), Send)
        with pytest.raises(videojobs.NetworkError) as info:
            plan.throw(NotSent("no request slot came free before the call's time ran out", vendor="vozo"))
    assert info.value is refused


def test_a_retry_the_pace_leaves_no_time_for_ends_the_call_with_the_error_it_was_for() -> None:
    """A 500, then its retry's slot is past the call's end: another call's 429 paused the vendor
    meanwhile. The call ended with "the vendor is throttling" (a RateLimitError with no status
    code, inviting a retry in 0.6 s), though the vendor had answered 500: now with the 500."""
    from videojobs._calls import Send, Sleep, status_plan

    clock = SimClock()
    with sync_client(Recorder(), clock=clock, max_retries=2) as client:
        core = client.vendor("vozo").core
        plan = status_plan(core, "t", until=clock.now() + 10)
        assert isinstance(next(plan), Send)
        busy = videojobs.ServerError("busy (HTTP 500)", vendor="vozo", status_code=500)
        backoff = plan.throw(busy)
        assert isinstance(backoff, Sleep)
        elsewhere = videojobs.RateLimitError("slow down", vendor="vozo", status_code=429, retry_after=60.0)
        core.rate.observe(clock.now(), elsewhere, clock.now())  # another call's throttle: a 60 s pause
        clock.sleep(backoff.seconds)
        with pytest.raises(videojobs.ServerError) as info:
            plan.send(None)
    assert info.value is busy


def test_a_huge_retry_after_never_outlives_a_wait() -> None:
    clock = SimClock()
    with (
        hostile.hostile(hostile.answer(429, b"{}", {"Retry-After": "999999999"})) as url,
        _client(url, max_retries=3, clock=clock) as client,
    ):
        start = clock.now()
        with pytest.raises(videojobs.WaitTimeout) as info:
            client.wait("vozo:t", timeout=1.5)
    assert clock.now() - start <= 1.5  # the wait ended at its deadline on its own clock
    assert all(pause <= 1.5 for pause in clock.sleeps), clock.sleeps  # never 86,400 s
    assert isinstance(info.value.__cause__, videojobs.RateLimitError)


# --- keys -------------------------------------------------------------------------------------------------------


def _assert_no_key(*texts: object) -> None:
    for text in texts:
        assert KEY not in str(text), text
        assert KEY.replace("/", "\\/") not in str(text), text


@MODES
def test_an_echoed_key_is_scrubbed_from_the_status(mode: str) -> None:
    with hostile.hostile(hostile.echo_authorization(200)) as url:
        result, _, _ = call(mode, url)
    assert isinstance(result, videojobs.JobStatus), result
    _assert_no_key(repr(result), result.to_dict(), result.raw.to_dict(), result.video_url, result.error)
    assert result.task_id == "t"  # ours, not the vendor's echo


@MODES
def test_an_echoed_key_is_scrubbed_from_errors_tracebacks_and_logs(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), hostile.hostile(hostile.echo_authorization(400)) as url:
        result, _, _ = call(mode, url)
    assert isinstance(result, videojobs.APIError)
    assert "[REDACTED]" in str(result)
    formatted = "".join(traceback.format_exception(result))
    _assert_no_key(str(result), repr(result), result.raw, result.message, formatted, caplog.text)


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("sk-café", "non-ASCII character (U+00E9)"),
        ("sk-\u200babc", "non-ASCII character (U+200B)"),
        ("\ufeffsk-abc", "non-ASCII character (U+FEFF)"),
        ("sk-abc ", "whitespace"),
        ("sk-\tabc", "whitespace"),
        ("sk-abc\n", "whitespace"),
        ("sk-\x07abc", "a control character"),
    ],
)
def test_an_unusable_key_is_refused_before_any_request(key: str, what: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(httpx.Response(200, content=hostile.OK_BODY))
    monkeypatch.setenv("VOZO_API_KEY", key)
    with sync_client(rec, api_keys={}) as client, pytest.raises(videojobs.ConfigurationError) as info:
        client.status("vozo:t")
    assert "VOZO_API_KEY" in str(info.value)
    assert what in str(info.value)
    assert key.strip() not in str(info.value)
    assert rec.requests == []
    with sync_client(rec, api_keys={"vozo": key}) as client, pytest.raises(videojobs.ConfigurationError) as info:
        client.status("vozo:t")
    assert "api_keys['vozo']" in str(info.value)


# --- one client, many threads, many loops ------------------------------------------------------------------


def test_a_fresh_client_creates_one_handle_per_vendor_under_threads() -> None:
    rec = Recorder(httpx.Response(200, content=hostile.OK_BODY))
    barrier = threading.Barrier(16)
    seen: list[Any] = []
    with sync_client(rec) as client:

        def worker() -> None:
            barrier.wait()
            seen.append((client.vendor("vozo"), client.status("vozo:t").state))

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(seen) == 16
    assert len({id(handle) for handle, _ in seen}) == 1
    assert len({id(handle.typed) for handle, _ in seen}) == 1


def test_an_async_client_moves_to_a_new_loop_once_the_old_one_is_closed() -> None:
    with hostile.hostile(hostile.answer()) as url:
        client = _aclient(url)
        assert asyncio.run(client.status("vozo:t")).vendor_state == "processing"
        assert asyncio.run(client.status("vozo:t")).vendor_state == "processing"  # a second asyncio.run
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(client.status("vozo:t"))
            with pytest.raises(videojobs.UsageError, match="another event loop that is still open"):
                asyncio.run(client.status("vozo:t"))
        finally:
            loop.run_until_complete(client.aclose())
            loop.close()


def test_an_async_client_closed_from_another_threads_loop_closes_every_vendor_on_its_own_loop() -> None:
    """A service's shutdown hook awaited aclose() on its own loop while the client's calls ran on a
    worker thread's: httpx raised a bare RuntimeError at the first vendor and the others were
    never closed. Each is closed on the loop it was made on; a call after it says it is closed."""
    with hostile.hostile(hostile.answer()) as url:
        client = videojobs.AsyncClient(
            api_keys={"vozo": KEY, "ezmodel": KEY}, base_urls={"vozo": url, "ezmodel": url}, max_retries=0
        )
        ready, done = threading.Event(), threading.Event()
        after: list[BaseException | None] = []

        async def worker() -> None:  # the worker thread's loop: both vendors' connections are made here
            await client.status("vozo:t")
            await client.status("ezmodel:t")
            ready.set()
            await asyncio.to_thread(done.wait, 30)
            try:
                await client.status("vozo:t")
                after.append(None)
            except videojobs.UsageError as exc:
                after.append(exc)

        thread = threading.Thread(target=asyncio.run, args=(worker(),))
        thread.start()
        assert ready.wait(30)
        handles = [client.vendor("vozo"), client.vendor("ezmodel")]
        asyncio.run(client.aclose())  # this thread's loop
        done.set()
        thread.join(30)
    assert all(handle.typed.get_async_httpx_client().is_closed for handle in handles)
    assert len(after) == 1
    assert isinstance(after[0], videojobs.UsageError)
    assert "closed" in str(after[0])


def test_an_async_client_whose_other_loop_cannot_take_the_close_says_so_and_closes_the_rest() -> None:
    """aclose() on one loop, a vendor's connections on another: open but not running (a loop
    driven by run_until_complete between two calls), or running on a thread that is waiting for
    this one (a sync wrapper joining the closer). A UsageError naming the loop, the other vendors
    closed first; it waited for ever on the blocked loop."""
    with hostile.hostile(hostile.answer()) as url:
        client = videojobs.AsyncClient(
            api_keys={"vozo": KEY, "ezmodel": KEY},
            base_urls={"vozo": url, "ezmodel": url},
            max_retries=0,
            request_timeout=0.5,  # the bound on the blocked loop's turn
        )
        idle = asyncio.new_event_loop()
        try:
            idle.run_until_complete(client.status("vozo:t"))  # vozo's connections are the idle loop's
            vozo = client.vendor("vozo")

            async def close_here() -> None:
                await client.status("ezmodel:t")  # ezmodel's are this loop's
                with pytest.raises(videojobs.UsageError, match="another event loop that is still open"):
                    await client.aclose()

            asyncio.run(close_here())
            with pytest.raises(videojobs.UsageError, match="closed"):
                idle.run_until_complete(client.status("vozo:t"))
        finally:
            idle.run_until_complete(vozo.aclose())  # on its own loop, where it can be
            idle.close()

        blocked_client = videojobs.AsyncClient(
            api_keys={"vozo": KEY}, base_urls={"vozo": url}, max_retries=0, request_timeout=0.5
        )
        outcome: list[BaseException | None] = []

        def closer() -> None:  # a sync shutdown helper: asyncio.run in a thread of its own
            try:
                asyncio.run(blocked_client.aclose())
                outcome.append(None)
            except BaseException as exc:  # the outcome is asserted below
                outcome.append(exc)

        async def worker() -> None:
            await blocked_client.status("vozo:t")
            thread = threading.Thread(target=closer)
            thread.start()
            thread.join(hostile.MAX_SECONDS)  # this loop blocks for the closer, as a sync wrapper does

        asyncio.run(worker())
    assert len(outcome) == 1
    assert isinstance(outcome[0], videojobs.UsageError)
    assert "did not close them (not within 0.5 s)" in str(outcome[0])


def test_a_closed_client_and_its_handles_refuse_typed() -> None:
    client = sync_client(Recorder(httpx.Response(200, content=hostile.OK_BODY)))
    handle = client.vendor("vozo")
    client.close()
    with pytest.raises(videojobs.UsageError, match="closed"):
        handle.status("t")
    with pytest.raises(videojobs.UsageError, match="closed"):
        client.status("vozo:t")


# --- a wait's memory does not grow with its length ------------------------------------------------------------


def test_a_long_wait_keeps_constant_memory() -> None:
    answers = iter(range(10**9))

    def running(request: httpx.Request) -> httpx.Response:
        percent = next(answers) % 90  # progress moves, so every answer is a change
        return httpx.Response(200, json={"id": "v", "status": "processing", "progress": percent})

    polls, most_samples, memory_at = [0], [0], {}

    class Recording:  # keeps two numbers, not one entry per poll
        def next_delay(self, history: videojobs.History) -> float:
            polls[0] = history.polls
            most_samples[0] = max(most_samples[0], len(history.samples))
            if history.polls == 200:  # past the samples' cap (64): from here on nothing may grow
                memory_at[200] = tracemalloc.get_traced_memory()[0]
            return 1.0

    clock = SimClock()
    transport = httpx.MockTransport(running)  # not a Recorder: it would keep every request
    with videojobs.Client(api_keys={"ezmodel": "k"}, transport=transport, clock=clock) as client:
        tracemalloc.start()
        with pytest.raises(videojobs.WaitTimeout):
            client.wait("ezmodel:v", timeout=1200, policy=Recording())
        used = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    assert polls[0] >= 1199  # about 1,200 polls
    assert most_samples[0] <= 64
    # 1,000 more polls kept less than 500 bytes each (what a wait holds swings by about 150 KB as
    # objects come and go; 3,000 polls within 2 MB allowed about as much)
    assert used - memory_at[200] < 512 * 1024, (memory_at, used)
    assert used < 2 * 1024 * 1024


# --- exactly once, whatever a job's wait raises --------------------------------------------------------------


@contextmanager
def _sandbox_client(**kwargs: Any) -> Iterator[videojobs.AsyncClient]:
    from videojobs.sandbox import Sandbox

    clock = SimClock()
    sb = Sandbox(clock=clock)
    yield videojobs.AsyncClient(
        api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.transport(), clock=clock, **kwargs
    )


def _cancelled_future_read() -> None:
    """What a callback does that reads a future cancelled elsewhere: asyncio's CancelledError (a
    BaseException) out of a plain call, a stray one, not this task's own cancellation."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.cancel()
    future.result()


@pytest.mark.anyio
@pytest.mark.parametrize("which", ["on_update", "on_poll_error"])
@pytest.mark.parametrize("error", [KeyError, asyncio.CancelledError])
async def test_a_raising_callback_ends_only_its_own_jobs_wait(which: str, error: type[BaseException]) -> None:
    refs = [f"vozo:cb{i}-q1-d20" for i in range(6)] + ["duomi:boom-q1-d20-e502x1"]

    def callback(item: Any, *_: Any) -> None:
        if item.vendor == "duomi":
            raise KeyError("a bug in the caller's callback") if error is KeyError else _cancelled_future_read()

    # the 502 is a failed poll, not a retry within one; the outer guard (real seconds, for a run of
    # milliseconds on the simulated clock) turns a wait that never ends into a failure, not a hang
    with _sandbox_client(max_retries=0) as client:
        async with asyncio.timeout(60):
            results = [r async for r in client.wait_all(refs, timeout=600, **{which: callback})]  # type: ignore[arg-type]
    assert sorted(r.ref for r in results) == sorted(refs)  # every job, exactly once, within its timeout
    failed = [r for r in results if isinstance(r, videojobs.VideoJobsError)]
    assert [(type(e), e.ref) for e in failed] == [(videojobs.CallbackError, "duomi:boom-q1-d20-e502x1")]
    assert f"{which} raised {error.__name__}" in failed[0].message
    assert isinstance(failed[0].__cause__, error)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "bad",
    [lambda h: 1 / 0, lambda h: float("nan"), lambda h: -1.0, lambda h: "soon", lambda h: "0.5", lambda h: 10**400],
)
async def test_a_broken_policy_ends_each_wait_with_a_callback_error(bad: Callable[[Any], Any]) -> None:
    class Broken:
        def next_delay(self, history: videojobs.History) -> float:
            return bad(history)  # type: ignore[no-any-return]

    refs = [f"colossyan:p{i}-q5-d20" for i in range(3)]
    with _sandbox_client() as client:
        results = [r async for r in client.wait_all(refs, timeout=60, policy=Broken())]
    assert sorted(r.ref for r in results) == sorted(refs)
    assert all(isinstance(r, videojobs.CallbackError) for r in results)


@pytest.mark.anyio
@pytest.mark.parametrize("seconds", [decimal.Decimal("0.5"), fractions.Fraction(1, 2), 1])
async def test_a_policy_may_return_any_real_number(seconds: object) -> None:
    """What float() reads (Decimal, Fraction, numpy's scalars) is seconds; a string is not (above)."""

    class Exact:
        def next_delay(self, history: videojobs.History) -> object:
            return seconds

    refs = [f"colossyan:n{i}-q1-d5" for i in range(3)]
    with _sandbox_client() as client:
        results = [r async for r in client.wait_all(refs, timeout=600, policy=Exact())]  # type: ignore[arg-type]
    assert all(isinstance(r, videojobs.JobStatus) and r.state is videojobs.State.SUCCEEDED for r in results), results


def test_a_raising_callback_in_a_sync_wait_is_a_callback_error() -> None:
    with sync_client(Recorder(httpx.Response(200, content=hostile.OK_BODY))) as client:

        def on_update(status: videojobs.JobStatus) -> None:
            raise RuntimeError("oops")

        with pytest.raises(videojobs.CallbackError, match="on_update raised RuntimeError") as info:
            client.wait("vozo:t", timeout=60, on_update=on_update)
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.anyio
async def test_a_maintenance_page_or_garbage_mid_wait_is_ridden_out() -> None:
    with _sandbox_client() as client:
        for ref in ("vozo:m1-ehtmlx2-q1-d10", "duomi:m2-emalformedx3-q1-d10", "colossyan:m3-e502x2-q1-d10"):
            final = await client.wait(ref, timeout=600)
            assert final.state is videojobs.State.SUCCEEDED, ref


def test_a_proxy_from_the_environment_is_still_honoured_by_the_sync_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx drops HTTP(S)_PROXY when given a transport: the deadline transport steps aside for it."""
    from videojobs._deadline import DeadlineBackend

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    def backend() -> object:
        client = videojobs.Client(api_keys={"vozo": "k"})
        http = client.vendor("vozo").typed.get_httpx_client()
        transport = http._transport_for_url(httpx.URL("https://api.vozo.ai/v1/x"))
        client.close()
        pool = getattr(transport, "_pool", None)
        return getattr(pool, "_network_backend", None)

    assert isinstance(backend(), DeadlineBackend)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert not isinstance(backend(), DeadlineBackend)


def test_the_async_client_on_its_default_aiohttp_transport_honours_a_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY reaches the proxy (which sees the absolute URL), with the key, and the answer maps."""
    seen: list[hostile.Request] = []

    def proxy(request: hostile.Request, conn: Any) -> None:
        seen.append(request)
        hostile.answer()(request, conn)

    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with hostile.hostile(proxy) as url:
        monkeypatch.setenv("HTTP_PROXY", url)
        result, _, _ = call("async", "http://vozo.videojobs.invalid", request_timeout=5.0)
    assert isinstance(result, videojobs.JobStatus), result
    assert result.state is videojobs.State.RUNNING
    assert seen[0].line.startswith("GET http://vozo.videojobs.invalid/")
    assert seen[0].headers["authorization"].endswith(KEY)


@MODES
def test_a_proxy_s_user_and_password_from_the_environment_reach_it_on_both_faces(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx.Proxy keeps a proxy URL's user and password apart from its URL: the async face passed
    aiohttp the URL alone, sent no Proxy-Authorization, and a proxy that wants one answered 407
    to every poll (the CLI's and the fleet's face); the blocking face sent it."""
    import base64

    wanted = "Basic " + base64.b64encode(b"proxy-user:pw s3cret").decode()

    def proxy(request: hostile.Request, conn: Any) -> None:
        if request.headers.get("proxy-authorization") != wanted:
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            return
        hostile.answer()(request, conn)

    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with hostile.hostile(proxy) as url:
        monkeypatch.setenv("HTTP_PROXY", url.replace("http://", "http://proxy-user:pw%20s3cret@"))
        result, _, _ = call(mode, "http://vozo.videojobs.invalid", request_timeout=5.0)
    assert isinstance(result, videojobs.JobStatus), result
    assert result.state is videojobs.State.RUNNING


@MODES
@pytest.mark.parametrize("key", ["sk-proxytest-0123456789", "k1"], ids=["key", "short-key"])
def test_a_proxy_quoting_the_credential_it_was_sent_shows_it_nowhere(
    mode: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy that answers 407 with the Proxy-Authorization it got in its reason phrase and a
    header: the credential (its Basic value, the password) was in the error's message on both
    faces and the CLI's output; with a key too short to scrub, aiohttp's request_info kept it."""
    import base64
    import traceback

    basic = "Basic " + base64.b64encode(b"proxy-user:hunter2-proxy/pw").decode()

    def proxy(request: hostile.Request, conn: Any) -> None:
        said = request.headers.get("proxy-authorization", "none")
        conn.sendall(f"HTTP/1.1 407 Denied {said}\r\nX-Echo: {said}\r\nContent-Length: 0\r\n\r\n".encode())

    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with hostile.hostile(proxy) as url:
        monkeypatch.setenv("HTTPS_PROXY", url.replace("http://", "http://proxy-user:hunter2-proxy%2Fpw@"))
        kwargs: dict[str, Any] = {"api_keys": {"vozo": key}, "base_urls": {"vozo": "https://vozo.videojobs.invalid"}}
        kwargs |= {"request_timeout": 5.0, "max_retries": 0}
        result: Any
        try:
            if mode == "sync":
                with videojobs.Client(**kwargs) as client:
                    result = client.status("vozo:t")
            else:

                async def run() -> Any:
                    async with videojobs.AsyncClient(**kwargs) as client:
                        return await client.status("vozo:t")

                result = asyncio.run(run())
        except videojobs.VideoJobsError as exc:
            result = exc
    assert isinstance(result, videojobs.VideoJobsError), result
    shown = "".join(traceback.format_exception(result)) + repr(result) + repr(vars(result))
    for cause in (result.__cause__, result.__context__):
        if cause is not None:
            shown += repr(getattr(cause, "request_info", "")) + repr(cause.args)
    assert basic.split()[1] not in shown
    assert "hunter2-proxy" not in shown


@pytest.mark.parametrize("task_id", ["plain-1", "a/b", "a b", "ü-ß", "%2F..%2F", "x?y=1#z", "..x", "a;b,c=d"])
def test_the_async_fast_lane_sends_the_request_the_sync_client_sends(task_id: str) -> None:
    """The aiohttp lane builds the URL itself: byte for byte what httpx sends, whatever the id."""
    lines: dict[str, list[str]] = {"sync": [], "async": []}
    for mode, seen in lines.items():

        def record(request: hostile.Request, conn: Any, seen: list[str] = seen) -> None:
            seen.append(request.line)
            hostile.answer()(request, conn)

        with hostile.hostile(record) as url:
            result, _, _ = call(mode, f"{url}/base/path", ref=f"vozo:{task_id}", request_timeout=5.0)
        assert isinstance(result, videojobs.JobStatus), result
    assert lines["sync"] == lines["async"]
    assert lines["sync"][0].startswith("GET /base/path/v1/video_generation/")


def test_downloads_cut_short_in_their_tls_handshake_leave_no_socket_open(tmp_path: pathlib.Path) -> None:
    """A file host that takes the connection and never answers the TLS handshake: each download
    ends at its request_timeout, and the errors the caller keeps hold no socket (httpcore leaves
    a connection cancelled mid-handshake unclosed; the error's tracebacks held it)."""
    import gc
    import os

    def open_fds() -> int:
        """This process's sockets connected to the file host's port (the host's own ends, which
        live in this process too, are not counted): from /proc/net/tcp and /proc/self/fd."""
        port = int(url.rsplit(":", 1)[1])
        to_host = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if int(fields[2].rsplit(":", 1)[1], 16) == port:
                        to_host.add(f"socket:[{fields[9]}]")
        links = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
        return sum(link in to_host for link in links)

    with hostile.hostile(hostile.silent()) as url:
        https = url.replace("http://", "https://")
        jobs = [
            videojobs.JobStatus(vendor="vozo", task_id=f"t{i}", state=videojobs.State.SUCCEEDED,
                                video_urls=[f"{https}/v{i}.mp4"])
            for i in range(16)
        ]  # fmt: skip

        async def run() -> list[Any]:
            async with _aclient(url, request_timeout=0.3) as client:
                return [r async for r in client.download_all(jobs, tmp_path, max_downloads=16)]

        asyncio.run(run())  # warm: the TLS context, the loop's own descriptors
        gc.collect()
        before = open_fds()
        results = asyncio.run(run())
        gc.collect()
        held = open_fds() - before
    assert all(isinstance(r, videojobs.NetworkError) for r in results), results
    assert before == 0
    assert held == 0, f"{held} sockets held by {len(results)} errors"


HALF_AN_ANSWER_ENDED_BY_ITS_CONNECTION = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + hostile.OK_BODY[:20]
)
"""An answer without Content-Length ends when its connection does (HTTP/1.1 allows it): held here."""


def _all_said_closed(ended: list[Any]) -> None:
    """Each call ended in the UsageError that says its client was closed under it, naming the vendor."""
    for outcome in ended:
        assert isinstance(outcome, videojobs.UsageError), outcome
        assert "was closed while the call was under way" in str(outcome)
        assert outcome.vendor == "vozo"


def _silent_telling(arrived: threading.Event) -> hostile.Scenario:
    """A vendor that never answers, and sets ``arrived`` as a request comes."""
    silent = hostile.silent()

    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        arrived.set()
        silent(request, conn)

    return scenario


@pytest.mark.parametrize(
    "answer", [b"", HALF_AN_ANSWER_ENDED_BY_ITS_CONNECTION], ids=["no-answer", "half-an-answer-ended-by-its-connection"]
)
def test_calls_under_way_when_another_thread_closes_the_client_end_saying_so(answer: bytes) -> None:
    """It ended at its request_timeout with "could not reach the vendor: ReadError: Bad file
    descriptor": the vendor was blamed for the client's own close. And it ended only then (a
    thread blocked reading a socket is not woken by its close), where the async face's ends at
    once: here a request_timeout of ten minutes, six calls ending when the client is closed. An
    answer without Content-Length ends when its connection does (HTTP/1.1 allows it): the close's
    shutdown read as that end, and the half-read JSON blamed the vendor (a MalformedResponseError),
    or a call whose connection another thread's call closed at the close waited on (a close does
    not wake a reader)."""
    arrived, release = threading.Semaphore(0), threading.Event()
    with hostile.hostile(hostile.holding(answer, arrived, release)) as url:
        client = videojobs.Client(api_keys={"vozo": KEY}, base_urls={"vozo": url}, request_timeout=600, max_retries=0)
        calls = [functools.partial(client.status, f"vozo:t{n}") for n in range(6)]
        try:
            ended = hostile.closed_mid_calls(client, calls, arrived)
        finally:
            release.set()
    _all_said_closed(ended)


def test_a_tls_handshake_under_way_ends_when_the_client_closes() -> None:
    """A vendor that takes the connection and never answers the TLS handshake: the close shut down
    the plain stream's socket, which the handshake had already detached (a file descriptor of -1),
    and the call ran to its request_timeout. Its handshake is shut down as a read is."""
    arrived, release = threading.Semaphore(0), threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def vendor() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(hostile.MAX_SECONDS)
                conn.recv(5)  # the start of the client's hello: it is in its handshake, never answered
                arrived.release()
                release.wait(6 * hostile.CLOSE_GUARD)

        host = threading.Thread(target=vendor, daemon=True)
        host.start()
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        client = videojobs.Client(api_keys={"vozo": KEY}, base_urls={"vozo": url}, request_timeout=600, max_retries=0)
        try:
            (ended,) = hostile.closed_mid_calls(client, [lambda: client.status("vozo:t")], arrived)
        finally:
            release.set()
            host.join(10)
    assert isinstance(ended, videojobs.UsageError), ended
    assert "was closed while the call was under way" in str(ended)


def test_a_connection_made_as_the_client_closes_is_shut_down_as_it_comes() -> None:
    """close() shuts down the sockets open at that moment; a request whose connect was under way
    (a slow DNS lookup or handshake) got a socket after it, never shut down, and waited out its
    request_timeout on a vendor that does not answer."""
    from videojobs._deadline import DeadlineBackend

    backend = DeadlineBackend()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        backend.live.shut_down()  # the client's close, before the connect ends
        stream = backend.connect_tcp("127.0.0.1", listener.getsockname()[1], timeout=5)
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(hostile.MAX_SECONDS)  # a guard: an open connection would wait here
            assert peer.recv(1) == b""  # the client's end was shut down as it came
        stream.close()


def test_a_child_closing_a_handle_kept_from_before_the_fork_leaves_the_parents_call_alone() -> None:
    """A shutdown, unlike a close, acts on the socket itself, which a forked child shares with its
    parent: a child closing a vendor() handle kept from before the fork (as the README asks it to
    replace them) ended the parent's request under way with "Server disconnected"."""
    import os

    arrived, child_gone = threading.Event(), threading.Event()

    def vendor(request: hostile.Request, conn: socket.socket) -> None:  # answers once the child is gone
        arrived.set()
        child_gone.wait(hostile.MAX_SECONDS)
        hostile.answer()(request, conn)

    with hostile.hostile(vendor) as url:
        client = videojobs.Client(api_keys={"vozo": KEY}, base_urls={"vozo": url}, max_retries=0)
        handle = client.vendor("vozo")
        seen: list[Any] = []
        caller = threading.Thread(target=lambda: seen.append(_outcome(client, "vozo:t")))
        caller.start()
        assert arrived.wait(hostile.MAX_SECONDS)
        pid = os.fork()
        if pid == 0:  # the child: close the handle, then exit at once (no pytest teardown here)
            code = 0
            try:
                handle.close()
            except BaseException:  # anything at all is the child's failure
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        child_gone.set()
        caller.join(hostile.MAX_SECONDS)
        client.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert seen == [videojobs.State.RUNNING]


def _outcome(client: videojobs.Client, ref: str) -> Any:
    """The job's state, or the error the call ended with."""
    try:
        return client.status(ref).state
    except videojobs.VideoJobsError as exc:
        return exc


def test_a_client_used_across_a_fork_opens_its_own_connections_in_the_child() -> None:
    """A Client made before os.fork() (a preloaded gunicorn app, multiprocessing) handed the child
    the parent's pooled sockets: asking at once, each read the other's answer (42 of 80 trials
    gave a job another job's status). The child's request now comes on a connection of its own."""
    import os

    peers: list[tuple[str, int]] = []

    def record(request: hostile.Request, conn: socket.socket) -> None:
        peers.append(conn.getpeername())
        hostile.answer()(request, conn)

    with hostile.hostile(record) as url:
        client = videojobs.Client(api_keys={"vozo": KEY}, base_urls={"vozo": url}, max_retries=0)
        assert client.status("vozo:parent").state is videojobs.State.RUNNING  # a connection is pooled now
        pid = os.fork()
        if pid == 0:  # the child: status, then exit at once (no pytest teardown in this process)
            code = 0
            try:
                client.status("vozo:child")
            except BaseException:  # anything at all is the child's failure
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        client.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(peers) == 2
    assert peers[0] != peers[1]  # the child's own connection, not the parent's pooled one


@pytest.mark.parametrize("where", ["the log scrubber", "the vendor registry"])
def test_a_child_forked_while_another_thread_opens_a_client_does_not_wait_for_ever(where: str) -> None:
    """Another thread was adding a client's key to the log scrubber, or reading the vendors' entry
    points (its lock held), at the moment of fork(): in the child, nothing ever let that lock go,
    and the child's first client waited for it for ever, past every deadline. The child makes its own."""

    from videojobs import _registry
    from videojobs._scrub import LOG_SCRUBBER

    lock = LOG_SCRUBBER._lock if where == "the log scrubber" else _registry._lock
    with hostile.hostile(hostile.answer()) as url:

        def child() -> None:  # one call bounded by a second, and the registry
            videojobs.Client(api_keys={"vozo": KEY}, base_urls={"vozo": url}, max_retries=0).status("vozo:t")
            videojobs.register_vendor("forked", "forked_vendor:Adapter")  # takes the registry's lock

        assert _forked_while_held(lock, child) == 0  # not -SIGALRM: it did not hang


def _forked_while_held(lock: Any, child: Callable[[], None]) -> int:
    """Fork while another thread holds ``lock`` (it lets go in the parent at once): ``child()``
    runs in the child under a 20 s alarm, the hang's witness. The child's exit code: 0 when
    ``child`` returned, 1 when it raised anything at all, -SIGALRM when it hung."""
    import os
    import signal

    held, release = threading.Event(), threading.Event()

    def holding() -> None:  # stands for a thread inside the lock's section at the moment of fork()
        with lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=holding, daemon=True)
    holder.start()
    assert held.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: no pytest teardown in this process
        signal.alarm(20)
        code = 0
        try:
            child()
        except BaseException:  # anything at all is the child's failure
            code = 1
        os._exit(code)
    release.set()
    _, status = os.waitpid(pid, 0)
    holder.join(10)
    return os.waitstatus_to_exitcode(status)


def test_a_child_forked_while_a_wait_all_registers_with_the_close_can_still_close() -> None:
    """A thread of the parent was registering a wait_all with the client's close (its lock held)
    at the moment of fork(): the child's close() waited for that lock for ever. The child's client
    has a close of its own."""

    client = videojobs.Client(api_keys={"vozo": KEY}, base_urls={"vozo": "http://127.0.0.1:9"}, max_retries=0)

    def child() -> None:
        client.close()
        with pytest.raises(videojobs.UsageError):
            client.status("vozo:t")

    # the lock stands for a thread inside Stop.tell (every wait_all's start) at the fork
    assert _forked_while_held(client._stop._lock, child) == 0  # not -SIGALRM: it did not hang
    client.close()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "answer", [b"", HALF_AN_ANSWER_ENDED_BY_ITS_CONNECTION], ids=["no-answer", "half-an-answer-ended-by-its-connection"]
)
@pytest.mark.parametrize("transport", ["default", "httpx"])
async def test_calls_under_way_when_another_task_closes_the_async_client_end_saying_so(
    answer: bytes, transport: str
) -> None:
    """The async face's twin of the blocking one's: a last attempt ended with aiohttp's
    "Connector is closed" as a NetworkError, the vendor blamed for the client's own close; an
    answer without Content-Length cut by the close was read whole (aiohttp, and httpx on a
    transport of the caller's, take the close as its end) and blamed the vendor as malformed."""
    arrived, release = threading.Semaphore(0), threading.Event()
    with hostile.hostile(hostile.holding(answer, arrived, release)) as url:
        client = videojobs.AsyncClient(
            api_keys={"vozo": KEY},
            base_urls={"vozo": url},
            request_timeout=600,
            max_retries=0,
            transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
        )
        try:
            calls = [asyncio.ensure_future(client.status(f"vozo:t{n}")) for n in range(6)]
            for _ in calls:
                assert await asyncio.to_thread(arrived.acquire, timeout=hostile.MAX_SECONDS)
            await client.aclose()
            async with asyncio.timeout(hostile.CLOSE_GUARD):  # a guard: each ends at once
                ended = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            release.set()
    _all_said_closed(ended)
