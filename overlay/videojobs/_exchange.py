"""Exchanges with a vendor, the I/O of a status call: one request out, one answer read, bounded.

One direct path per request, and nothing else touches the vendor's bytes:

1. the request is built from the generated endpoint's public ``build_request_kwargs``;
2. ``exchange_sync`` / ``exchange_async`` / ``exchange_aiohttp`` (twins in I/O only) send it
   on the vendor's pooled client and read the answer's raw bytes as they arrive (the
   transport's byte stream, whatever made the response) through :class:`BodyReader`, which
   decodes gzip/deflate itself and refuses a body that decodes to more than
   ``max_response_bytes``; the whole attempt (connect, send, headers, body) ends by its
   deadline, even against a server that trickles bytes (see ``_deadline``); every transport
   failure becomes a :class:`NetworkError`;
3. the body is scrubbed of the vendor's key in every form an echo can take (``_scrub``), once,
   before anything reads it: messages, ``raw``, the JSON and the typed model all come from it;
   transport errors are scrubbed too.

What the answer means is ``_translate``'s business (pure).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import sys
import time
import zlib
from collections.abc import Callable, Mapping
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any, Final

import httpx

from ._aio import transport_errors
from ._exceptions import MalformedResponseError, NetworkError, UsageError
from ._scrub import Scrubber
from ._text import their_words
from ._translate import SNIPPET, Exchange
from ._wait import MIN_ATTEMPT, NotSent


class _KeepsNone(DefaultCookiePolicy):
    """Refuses every cookie a server sets (a cookie set by hand is sent as usual)."""

    def set_ok(self, cookie: Cookie, request: Any) -> bool:
        return False


def cookie_jar() -> CookieJar:
    """The jar of every httpx client videojobs makes, for vendors and file hosts alike: it keeps
    nothing a server sets, as the async face's aiohttp session (``DummyCookieJar``). A status API
    sets no cookie worth keeping, and a jar that keeps them grows without bound: a vendor, a proxy
    or a CDN setting new ones on every answer grew each later request by 45 KB (and past what
    servers take), or set one on a parent domain that another vendor's host was then sent."""
    return CookieJar(policy=_KeepsNone())


if TYPE_CHECKING:
    from ._aio import Lane
    from ._deadline import Lane as SyncLane
    from ._gate import Gate

__all__ = [
    "ACCEPT_ENCODING",
    "BodyReader",
    "Deadline",
    "Prepared",
    "RequestPrefix",
    "Secrets",
    "exchange_aiohttp",
    "exchange_async",
    "exchange_sync",
]

ACCEPT_ENCODING: Final = "gzip, deflate"
"""What BodyReader decodes (bounded); a vendor answering in another coding gets a MalformedResponseError."""

_PLAIN: Final = ("", "identity")  # Content-Encodings that mean the body is as sent
_BODILESS: Final = frozenset({204, 304})  # final answers HTTP gives no body, whatever they say (RFC 9112 6.3)
MAX_GZIP_MEMBERS: Final = 64
"""Members a gzip answer may have (RFC 1952 allows a series; a server's is one, or a few where
pieces were compressed apart). zlib hands each member's following bytes over as a fresh copy,
so thousands of empty members in one chunk cost its length squared."""
COMPRESSED_ALLOWANCE: Final = 2
COMPRESSED_SLACK: Final = 64 * 1024
"""A compressed answer is read up to this many times ``max_response_bytes`` (plus the slack):
deflate's worst case, stored blocks of incompressible bytes, adds 5 bytes a 64 KiB block and a
gzip member's header and trailer about 20 (RFC 1951 3.2.4, RFC 1952 2.3), so an answer that
decodes within the limit is always read whole; past it, empty gzip members or a tail that is
dropped could otherwise be read until the deadline."""

_ECHO_MARGIN: Final = 4096  # bytes kept past a sample's end until it is scrubbed: a key is never cut in two

Secrets = Scrubber  # the keys one vendor is sent, scrubbed from whatever comes back (see _scrub)


class Deadline(float):
    """A timeout in seconds (the float) that also knows the absolute ``time.monotonic()`` deadline ``at``.

    It rides in the request's ``timeout`` extension; the sync clients' transport
    (``_deadline.DeadlineBackend``) cuts every socket operation to the time left before ``at``;
    other transports read it as the plain float."""

    at: float

    def __new__(cls, seconds: float, at: float) -> Deadline:
        self = super().__new__(cls, seconds)
        self.at = at
        return self


