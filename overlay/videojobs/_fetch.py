"""The I/O of downloads: run :func:`._download.download_plan` and :class:`._download.Transfer`
on httpx, blocking or on asyncio. Nothing here decides anything the other twin does not.

Time: the answer's head must come within the client's ``timeout`` (never past the download's
deadline); then each chunk is checked against :class:`._download.Pace` (a stall, the deadline).
The blocking client's default transport also cuts every socket operation to the deadline
(``_deadline``); the asyncio twin bounds the body with ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import ssl
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Final

import httpcore
import httpx

from ._deadline import as_httpx
from ._download import CHUNK, MAX_REDIRECTS, Fetch, HostRefused, NeedStatus, Pace, Plan, StartOver, next_hop
from ._exceptions import ConfigurationError, DownloadError, NetworkError, UsageError, VideoJobsError
from ._exchange import Deadline, cookie_jar
from ._files import Transfer
from ._plan import Walk
from ._status import Download, JobStatus
from ._text import their_words
from ._tls import tls_context

__all__ = ["afetch", "arun_plan", "fetch", "file_client", "run_plan", "utc_now"]

REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
RESUME_BACKOFF: Final = 0.5  # seconds before the first resume after a drop, doubling (never past the deadline)


def utc_now() -> datetime:
    return datetime.now(UTC)


def file_client(
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
    timeout: float,
    verify: bool | ssl.SSLContext,
    *,
    asynchronous: bool,
) -> httpx.Client | httpx.AsyncClient:
    """An httpx client for file hosts: no key, no cookies kept, redirects checked by hand."""
    if transport is None:  # httpx makes a transport, and a TLS context with it: the shared one
        verify = tls_context(verify)
    try:
        if asynchronous:
            assert transport is None or isinstance(transport, httpx.AsyncBaseTransport)
            return httpx.AsyncClient(transport=transport, **_file_client_args(timeout, verify))
        assert transport is None or isinstance(transport, httpx.BaseTransport)
        if transport is None:
            from ._deadline import deadline_transport, environment_proxies

            if not environment_proxies(os.environ):  # as for status calls (see _sessions)
                transport = deadline_transport(verify=verify, limits=httpx.Limits(), read_size=CHUNK)
        return httpx.Client(transport=transport, **_file_client_args(timeout, verify))
    except (ValueError, ImportError, httpx.InvalidURL) as exc:  # httpx builds a transport for each proxy
        # the environment names (a file host may be anywhere): one of an unknown scheme, one that is
        # no URL ("http://[::1"), or SOCKS without socksio.
        # (Its words quote the proxy's password: they stay in the cause.)
        raise ConfigurationError(
            f"a proxy the environment names cannot be used for file hosts ({type(exc).__name__}): "
            "HTTP_PROXY, HTTPS_PROXY and ALL_PROXY must be http(s) URLs"
        ) from exc


def _file_client_args(timeout: float, verify: bool | ssl.SSLContext) -> dict[str, Any]:
    return dict(
        timeout=httpx.Timeout(timeout),  # per socket operation: a long download may take its time
        follow_redirects=False,
        verify=verify,
        headers={"User-Agent": "videojobs"},
        cookies=cookie_jar(),  # none kept (one attempt's redirects keep theirs: see _Hops)
    )


_QUERY: Final = re.compile(r"\?[^\s'\"<>]*")
"""A URL's query in an error's text: it may be a signature (see ``not_a_video_url``)."""


def _hosts_words(exc: Exception) -> str:
    """What httpx or h11 said of a file host's answer, without the URL queries it may quote."""
    return their_words(_QUERY.sub("?...", str(exc)))


def _network(exc: Exception, vendor: str) -> NetworkError:
    return NetworkError(f"the download broke off: {type(exc).__name__}: {_hosts_words(exc)}", vendor=vendor)


def _disk(exc: OSError, transfer: Transfer) -> DownloadError:
    return DownloadError(
        f"could not write {transfer.part}: {exc.strerror or exc}", vendor=transfer.vendor, errno=exc.errno
    )


