"""The sync status exchange's lane (``_deadline.Lane``) sends the request httpx would send and
keeps what ``httpx.Client.send`` does besides sending; it steps aside (the exchange takes httpx's
path) for whatever it was not worked out for."""

from __future__ import annotations

import functools
import logging
import socket
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import videojobs
from tests import hostile
from tests.conftest import KEYS
from videojobs._base import check_task_id
from videojobs._deadline import DeadlineTransport, Lane
from videojobs._exceptions import InvalidReferenceError
from videojobs._exchange import ACCEPT_ENCODING
from videojobs._registry import adapter_class

VENDORS = videojobs.known_vendors()
BASES = ["http://127.0.0.1:8123", "http://127.0.0.1:8123/", "https://api.example.com/a/b", "http://[::1]:9/p%20q/"]
EXTENSIONS: dict[str, Any] = {"timeout": {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}}

DETERMINISTIC = settings(derandomize=True, max_examples=200, deadline=None, database=None)


@functools.cache  # one client per vendor and base URL (each makes an SSL context: tens of ms)
def _client(slug: str, base: str) -> videojobs.Client:
    return videojobs.Client(api_keys={slug: KEYS[slug]}, base_urls={slug: base})


def _fresh(slug: str = "vozo", base: str = BASES[0]) -> tuple[httpx.Client, Lane, dict[str, Any]]:
    handle = videojobs.Client(api_keys={slug: KEYS[slug]}, base_urls={slug: base}).vendor(slug)
    http = handle.typed.get_httpx_client()
    lane = handle._lane
    assert lane is not None
    return http, lane, adapter_class(slug).endpoint.build_request_kwargs("t-1")


def _as_sent(http: httpx.Client, kwargs: dict[str, Any]) -> tuple[bytes, bytes, bytes, int | None, bytes, Any]:
    """What DeadlineTransport hands httpcore for httpx's own request (see its handle_request)."""
    request = http.build_request(**kwargs, headers={"Accept-Encoding": ACCEPT_ENCODING}, extensions=EXTENSIONS)
    url = request.url
    return request.method.encode(), url.raw_scheme, url.raw_host, url.port, url.raw_path, request.headers.raw


@DETERMINISTIC
@given(
    slug=st.sampled_from(VENDORS),
    base=st.sampled_from(BASES),
    task_id=st.one_of(st.text(min_size=1, max_size=40), st.text(alphabet="./%?#;=&+ ~:@!$'()*,[]", min_size=1)),
)
def test_the_lane_sends_the_request_httpx_would(slug: str, base: str, task_id: str) -> None:
    try:
        check_task_id(slug, task_id)
    except InvalidReferenceError:
        return  # refused before any request is built
    handle = _client(slug, base).vendor(slug)
    http = handle.typed.get_httpx_client()
    kwargs = adapter_class(slug).endpoint.build_request_kwargs(task_id)
    assert handle._lane is not None
    lane = handle._lane.request(http, kwargs, EXTENSIONS)
    assert lane is not None  # every id a caller may pass takes the lane
    url = lane.url
    assert (lane.method, url.scheme, url.host, url.port, url.target, lane.headers) == _as_sent(http, kwargs)
    assert lane.extensions is EXTENSIONS


def test_the_default_sync_transport_has_a_lane_and_another_has_none() -> None:
    handle = _client("vozo", BASES[0]).vendor("vozo")
    assert isinstance(handle._default_transport, DeadlineTransport)
    assert handle._lane is not None
    mocked = videojobs.Client(
        api_keys={"vozo": KEYS["vozo"]}, transport=httpx.MockTransport(lambda r: httpx.Response(200))
    ).vendor("vozo")
    assert mocked._lane is None


def test_a_header_set_on_the_typed_client_later_is_sent() -> None:
    http, lane, kwargs = _fresh()
    http.headers["X-Trace"] = "on"
    sent = lane.request(http, kwargs, EXTENSIONS)
    assert sent is not None
    assert (b"X-Trace", b"on") in sent.headers
    assert sent.headers == _as_sent(http, kwargs)[-1]