# --- reading a body, bounded ------------------------------------------------------------------------


_CODING: Final = r"\s*(x-)?(gzip|deflate|br|zstd|compress|identity|aes128gcm|exi|pack200-gzip|dcb|dcz)\s*"
_CODINGS: Final = re.compile(rf"{_CODING}(,{_CODING}){{0,3}}", re.IGNORECASE)
"""A Content-Encoding quoted in an error: IANA's coding names (``br``, ``zstd``, ``gzip, br``).
Headers are not scrubbed of the client's keys (bodies are): any other value is described, never
shown (a reversed or upper-cased echo of the key passed the scrubber and was quoted)."""


class BodyReader:
    """Decodes a body as it arrives and refuses it once it decodes to more than ``limit`` bytes.

    gzip and deflate are decoded here with ``max_length``, so a compression bomb costs at most
    ``limit`` bytes of memory; any other Content-Encoding is refused. After the compressed stream
    ends, what follows is read as urllib3 reads it: a gzip body goes on with its next member
    (RFC 1952: a gzip file is a series of them), and bytes that are no member (after the first),
    or that follow a deflate stream, are counted and dropped. zlib kept them in ``unused_data``,
    copying it whole at each chunk: an endless tail after a small gzip'd answer grew a call to
    200 MB in 25 s. The compressed bytes read are bounded too (:data:`COMPRESSED_ALLOWANCE`), so
    empty members or a dropped tail cannot make the read endless either.
    """

    __slots__ = (
        "_chunks",
        "_decoder",
        "_deflate",
        "_gzip",
        "_members",
        "_read",
        "_size",
        "_swallow",
        "limit",
        "vendor",
    )

    def __init__(self, content_encoding: str, limit: int, vendor: str) -> None:
        codings = (
            []
            if content_encoding in _PLAIN
            else [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in _PLAIN]
        )
        self.limit = limit
        self.vendor = vendor
        self._chunks: list[bytes] = []
        self._size = 0
        self._read = 0  # compressed bytes read
        self._deflate = self._gzip = self._swallow = False
        self._members = 0  # gzip members ended before the current one
        if not codings:
            self._decoder: Any = None
        elif codings in (["gzip"], ["x-gzip"]):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._gzip = True
        elif codings == ["deflate"]:
            self._decoder = zlib.decompressobj()
            self._deflate = True  # zlib-wrapped, or raw deflate (servers send both)
        else:
            shown = (
                repr(content_encoding)
                if _CODINGS.fullmatch(content_encoding)
                else f"{len(content_encoding)} characters"
            )
            raise MalformedResponseError(
                f"the answer is in a Content-Encoding it was not asked for: {shown}", vendor=vendor
            )

    def feed(self, chunk: bytes) -> None:
        if self._decoder is None:
            self._keep(chunk)
            return
        self._read += len(chunk)
        if self._read > COMPRESSED_ALLOWANCE * self.limit + COMPRESSED_SLACK:
            raise MalformedResponseError(
                f"the compressed answer ran past {COMPRESSED_ALLOWANCE} times max_response_bytes "
                f"({self.limit:,} bytes); not read further",
                vendor=self.vendor,
                raw=self._head(),
            )
        while chunk and not self._swallow:
            if self._decoder.eof:  # the stream ended: a gzip body's next member, else a tail to drop
                if not self._gzip:
                    self._swallow = True
                    return
                if self._members >= MAX_GZIP_MEMBERS:
                    raise MalformedResponseError(
                        f"the answer's gzip body has more than {MAX_GZIP_MEMBERS} members; not read further",
                        vendor=self.vendor,
                        raw=self._head(),
                    )
                self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._members += 1
            try:
                out = self._decoder.decompress(chunk, self.limit - self._size + 1)
            except zlib.error as exc:
                if self._deflate and self._size == 0 and not self._chunks:
                    self._deflate = False
                    self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                if self._members:  # garbage after a whole member: dropped, as urllib3 and gzip(1) do
                    self._swallow = True
                    return
                raise self._corrupt() from exc
            self._keep(out)
            if self._decoder.unconsumed_tail:
                self._too_large()
            chunk = self._decoder.unused_data if self._decoder.eof else b""

    def finish(self) -> bytes:
        if self._decoder is not None and not self._swallow:
            try:
                self._keep(self._decoder.flush())
            except zlib.error as exc:
                raise self._corrupt() from exc
        return b"".join(self._chunks)

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.limit:
            self._chunks.append(data)
            self._too_large()
        if data:
            self._chunks.append(data)

    def _head(self) -> bytes:
        return b"".join(self._chunks)[: SNIPPET * 4 + _ECHO_MARGIN]  # cut to SNIPPET * 4 once scrubbed

    def _too_large(self) -> None:
        raise MalformedResponseError(
            f"the answer is larger than max_response_bytes ({self.limit:,} bytes, decoded); not read further",
            vendor=self.vendor,
            raw=self._head(),
        )

    def _corrupt(self) -> MalformedResponseError:
        return MalformedResponseError(
            "the answer claims a compressed Content-Encoding but does not decode", vendor=self.vendor
        )