class _Hops:
    """The cookies of one attempt's redirect chain (a "confirm download" hop, a CDN's signed
    cookie set on the way): sent on the next hops of that chain only, at most MAX_REDIRECTS of
    them, so they are bounded and reach no other download."""

    def __init__(self) -> None:
        self.cookies = httpx.Cookies()

    def keep(self, response: httpx.Response) -> None:
        self.cookies.extract_cookies(response)

    def send_with(self, request: httpx.Request) -> None:
        if self.cookies:
            self.cookies.set_cookie_header(request)


def _request(
    http: httpx.Client | httpx.AsyncClient, url: str, transfer: Transfer, pace: Pace, hops: _Hops
) -> httpx.Request:
    """The GET for ``url``; its head must come within one ``timeout`` (see ``_deadline``)."""
    now = time.monotonic()
    if pace.expired(now):
        raise pace.too_late()
    if http.is_closed:  # the client was closed while the download was under way (httpx: a RuntimeError)
        raise _closed(transfer)
    head = pace.head_timeout(now)
    try:
        request = http.build_request("GET", url, headers=transfer.request_headers())
    except (httpx.InvalidURL, UnicodeError) as exc:  # UnicodeError: a host name IDNA refuses (xn--)
        raise DownloadError(f"the video URL is not usable: {_hosts_words(exc)}", vendor=transfer.vendor) from exc
    bound = Deadline(head, now + head)
    request.extensions["timeout"] = {"connect": bound, "read": bound, "write": bound, "pool": bound}
    hops.send_with(request)
    return request


def _closed(transfer: Transfer) -> UsageError:
    return UsageError(
        "the client was closed while the download was under way (its .part is kept for the next, when it can be "
        "resumed)",
        vendor=transfer.vendor,
    )


def _let_go_of_sockets(exc: BaseException) -> None:
    """Clear the locals of the frames an attempt cut short left in ``exc``'s tracebacks (and its
    causes'). httpcore leaves a connection cancelled in its TLS handshake unclosed, and the
    error a caller keeps (every download_all result) held its socket through them: 300 such
    downloads kept 199 sockets open, and a process short of file descriptors failed its next
    downloads. The chain (types, messages, where) stays; the socket goes with its last reference."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__traceback__ is not None:
            traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__


def _unusable_redirect(exc: UnicodeError | httpx.InvalidURL, vendor: str) -> DownloadError:
    """httpx works out a redirect's next request as the answer comes, even when it is not to follow
    it (``response.next_request``): a Location whose host IDNA refuses fails there, and one that
    names no host at all (``data:``, ``mailto:``, ``javascript:``) as an httpx.InvalidURL, which is
    no httpx.HTTPError (the request's own URL was checked when it was built)."""
    return DownloadError(f"the file host redirected to a URL that is not usable: {_hosts_words(exc)}", vendor=vendor)


def _left_on_the_connection(response: httpx.Response, received: int) -> int | None:
    """The bytes of ``response``'s body still to come once ``received`` came through httpcore, when
    they may be read straight off its connection (see :func:`_rest_of_body`); else None.

    h11 copies every byte of a body three times on its way (into its receive buffer, out of it,
    into ``bytes``): 85-95 ms of a 200 MB file's 135 ms of reading, the gap to ``curl -o`` with
    the SHA-256 thread beside it. For an HTTP/1.1 answer framed by its Content-Length, once h11
    has handed over a chunk it holds no byte of the body (it gives all it has buffered, up to the
    length, as one Data event), so the rest is on the socket: read to the length and no further.
    The connection is closed after (h11 did not see the body end), as after any answer given up
    half-read."""
    if response.http_version != "HTTP/1.1" or "transfer-encoding" in response.headers:
        return None
    length = response.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) <= received:
        return None  # all of it came in the first chunk: h11 sees the end, the connection is kept
    return int(length) - received