def _hook(request: httpx.Request) -> None:
    pass


@pytest.mark.parametrize(
    "change",
    [
        lambda http: http.cookies.set("session", "s1"),
        lambda http: setattr(http, "auth", ("user", "pass")),
        lambda http: http.event_hooks["request"].append(_hook),
        lambda http: http.event_hooks["response"].append(_hook),
        lambda http: setattr(http, "follow_redirects", True),
        lambda http: setattr(http, "params", {"a": "1"}),
        lambda http: setattr(http, "base_url", "http://user:pw@127.0.0.1:8123"),
        lambda http: setattr(http, "base_url", "http://127.0.0.1:8123/?q=1"),
        lambda http: http.close(),
    ],
    ids=["cookies", "auth", "request-hook", "response-hook", "redirects", "params", "userinfo", "query", "closed"],
)
def test_the_lane_steps_aside_for_what_it_was_not_worked_out_for(change: Any) -> None:
    http, lane, kwargs = _fresh()
    assert lane.request(http, kwargs, EXTENSIONS) is not None
    change(http)
    assert lane.request(http, kwargs, EXTENSIONS) is None


def test_the_lane_sends_only_for_its_own_client_and_plain_gets() -> None:
    http, lane, kwargs = _fresh()
    assert lane.request(httpx.Client(base_url=BASES[0]), kwargs, EXTENSIONS) is None
    assert lane.request(http, {**kwargs, "method": "post"}, EXTENSIONS) is None
    assert lane.request(http, {**kwargs, "params": {"a": 1}}, EXTENSIONS) is None
    for url in ("//elsewhere/x", "a/b", "/a/../b", "/a/./b", "/a b", "/a?b", "/a%zz", "/a%2", "/" + "x" * 5000):
        assert lane.request(http, {"method": "get", "url": url}, EXTENSIONS) is None, url
    for url in ("/a%2Fb", "/a/.b/..c", "/~a_b-c.d"):
        sent = lane.request(http, {"method": "get", "url": url}, EXTENSIONS)
        assert sent is not None, url
        as_httpx = _as_sent(http, {"method": "get", "url": url})
        assert (sent.method, sent.url.scheme, sent.url.host, sent.url.port, sent.url.target, sent.headers) == as_httpx


def _with_cookie(request: hostile.Request, conn: socket.socket) -> None:
    seen = request.headers.get("cookie", "")
    body = hostile.OK_BODY if not seen else hostile.OK_BODY.replace(b"processing", b"done")
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: lb=node-7; Path=/\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


@pytest.mark.anyio
async def test_a_cookie_the_vendor_sets_is_kept_by_neither_face(caplog: pytest.LogCaptureFixture) -> None:
    """The blocking face kept every cookie a vendor set and sent it back, the async face none:
    a vendor (or a proxy, a CDN) setting new ones on each answer grew each sync poll by 45 KB,
    without bound. Neither keeps one now; the lane still logs httpx's line."""
    kwargs: dict[str, Any] = {"api_keys": {"vozo": KEYS["vozo"]}}
    with hostile.hostile(_with_cookie) as url:
        kwargs["base_urls"] = {"vozo": url}
        with videojobs.Client(**kwargs) as client:
            with caplog.at_level(logging.INFO, logger="httpx"):
                sync = [client.status("vozo:t").vendor_state for _ in range(2)]
            assert not client.vendor("vozo").typed.get_httpx_client().cookies
        async with videojobs.AsyncClient(**kwargs) as aclient:
            aio = [(await aclient.status("vozo:t")).vendor_state for _ in range(2)]
    assert sync == aio == ["processing", "processing"]  # no cookie came back: the host says so
    assert f'HTTP Request: GET {url}/v1/video_generation/t "HTTP/1.1 200 OK"' in caplog.messages