class Prepared:
    """One job's status request, worked out once for all its polls: the generated builder's
    ``kwargs`` and, once the aiohttp lane has sent it, the lane's URL. Built per poll, the URL
    cost a parse each time: yarl's cache holds a few hundred URLs, and a ``wait_all`` polls
    thousands of jobs in turn."""

    __slots__ = ("kwargs", "url")

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.kwargs = kwargs
        self.url: Any = None  # the lane's yarl.URL, once made


# --- the request, its prefix worked out once ----------------------------------------------------------


class RequestPrefix:
    """What every status request of one vendor shares, worked out once per httpx client: the
    absolute URL its paths are appended to and the headers ``build_request`` would merge.

    ``request`` is then ``build_request`` with one URL parse instead of three (the relative
    URL, the merge, the copy) and no header merge: the same method, URL and headers, byte for
    byte (tests/test_boundary.py checks it against ``build_request`` for any id). It declines
    (None: the caller builds it the general way) whatever it was not worked out for: kwargs
    other than a method and a path, a client whose base URL has a query, params or cookies the
    client was given. The client's headers and base URL are compared on every call, so a header set
    on ``.typed``'s httpx client afterwards is sent as ``build_request`` would send it.
    """

    __slots__ = ("_learned",)

    def __init__(self) -> None:
        # (client, its base URL, its headers' raw, the URL prefix or None, the headers to send): made
        # whole, then published with one assignment (threads sharing a Client read it meanwhile)
        self._learned: tuple[object, httpx.URL, list[tuple[bytes, bytes]], str | None, httpx.Headers] | None = None

    def request(
        self, http: httpx.Client | httpx.AsyncClient, kwargs: Mapping[str, Any], extensions: dict[str, Any]
    ) -> httpx.Request | None:
        learned = self._learned  # read once: another thread may learn anew meanwhile
        if (
            learned is None
            or http is not learned[0]
            or http.base_url is not learned[1]
            or http.headers.raw != learned[2]
        ):
            learned = self._learned = self._learn(http)
        _, _, _, base, headers = learned
        url = kwargs.get("url")
        if (
            base is None
            or len(kwargs) != 2
            or not isinstance(url, str)
            or url[:1] != "/"
            or url[:2] == "//"
            or http.params
            or http.cookies
        ):
            return None
        return httpx.Request(kwargs["method"], base + url[1:], headers=headers, extensions=extensions)

    @staticmethod
    def _learn(
        http: httpx.Client | httpx.AsyncClient,
    ) -> tuple[object, httpx.URL, list[tuple[bytes, bytes]], str | None, httpx.Headers]:
        # httpx keeps a base URL's path ending in "/" and appends a relative path after it (an
        # empty path, "http://host", is "/"): the prefix is that URL as text, ending in "/"
        # the headers later calls compare with are read before those copied to send: a header set
        # meanwhile by another thread is then learned again at the next call, never missed
        base_url, raw = http.base_url, http.headers.raw
        text = str(base_url)
        plain = base_url.is_absolute_url and not base_url.query and not base_url.fragment
        headers = httpx.Headers(http.headers)
        headers.update({"Accept-Encoding": ACCEPT_ENCODING})  # as build_request merges them: last
        return http, base_url, raw, None if not plain else text if text.endswith("/") else text + "/", headers