def _rest_of_body(response: httpx.Response, received: int) -> Iterator[bytes] | None:
    """The rest of the body, :data:`CHUNK` bytes a read at most, past h11: see :func:`_left_on_the_connection`."""
    stream = response.extensions.get("network_stream")
    left = _left_on_the_connection(response, received)
    if not isinstance(stream, httpcore.NetworkStream) or left is None:
        return None
    timeout = response.request.extensions["timeout"]["read"]  # the download's Deadline: see _body_started

    def rest(left: int) -> Iterator[bytes]:
        with as_httpx():
            while left > 0:
                data = stream.read(min(CHUNK, left), timeout)
                if not data:
                    raise httpcore.RemoteProtocolError(f"the body ended {left:,} bytes before its Content-Length")
                data = data[:left]  # a large read may take bytes past the body: not the file's
                left -= len(data)
                yield data

    return rest(left)


def _arest_of_body(response: httpx.Response, received: int) -> AsyncIterator[bytes] | None:
    """The asyncio twin of :func:`_rest_of_body` (the download's deadline is its ``asyncio.timeout``)."""
    stream = response.extensions.get("network_stream")
    left = _left_on_the_connection(response, received)
    if not isinstance(stream, httpcore.AsyncNetworkStream) or left is None:
        return None
    timeout = response.request.extensions["timeout"]["read"]

    async def rest(left: int) -> AsyncIterator[bytes]:
        with as_httpx():
            while left > 0:
                data = await stream.read(min(CHUNK, left), timeout)
                if not data:
                    raise httpcore.RemoteProtocolError(f"the body ended {left:,} bytes before its Content-Length")
                data = data[:left]
                left -= len(data)
                yield data

    return rest(left)


def _chunks(response: httpx.Response, stream: httpx.SyncByteStream, direct: bool) -> Iterator[bytes]:
    """The body as it arrives: its first chunk through httpcore, the rest straight off the
    connection when it can be (:func:`_rest_of_body`; ``direct``: the file client's transport is
    videojobs' own, whose first chunk is all h11 held: a caller's may hand it over in pieces, and
    the rest read past them spliced the file), else through httpcore too."""
    chunks = iter(stream)
    for chunk in chunks:
        yield chunk
        rest = _rest_of_body(response, len(chunk)) if direct else None
        yield from chunks if rest is None else rest
        return


async def _achunks(response: httpx.Response, stream: httpx.AsyncByteStream, direct: bool) -> AsyncIterator[bytes]:
    """The asyncio twin of :func:`_chunks`."""
    chunks = aiter(stream)
    async for chunk in chunks:
        yield chunk
        rest = _arest_of_body(response, len(chunk)) if direct else None
        async for piece in chunks if rest is None else rest:
            yield piece
        return


def _body_started(request: httpx.Request, transfer: Transfer, pace: Pace) -> None:
    """The head came: from now on the deadline is the download's (and stalls are watched)."""
    bound = request.extensions["timeout"]["read"]
    if isinstance(bound, Deadline):
        bound.at = pace.deadline if pace.deadline is not None else math.inf
    pace.start(time.monotonic(), transfer.done)


def _give_up(exc: NetworkError, attempt: int, attempts: int, pace: Pace) -> NetworkError | None:
    """The error to end with after a failed attempt, or None to try again."""
    if pace.expired(time.monotonic()):
        late = pace.too_late()
        late.__cause__ = exc
        return late
    return exc if attempt + 1 >= attempts else None


def _backoff(attempt: int, pace: Pace) -> float:
    left = pace.left(time.monotonic())
    return max(0.0, min(RESUME_BACKOFF * 2.0**attempt, math.inf if left is None else left))


# --- blocking ------------------------------------------------------------------------------------


def run_plan(plan: Plan, status: Callable[[str], JobStatus], get: Callable[[Fetch], Download]) -> Download:
    """Run a download plan (``_download.download_plan``) with blocking I/O."""
    walk: Walk[NeedStatus | Fetch, JobStatus | Download, Download] = Walk(plan)
    for action in walk:
        try:
            walk.value = status(action.ref) if isinstance(action, NeedStatus) else get(action)
        except (VideoJobsError, HostRefused) as exc:
            walk.error = exc
    return walk.result


