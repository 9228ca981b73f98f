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

import time
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import httpx

from ._aio import transport_errors
from ._deadline import Deadline
from ._exceptions import MalformedResponseError, NetworkError
from ._scrub import Scrubber
from ._translate import SNIPPET, Exchange

if TYPE_CHECKING:
    from ._aio import Lane

__all__ = ["ACCEPT_ENCODING", "BodyReader", "Secrets", "exchange_aiohttp", "exchange_async", "exchange_sync"]

ACCEPT_ENCODING: Final = "gzip, deflate"
"""What BodyReader decodes (bounded); a vendor answering in another coding gets a MalformedResponseError."""

_ECHO_MARGIN: Final = 4096  # bytes kept past a sample's end until it is scrubbed: a key is never cut in two

Secrets = Scrubber  # the keys one vendor is sent, scrubbed from whatever comes back (see _scrub)


# --- reading a body, bounded ------------------------------------------------------------------------


class BodyReader:
    """Decodes a body as it arrives and refuses it once it decodes to more than ``limit`` bytes.

    gzip and deflate are decoded here with ``max_length``, so a compression bomb costs at most
    ``limit`` bytes of memory; any other Content-Encoding is refused.
    """

    __slots__ = ("_chunks", "_decoder", "_deflate", "_size", "limit", "vendor")

    def __init__(self, content_encoding: str, limit: int, vendor: str) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in ("", "identity")]
        self.limit = limit
        self.vendor = vendor
        self._chunks: list[bytes] = []
        self._size = 0
        self._deflate = False
        if not codings:
            self._decoder: Any = None
        elif codings in (["gzip"], ["x-gzip"]):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif codings == ["deflate"]:
            self._decoder = zlib.decompressobj()
            self._deflate = True  # zlib-wrapped, or raw deflate (servers send both)
        else:
            raise MalformedResponseError(
                f"the answer is in a Content-Encoding it was not asked for: {content_encoding[:60]!r}",
                vendor=vendor,
            )

    def feed(self, chunk: bytes) -> None:
        if self._decoder is None:
            self._keep(chunk)
            return
        try:
            out = self._decoder.decompress(chunk, self.limit - self._size + 1)
        except zlib.error as exc:
            if self._deflate and self._size == 0 and not self._chunks:
                self._deflate = False
                self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                self.feed(chunk)
                return
            raise self._corrupt() from exc
        self._keep(out)
        if self._decoder.unconsumed_tail:
            self._too_large()

    def finish(self) -> bytes:
        if self._decoder is not None:
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

    def _too_large(self) -> None:
        head = b"".join(self._chunks)[: SNIPPET * 4 + _ECHO_MARGIN]  # cut to SNIPPET * 4 once scrubbed
        raise MalformedResponseError(
            f"the answer is larger than max_response_bytes ({self.limit:,} bytes, decoded); not read further",
            vendor=self.vendor,
            raw=head,
        )

    def _corrupt(self) -> MalformedResponseError:
        return MalformedResponseError(
            "the answer claims a compressed Content-Encoding but does not decode", vendor=self.vendor
        )