class _Attempt:
    """One request's answer being read: all but the I/O, shared by every exchange below.

    As a context manager it turns whatever the transport raises into a NetworkError, and
    completes a MalformedResponseError (too large, bad encoding) with the status and a
    scrubbed sample of the body.
    """

    __slots__ = (
        "carrier", "deadline", "handled", "headers", "reader", "secrets", "status_code", "timeout", "told", "vendor",
    )  # fmt: skip

    def __init__(self, deadline: float, limit: int, secrets: Secrets, vendor: str, told: float | None = None) -> None:
        self.deadline, self.secrets, self.vendor = deadline, secrets, vendor
        self.carrier: Mapping[str, Any] | None = None  # the answer's extensions, its connection's: see drop
        self.timeout = max(0.0, deadline - time.monotonic())
        # the attempt's time as its caller set it, which a timeout's message names (the time left
        # at this line is less by what ran since: 0.38 s of a 0.4 s request_timeout on a loaded machine)
        self.told = self.timeout if told is None else told
        self.status_code: int | None = None
        self.headers: Mapping[str, str] = {}
        self.reader = BodyReader("identity", limit, vendor)

    def restart(self, timeout: float) -> None:
        """The attempt starts now (it waited its turn for a request slot): ``timeout`` s from here."""
        self.timeout = self.told = max(0.0, timeout)
        self.deadline = time.monotonic() + self.timeout

    def extensions(self) -> dict[str, Any]:
        """The request's extensions: every socket operation bounded by the attempt's deadline."""
        bound = Deadline(self.timeout, self.deadline)  # see _deadline: every socket operation ends by then
        return {"timeout": {"connect": bound, "read": bound, "write": bound, "pool": bound}}

    def request(
        self, http: httpx.Client | httpx.AsyncClient, kwargs: Mapping[str, Any], prefix: RequestPrefix | None = None
    ) -> httpx.Request:
        """The httpx request for the generated builder's ``kwargs``, every socket operation bounded."""
        extensions = self.extensions()
        if prefix is not None:
            request = prefix.request(http, kwargs, extensions)
            if request is not None:
                return request
        return http.build_request(**kwargs, headers={"Accept-Encoding": ACCEPT_ENCODING}, extensions=extensions)

    def started(self, status_code: int, headers: Mapping[str, str], encoding: str) -> None:
        if status_code < 200:
            if status_code < 100:  # h11 (the sync face) refuses such a status line; aiohttp takes it
                raise NetworkError(
                    f"the answer's status line has no HTTP status ({status_code:03d})", vendor=self.vendor
                )
            # an interim answer as the final one (101 Switching Protocols: the transports read 100 and
            # 103 past); the sync face's httpcore raises for it, a NetworkError too
            raise NetworkError(f"the answer is an interim one ({status_code}), not a final answer", vendor=self.vendor)
        self.status_code, self.headers = status_code, headers
        if encoding in _PLAIN:
            return  # the identity reader made with the attempt
        self.reader = BodyReader(encoding, self.reader.limit, self.vendor)

    def started_httpx(self, response: httpx.Response) -> None:
        self.started(response.status_code, response.headers, response.headers.get("content-encoding", ""))
        self.carried(response.extensions)

    def carried(self, extensions: Mapping[str, Any]) -> None:
        """Note the answer's extensions: where :meth:`drop` finds its connection (kept as they are:
        read only for the rare answer that is dropped, not on every call)."""
        self.carrier = extensions

    def drop(self) -> None:
        """Shut the answer's connection down (both ways), so that its pool opens a new one for the
        next request: it sees the socket readable at its end, as when a server closes an idle
        connection, and closes it (httpcore's own check; no private attribute is touched). The
        socket is httpcore's public ``network_stream`` extension's; another transport's answer may
        have none, and is not dropped. A shutdown, not a close: the descriptor stays this socket's
        until the pool closes it, so a request another thread has meanwhile sent on it ends (a
        NetworkError, retried), never reads a socket opened later under the same number."""
        stream = self.carrier.get("network_stream") if self.carrier is not None else None
        get = getattr(stream, "get_extra_info", None)
        sock = get("socket") if callable(get) else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # already closed, or never connected
                sock.shutdown(socket.SHUT_RDWR)

    def feed(self, chunk: bytes) -> None:
        self.reader.feed(chunk)
        if time.monotonic() > self.deadline:
            raise TimeoutError("the call's deadline passed while the body was arriving")

    def exchange(self) -> Exchange:
        assert self.status_code is not None
        if self.status_code in _BODILESS and self.carrier is not None:
            # HTTP gives these answers no body (RFC 9112 6.3), so a server that sent one anyway left it
            # on the connection, where the next request would read it as its own answer (httpcore
            # keeps the connection): a status poll is never answered so, and costs a new connection
            self.drop()
        return Exchange(
            self.status_code,
            self.headers,
            self.secrets.scrub_bytes(self.reader.finish()),
            self.secrets.scrub_all,
            self.drop if self.carrier is not None else None,
        )

    def __enter__(self) -> _Attempt:
        self.handled = sys.exception()  # the caller's own, if it calls from an except: no words of this attempt's
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self.secrets.scrub_exception(exc)  # a transport error may quote a header or status line
        if isinstance(exc, httpx.HTTPError) and isinstance(exc.__cause__, transport_errors()):
            exc = exc.__cause__  # httpx-aiohttp's mapping calls a refused connection a ConnectTimeout
        if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
            raise NetworkError(
                f"no complete answer within {self.told:.2g} s ({type(exc).__name__})", vendor=self.vendor
            ) from exc
        if exc is not None and isinstance(exc, transport_errors()):
            system = system_words(exc, self.handled)
            if system is not None:  # the same words on both faces, whichever transport raised
                raise NetworkError(
                    f"could not reach the vendor: {system} ({type(exc).__name__})", vendor=self.vendor
                ) from exc
            said = self.secrets.scrub_all(their_words(exc))  # the exception is scrubbed; its text again, cut
            raise NetworkError(f"could not reach the vendor: {type(exc).__name__}: {said}", vendor=self.vendor) from exc
        if isinstance(exc, MalformedResponseError) and self.status_code is not None:
            exc.status_code = self.status_code
            exc.raw = None if exc.raw is None else self.secrets.scrub_bytes(exc.raw)[: SNIPPET * 4]