def fetch(
    http: httpx.Client,
    url: str,
    transfer: Transfer,
    attempts: int,
    pace: Pace,
    sleep: Callable[[float], None],
    *,
    direct: bool = False,
) -> Download:
    """Save ``url`` through ``transfer``, resuming after a broken transfer up to ``attempts`` times in all
    (backing off between them on ``sleep``: the client's clock)."""
    try:
        for attempt in range(attempts):
            try:
                try:
                    return _once(http, url, transfer, pace, direct)
                except StartOver:  # the .part is gone: the whole file, at once (no Range: no StartOver)
                    transfer.pause()
                    return _once(http, url, transfer, pace, direct)
            except StartOver as exc:  # pragma: no cover - cannot happen without a Range
                transfer.pause()
                raise NetworkError(str(exc), vendor=transfer.vendor) from exc
            except NetworkError as exc:
                transfer.pause()
                if http.is_closed:  # its client was closed meanwhile: the host is not to blame, nor tried again
                    raise _closed(transfer) from exc
                end = _give_up(exc, attempt, attempts, pace)
                if end is exc:
                    raise
                if end is not None:
                    raise end from exc
                sleep(_backoff(attempt, pace))
            except OSError as exc:  # the disk: full, read-only, gone
                transfer.pause()
                raise _disk(exc, transfer) from exc
            except BaseException:
                transfer.pause()  # Ctrl-C, an error page: the .part stays only if the transfer kept it
                raise
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        transfer.close()


def _once(http: httpx.Client, url: str, transfer: Transfer, pace: Pace, direct: bool) -> Download:
    current, hops = url, _Hops()
    for _ in range(MAX_REDIRECTS + 1):
        request = _request(http, current, transfer, pace, hops)
        try:
            response = http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _network(exc, transfer.vendor) from exc
        except RuntimeError as exc:  # closed between the check and the send
            if http.is_closed:
                raise _closed(transfer) from exc
            raise
        except (UnicodeError, httpx.InvalidURL) as exc:  # InvalidURL: a data:, mailto: or urn: Location
            raise _unusable_redirect(exc, transfer.vendor) from exc
        try:
            if response.status_code in REDIRECTS:
                current = next_hop(current, response.headers.get("location"), transfer.vendor)
                hops.keep(response)
                continue
            transfer.begin(response.status_code, response.headers, response.url.host)
            _body_started(request, transfer, pace)
            stream = response.stream  # the raw bytes as they arrive, whatever made the response
            assert isinstance(stream, httpx.SyncByteStream)
            for chunk in _chunks(response, stream, direct):  # a drop loses no byte held in a buffer
                transfer.write(chunk)
                pace.check(time.monotonic(), transfer.done)
                if http.is_closed:  # closed meanwhile: a transport of the caller's would stream on
                    raise _closed(transfer)
            if http.is_closed:  # a body that ends with its connection, cut by the close: not whole
                raise _closed(transfer)
            return transfer.finish()
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise _network(exc, transfer.vendor) from exc
        finally:
            response.close()
    raise DownloadError(f"the file host redirected more than {MAX_REDIRECTS} times", vendor=transfer.vendor)


# --- asyncio -------------------------------------------------------------------------------------


async def arun_plan(
    plan: Plan, status: Callable[[str], Awaitable[JobStatus]], get: Callable[[Fetch], Awaitable[Download]]
) -> Download:
    """The asyncio twin of :func:`run_plan`."""
    walk: Walk[NeedStatus | Fetch, JobStatus | Download, Download] = Walk(plan)
    for action in walk:
        try:
            walk.value = await (status(action.ref) if isinstance(action, NeedStatus) else get(action))
        except (VideoJobsError, HostRefused) as exc:
            walk.error = exc
    return walk.result