def test_threads_making_a_clients_first_calls_at_once_all_send_its_key() -> None:
    """The lane learned its client's base URL and headers field by field, unlocked: a thread that
    read the new path before the headers were set sent a request with none (no key, no Host), and
    its vendor's 401 ended the call as an AuthenticationError though the key was right (5 of 960
    calls, 16 threads on fresh clients with a short switch interval; 18-36 of these 960). What it
    learns is now made whole, then published with one assignment. (Each round is a fresh client:
    its lane has learned nothing.)"""
    import sys
    import threading

    def answer(request: hostile.Request, conn: socket.socket) -> None:
        known = request.headers.get("authorization") == f"Bearer {KEYS['vozo']}"
        body = b'{"id": "t", "status": "processing"}' if known else b'{"error": {"message": "no key"}}'
        status = b"200 OK" if known else b"401 Unauthorized"
        conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip

    failed: list[str] = []
    interval = sys.getswitchinterval()
    with hostile.hostile(answer) as url:
        sys.setswitchinterval(1e-6)  # threads switch as often as they can: the window is a few bytecodes
        try:
            for _ in range(60):
                client = videojobs.Client(api_keys={"vozo": KEYS["vozo"]}, base_urls={"vozo": url}, adaptive=False)
                client.vendor("vozo")
                start = threading.Barrier(16)

                def status(client: videojobs.Client = client, start: threading.Barrier = start) -> None:
                    start.wait()
                    try:
                        client.status("vozo:t")
                    except videojobs.VideoJobsError as exc:
                        failed.append(f"{type(exc).__name__}: {exc}")

                threads = [threading.Thread(target=status) for _ in range(16)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=30)
                client.close()
        finally:
            sys.setswitchinterval(interval)
    assert failed == []


def test_a_call_waiting_for_a_connection_waits_in_its_attempts_time_and_says_so() -> None:
    """``max_connections=1`` held by one call: another thread's call waits for it within its own
    attempt's time, in videojobs' line, not httpcore's pool (whose wait took the whole timeout
    again each time the connection it was given went to another thread first: calls of a 2 s
    budget ran for 19 s with 32 threads). The host holds the first answer until the second call
    has ended, so the second can only end on its own time."""
    import threading

    arrived, released = threading.Event(), threading.Event()

    def host(request: hostile.Request, conn: socket.socket) -> None:
        arrived.set()
        released.wait(10)
        hostile.answer()(request, conn)

    with hostile.hostile(host) as url:
        kwargs: dict[str, Any] = {"api_keys": {"vozo": KEYS["vozo"]}, "base_urls": {"vozo": url}}
        with videojobs.Client(**kwargs, max_connections=1, request_timeout=5, max_retries=0, adaptive=False) as c:
            first = threading.Thread(target=lambda: c.status("vozo:first"))  # ends once released
            first.start()
            assert arrived.wait(10)  # the first call holds the only connection
            try:
                with pytest.raises(videojobs.WaitTimeout) as info:
                    c.wait("vozo:second", timeout=0.3)  # each poll's attempt: the 0.3 s left at most
            finally:
                released.set()
                first.join(10)
    assert "no request slot came free in time" in str(info.value.__cause__)


def test_a_call_under_way_as_its_http_client_is_closed_ends_typed() -> None:
    """The handle's httpx client closed under a call (another thread's ``close()`` between the
    lane's check and httpx's send): httpx's RuntimeError became the call's untyped end."""
    kwargs: dict[str, Any] = {"api_keys": {"vozo": KEYS["vozo"]}, "max_retries": 0}
    with hostile.hostile(hostile.answer()) as url, videojobs.Client(**kwargs, base_urls={"vozo": url}) as c:
        c.vendor("vozo").typed.get_httpx_client().close()
        with pytest.raises(videojobs.UsageError, match="was closed while the call was under way"):
            c.status("vozo:t")