def system_words(exc: BaseException, handled: BaseException | None = None) -> str | None:
    """What the system said of a connection that failed, found in ``exc``'s chain, in words that do
    not depend on the transport: ``Connection refused`` where httpx said ``[Errno 111] Connection
    refused`` and aiohttp ``Cannot connect to host ... ssl:default [Connect call failed ...]``.
    None for a TLS failure (its errno is OpenSSL's, not the system's: the transport's words say
    more) or a chain with no such error. The walk stops at ``handled``, the exception the caller
    was handling when it called (the chain's ``__context__`` reaches it: a status call made in an
    ``except FileNotFoundError`` said the vendor was "No such file or directory")."""
    seen: set[int] = set() if handled is None else {id(handled)}
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLError) or type(cause).__name__.endswith("CertificateError"):
            return None
        if isinstance(cause, socket.gaierror) and cause.strerror:
            return cause.strerror  # getaddrinfo's own words: "Name or service not known"
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return None


def exchange_sync(
    http: httpx.Client,
    kwargs: Mapping[str, Any],
    deadline: float,
    limit: int,
    secrets: Secrets,
    vendor: str,
    prefix: RequestPrefix | None = None,
    lane: SyncLane | None = None,
    told: float | None = None,
) -> Exchange:
    """Send one request and read its answer, all of it by ``deadline`` (``time.monotonic()``).

    On the default transport the request goes through its ``lane`` (see ``_deadline.Lane``) unless
    the lane declines it. Otherwise the body is read from the response's byte stream (what the
    transport hands httpx, still encoded), whatever made the response: a socket, or a handler that
    built it in memory. ``told``: the attempt's time as the call set it (its timeout's message names it)."""
    with _Attempt(deadline, limit, secrets, vendor, told) as attempt:
        if lane is not None and (request := lane.request(http, kwargs, attempt.extensions())) is not None:
            lane.exchange(request, attempt)
        else:
            response = http.send(attempt.request(http, kwargs, prefix), stream=True)
            try:
                attempt.started_httpx(response)
                stream = response.stream
                assert isinstance(stream, httpx.SyncByteStream)
                for chunk in stream:
                    attempt.feed(chunk)
            finally:
                response.close()
    return attempt.exchange()