async def afetch(
    http: httpx.AsyncClient,
    url: str,
    transfer: Transfer,
    attempts: int,
    pace: Pace,
    sleep: Callable[[float], Awaitable[None]],
    *,
    direct: bool = False,
) -> Download:
    """The asyncio twin of :func:`fetch`."""
    try:
        for attempt in range(attempts):
            try:
                try:
                    return await _aonce(http, url, transfer, pace, direct)
                except StartOver:
                    transfer.pause()
                    return await _aonce(http, url, transfer, pace, direct)
            except StartOver as exc:  # pragma: no cover - cannot happen without a Range
                transfer.pause()
                raise NetworkError(str(exc), vendor=transfer.vendor) from exc
            except NetworkError as exc:
                transfer.pause()
                if http.is_closed:  # its client was closed meanwhile: the host is not to blame, nor tried again
                    raise _closed(transfer) from exc
                end = _give_up(exc, attempt, attempts, pace)
                if end is exc:
                    raise
                if end is not None:
                    raise end from exc
                await sleep(_backoff(attempt, pace))
            except OSError as exc:
                transfer.pause()
                raise _disk(exc, transfer) from exc
            except BaseException:
                transfer.pause()
                raise
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        transfer.close()


async def _finished(transfer: Transfer) -> Download:
    """``transfer.finish()`` in a worker thread (its fsync off the loop), awaited to its end even
    when the task is cancelled meanwhile: a thread cannot be stopped, and it still uses the
    ``.part``, the folder and the name's lock that ``close()`` lets go (another download could
    take the name, or the descriptors' numbers, under it). The cancellation is raised once it has
    ended, with the video under its name or nowhere, never half of it (a fsync's wait at most)."""
    work = asyncio.ensure_future(asyncio.to_thread(transfer.finish))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        while not work.done():
            with contextlib.suppress(asyncio.CancelledError):  # cancelled again: still its end first
                await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # retrieved: the caller gets the cancellation it asked for
        raise


async def _aonce(http: httpx.AsyncClient, url: str, transfer: Transfer, pace: Pace, direct: bool) -> Download:
    current, hops = url, _Hops()
    for _ in range(MAX_REDIRECTS + 1):
        request = _request(http, current, transfer, pace, hops)
        try:
            async with asyncio.timeout(float(request.extensions["timeout"]["read"])):
                response = await http.send(request, stream=True)
        except TimeoutError as exc:
            _let_go_of_sockets(exc)
            raise NetworkError("the file host sent no answer within the timeout", vendor=transfer.vendor) from exc
        except httpx.HTTPError as exc:
            raise _network(exc, transfer.vendor) from exc
        except RuntimeError as exc:  # closed between the check and the send
            if http.is_closed:
                raise _closed(transfer) from exc
            raise
        except (UnicodeError, httpx.InvalidURL) as exc:  # InvalidURL: a data:, mailto: or urn: Location
            raise _unusable_redirect(exc, transfer.vendor) from exc
        try:
            if response.status_code in REDIRECTS:
                current = next_hop(current, response.headers.get("location"), transfer.vendor)
                hops.keep(response)
                continue
            transfer.begin(response.status_code, response.headers, response.url.host)
            _body_started(request, transfer, pace)
            left = pace.left(time.monotonic())
            try:
                async with asyncio.timeout(left):  # None: no deadline but the stall rule's
                    stream = response.stream
                    assert isinstance(stream, httpx.AsyncByteStream)
                    async for chunk in _achunks(response, stream, direct):  # as they arrive (see fetch)
                        transfer.write(chunk)
                        pace.check(time.monotonic(), transfer.done)
                        if http.is_closed:  # closed meanwhile: a transport of the caller's would stream on
                            raise _closed(transfer)
            except TimeoutError as exc:
                raise pace.too_late() from exc
            if http.is_closed:  # a body that ends with its connection, cut by the close: not whole
                raise _closed(transfer)
            return await _finished(transfer)
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise _network(exc, transfer.vendor) from exc
        finally:
            await response.aclose()
    raise DownloadError(f"the file host redirected more than {MAX_REDIRECTS} times", vendor=transfer.vendor)