class _Attempt:
    """One request's answer being read: all but the I/O, shared by every exchange below.

    As a context manager it turns whatever the transport raises into a NetworkError, and
    completes a MalformedResponseError (too large, bad encoding) with the status and a
    scrubbed sample of the body.
    """

    __slots__ = ("deadline", "headers", "reader", "secrets", "status_code", "timeout", "vendor")

    def __init__(self, deadline: float, limit: int, secrets: Secrets, vendor: str) -> None:
        self.deadline, self.secrets, self.vendor = deadline, secrets, vendor
        self.timeout = max(0.0, deadline - time.monotonic())
        self.status_code: int | None = None
        self.headers: Mapping[str, str] = {}
        self.reader = BodyReader("identity", limit, vendor)

    def request(self, http: httpx.Client | httpx.AsyncClient, kwargs: Mapping[str, Any]) -> httpx.Request:
        """The httpx request for the generated builder's ``kwargs``, every socket operation bounded."""
        request = http.build_request(**kwargs, headers={"Accept-Encoding": ACCEPT_ENCODING})
        bound = Deadline(self.timeout, self.deadline)  # see _deadline: every socket operation ends by then
        request.extensions["timeout"] = {"connect": bound, "read": bound, "write": bound, "pool": bound}
        return request

    def started(self, status_code: int, headers: Mapping[str, str], encoding: str) -> None:
        self.status_code, self.headers = status_code, headers
        if encoding not in ("", "gzip", "deflate", "identity"):
            encoding = self.secrets.scrub(encoding)  # quoted (cut short) in the error for an unknown coding
        self.reader = BodyReader(encoding, self.reader.limit, self.vendor)

    def started_httpx(self, response: httpx.Response) -> None:
        self.started(response.status_code, response.headers, response.headers.get("content-encoding", ""))

    def feed(self, chunk: bytes) -> None:
        self.reader.feed(chunk)
        if time.monotonic() > self.deadline:
            raise TimeoutError("the call's deadline passed while the body was arriving")

    def exchange(self) -> Exchange:
        assert self.status_code is not None
        return Exchange(self.status_code, self.headers, self.secrets.scrub_bytes(self.reader.finish()))

    def __enter__(self) -> _Attempt:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self.secrets.scrub_exception(exc)  # a transport error may quote a header or status line
        if isinstance(exc, httpx.HTTPError) and isinstance(exc.__cause__, transport_errors()):
            exc = exc.__cause__  # httpx-aiohttp's mapping calls a refused connection a ConnectTimeout
        if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
            raise NetworkError(
                f"no complete answer within {self.timeout:.2g} s ({type(exc).__name__})", vendor=self.vendor
            ) from exc
        if exc is not None and isinstance(exc, transport_errors()):
            raise NetworkError(f"could not reach the vendor: {type(exc).__name__}: {exc}", vendor=self.vendor) from exc
        if isinstance(exc, MalformedResponseError) and self.status_code is not None:
            exc.status_code = self.status_code
            exc.raw = None if exc.raw is None else self.secrets.scrub_bytes(exc.raw)[: SNIPPET * 4]


def exchange_sync(
    http: httpx.Client, kwargs: Mapping[str, Any], deadline: float, limit: int, secrets: Secrets, vendor: str
) -> Exchange:
    """Send one request and read its answer, all of it by ``deadline`` (``time.monotonic()``).

    The body is read from the response's byte stream (what the transport hands httpx, still
    encoded), whatever made the response: a socket, or a handler that built it in memory."""
    with _Attempt(deadline, limit, secrets, vendor) as attempt:
        response = http.send(attempt.request(http, kwargs), stream=True)
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
    http: httpx.AsyncClient, kwargs: Mapping[str, Any], deadline: float, limit: int, secrets: Secrets, vendor: str
) -> Exchange:
    """The async twin of :func:`exchange_sync`; ``asyncio.timeout`` bounds the whole attempt."""
    import asyncio

    with _Attempt(deadline, limit, secrets, vendor) as attempt:
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


async def exchange_aiohttp(
    lane: Lane, kwargs: Mapping[str, Any], deadline: float, limit: int, secrets: Secrets, vendor: str
) -> Exchange:
    """:func:`exchange_async` on the default transport's own aiohttp session (see ``_aio.Lane``):
    the same request (the generated builder's method, URL and params, the httpx client's headers),
    the same bounded read and deadline, without rebuilding it as an httpx Request and Response."""
    import asyncio

    with _Attempt(deadline, limit, secrets, vendor) as attempt:
        async with asyncio.timeout(attempt.timeout):
            request = lane.request(kwargs)
            async with request as response:
                attempt.started(response.status, response.headers, response.headers.get("content-encoding", ""))
                async for chunk in response.content.iter_any():
                    attempt.feed(chunk)
    return attempt.exchange()