async def exchange_async(
    http: httpx.AsyncClient,
    kwargs: Mapping[str, Any],
    deadline: float,
    limit: int,
    secrets: Secrets,
    vendor: str,
    told: float | None = None,
) -> Exchange:
    """The async twin of :func:`exchange_sync`; ``asyncio.timeout`` bounds the whole attempt."""
    import asyncio

    with _Attempt(deadline, limit, secrets, vendor, told) as attempt:
        async with asyncio.timeout(attempt.timeout):
            response = await http.send(attempt.request(http, kwargs), stream=True)
            try:
                attempt.started_httpx(response)
                stream = response.stream
                assert isinstance(stream, httpx.AsyncByteStream)
                async for chunk in stream:
                    attempt.feed(chunk)
            finally:
                await response.aclose()
    return attempt.exchange()


def closed_under_way(vendor: str) -> UsageError:
    """A call's error when its client was closed (by another thread or task) while it was under way."""
    return UsageError(f"the client of this {vendor} handle was closed while the call was under way", vendor=vendor)


async def exchange_aiohttp(
    lane: Lane,
    request: Prepared,
    deadline: float,
    limit: int,
    secrets: Secrets,
    vendor: str,
    slots: Gate | None = None,
    admit: Callable[[int | None], None] | None = None,
    epoch: int | None = None,
    until: float | None = None,
    now: Callable[[], float] = time.monotonic,
    told: float | None = None,
) -> Exchange:
    """:func:`exchange_async` on the default transport's own aiohttp session (see ``_aio.Lane``):
    the same request (the generated builder's method, URL and params, the httpx client's headers),
    the same bounded read and deadline, without rebuilding it as an httpx Request and Response.

    ``slots`` (the vendor's connection slots) is taken first. When none is free, the call waits
    its turn until ``until`` at most (its end on the client's clock, ``now``; by default the
    attempt's own time: calls queued behind busy slots neither time out nor retry while they
    wait) and the attempt starts, with its own time, once it has one, unless less than
    ``MIN_ATTEMPT`` of the call is left; a free slot is taken at once, within the attempt's
    time. ``admit(epoch)`` runs then, before sending (the vendor may have throttled while this
    attempt queued: it raises to withdraw it). One ``asyncio.timeout`` bounds the rest."""
    import asyncio

    held = slots is None
    try:
        with _Attempt(deadline, limit, secrets, vendor, told) as attempt:
            try:
                if not held:
                    assert slots is not None
                    if not slots.take():  # queued: the call's time, not one attempt's
                        if until is None:
                            until = now() + attempt.timeout
                        await slots.acquire(until, now)
                        held = True
                        # the attempt starts now, with what is left of both its time and the call's
                        if (left := until - now()) < MIN_ATTEMPT:
                            raise NotSent("no request slot came free in time to send", vendor=vendor)
                        attempt.restart(min(attempt.timeout, left))
                    held = True
                if admit is not None:
                    admit(epoch)
                url = request.url
                if url is None:
                    url = request.url = lane.url(request.kwargs)
                async with asyncio.timeout(attempt.timeout), lane.request(request.kwargs, url) as response:
                    headers = response.headers  # each of a repeated Content-Encoding, in order, as httpx joins them
                    attempt.started(response.status, headers, ", ".join(headers.getall("content-encoding", ())))
                    content = response.content
                    if content.is_eof():  # the whole body came with the headers (aiohttp buffers <= 128 KiB)
                        attempt.feed(content.read_nowait())
                    else:
                        async for chunk in content.iter_any():
                            attempt.feed(chunk)
                    if lane.closed:  # a body ended by its connection, cut by the close: aiohttp reads it as the end
                        raise closed_under_way(vendor)
            except TimeoutError as exc:
                if not held:
                    raise NotSent(
                        "no request slot came free in time (every one of the vendor's max_connections is busy)",
                        vendor=vendor,
                    ) from exc
                raise
            finally:
                if held and slots is not None:
                    slots.release()
    except NetworkError as exc:
        if lane.closed:  # the client was closed meanwhile (aiohttp: "Connector is closed"), not the vendor's doing
            raise closed_under_way(vendor) from exc
        raise
    except RuntimeError as exc:  # aiohttp's "Connection closed.": a body read on as the close took its connection
        if lane.closed:
            raise closed_under_way(vendor) from exc
        raise
    return attempt.exchange()
