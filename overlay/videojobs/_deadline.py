"""A deadline for a whole sync request: connect, send, headers and body, however the bytes trickle.

httpx's timeouts bound each socket operation, so a server sending a byte per second never trips
a 2 s read timeout. The async client bounds an attempt with ``asyncio.timeout``; a sync call
cannot be cancelled from outside, so instead every socket operation is given at most the time
left until the attempt's deadline:

- ``_exchange.Deadline`` is a float (the per-operation timeout httpx hands to httpcore unchanged,
  via the request's ``timeout`` extension) that also carries the absolute deadline in ``at``
  (it lives with the exchange that makes it, so that ``import videojobs`` does not import
  httpcore: this module loads with the first sync vendor session);
- :class:`DeadlineBackend` wraps httpcore's sync network backend; its streams cut each
  ``read``/``write`` (and connect, TLS) to the time left, and time out once none is left;
- :class:`DeadlineTransport` is the sync clients' default transport: an ``httpx.BaseTransport``
  over httpcore's public ``ConnectionPool(network_backend=DeadlineBackend())``, mapping
  httpcore's errors to httpx's as httpx's own ``HTTPTransport`` does. Only public API of httpx
  and httpcore is used (no private attribute is replaced).

Behind a proxy named in the environment the clients keep httpx's own transport (see
:func:`environment_proxies`): each socket operation is then bounded, not the whole attempt.

A status request goes onto the transport's pool through :class:`Lane`, past ``httpx.Client.send``
and httpx's Request and Response (the sync twin of ``_aio.Lane``); every other request of the
generated clients goes through :meth:`DeadlineTransport.handle_request`.
"""

from __future__ import annotations

import contextlib
import logging  # already loaded by httpx: no import cost
import os
import re
import socket
import ssl
import string
import threading
import time
import typing
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, NamedTuple, Protocol

import httpcore
import httpx

from ._tls import tls_context

__all__ = ["DeadlineBackend", "DeadlineTransport", "Lane", "as_httpx", "deadline_transport", "environment_proxies"]


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    at: float | None = getattr(timeout, "at", None)  # a Deadline; any other transport's float as it is
    if at is None or timeout is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the call's deadline has passed")
    return min(float(timeout), left)


class _Live:
    """A backend's open streams, so that its transport's close can end the requests under way:
    a thread blocked reading a socket is not woken when another thread closes it, only when the
    socket is shut down (the sync face's close waited for a silent vendor until request_timeout;
    aiohttp ends the async face's at once). Weak: a stream httpcore drops without closing goes.

    Once shut (``closed``), a stream connected later (a connect under way at the close) is shut
    as it comes, and an empty read is the close's, not the end of a body: a body that ends with
    its connection (no Content-Length) was read as whole, and a download cut by the close saved
    as complete. In a forked child nothing is shut down: the sockets are the parent's too, and a
    shutdown (unlike a close) would end the parent's requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[httpcore.NetworkStream] = weakref.WeakSet()
        self._pid = os.getpid()
        self.closed = False

    def add(self, stream: _S) -> _S:
        with self._lock:
            self._streams.add(stream)
            closed = self.closed
        if closed:
            _shut_down(stream)
        return stream

    def discard(self, stream: httpcore.NetworkStream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def shut_down(self) -> None:
        """Shut every open stream's socket down, and those still connecting as they come: a read
        under way ends at once, its thread's call then says the client was closed."""
        if os.getpid() != self._pid:
            return
        with self._lock:
            self.closed = True
            streams = list(self._streams)
        for stream in streams:
            _shut_down(stream)


_S = typing.TypeVar("_S", bound=httpcore.NetworkStream)


def _shut_down(stream: httpcore.NetworkStream) -> None:
    sock = stream.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # closed already, or never connected
            # socket.socket's own: an SSLSocket's drops its TLS state first, under the reading thread
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Handshake(httpcore.NetworkStream):
    """A TLS handshake under way, for the close to shut down: a second descriptor of its socket
    (``wrap_socket`` detaches the plain stream's own, so shutting that down did nothing and the
    handshake ran to its timeout)."""

    def __init__(self, sock: socket.socket) -> None:
        fd = os.dup(sock.fileno())
        try:
            self.sock = socket.socket(fileno=fd)
        except BaseException:
            os.close(fd)
            raise

    def get_extra_info(self, info: str) -> Any:
        return self.sock if info == "socket" else None


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, live: _Live) -> None:
        self._stream = stream
        self._live = live

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))
        if not data and self._live.closed:  # the close's shutdown, not the peer's end of a body
            raise httpcore.ReadError("the client was closed")
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._live.discard(self)
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        raw = self._stream.get_extra_info("socket")
        handshake = self._live.add(_Handshake(raw)) if isinstance(raw, socket.socket) else None
        try:
            inner = self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout))
        finally:
            if handshake is not None:
                self._live.discard(handshake)
                handshake.sock.close()
        self._live.discard(self)  # its socket is the TLS stream's now
        return self._live.add(_Stream(inner, self._live))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _LargeReads(_Stream):
    """A plain TCP stream read ``size`` bytes at a time at least (httpcore asks for 64 KiB): a
    download's body in a sixteenth of the reads, each a pass through httpcore and h11. (TLS
    hands over one 16 KiB record per read whatever is asked: its streams are plain ``_Stream``s.)"""

    def __init__(self, stream: httpcore.NetworkStream, live: _Live, size: int) -> None:
        super().__init__(stream, live)
        self._size = size

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return super().read(max(max_bytes, self._size), timeout)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, with every operation cut to the request's :class:`Deadline`
    (``read_size``: plain TCP reads of at least that many bytes, see :class:`_LargeReads`)."""

    def __init__(self, read_size: int = 0) -> None:
        self._backend = httpcore.SyncBackend()
        self._read_size = read_size
        self.live = _Live()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            stream = self._backend.connect_tcp(
                host, port, _bounded(timeout, httpcore.ConnectTimeout), local_address, socket_options
            )
        except UnicodeError as exc:  # getaddrinfo's IDNA codec refuses the name ("a..com", a label over 63)
            raise httpcore.ConnectError(f"the host name {host!r} cannot be looked up: {exc}") from exc
        return self.live.add(
            _LargeReads(stream, self.live, self._read_size) if self._read_size else _Stream(stream, self.live)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - not used by videojobs
        return self.live.add(
            _Stream(
                self._backend.connect_unix_socket(path, _bounded(timeout, httpcore.ConnectTimeout), socket_options),
                self.live,
            )
        )

    def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore's retries only
        self._backend.sleep(seconds)


def environment_proxies(environ: typing.Mapping[str, str]) -> bool:
    """Whether the environment names a proxy httpx would use (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``)."""
    return any(environ.get(name) or environ.get(name.lower()) for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"))


# httpcore's errors as httpx's, most specific first found along the error's MRO (as httpx's
# HTTPTransport maps them: httpx/_transports/default.py, map_httpcore_exceptions)
_ERRORS: Final[dict[type[Exception], type[httpx.HTTPError]]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


def _httpx_error(exc: Exception) -> httpx.HTTPError | None:
    """httpx's error for an httpcore error (None for any other exception)."""
    mapped = next((_ERRORS[kind] for kind in type(exc).__mro__ if kind in _ERRORS), None)
    return None if mapped is None else mapped(str(exc))


@contextlib.contextmanager
def as_httpx() -> Iterator[None]:
    """httpcore's errors raised inside, as httpx's (as httpx's own transports map them)."""
    try:
        yield
    except Exception as exc:
        mapped = _httpx_error(exc)
        if mapped is None:
            raise
        raise mapped from exc


class _Body(httpx.SyncByteStream):
    """The response body as httpcore streams it, its errors as httpx's."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with as_httpx():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """An httpx transport on httpcore's connection pool, whose sockets run on :class:`DeadlineBackend`
    (HTTP/1.1, like httpx's default; no proxy: see the module docstring)."""

    def __init__(self, *, verify: bool | ssl.SSLContext, limits: httpx.Limits, read_size: int = 0) -> None:
        self._backend = DeadlineBackend(read_size)
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls_context(verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=self._backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with as_httpx():
            answer = self._pool.handle_request(core)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        """Close the pool, ending the requests under way first (see :class:`_Live`)."""
        self._backend.live.shut_down()
        self._pool.close()

    @property
    def pool(self) -> httpcore.ConnectionPool:
        """The httpcore pool the requests go out on (:class:`Lane` sends status requests on it)."""
        return self._pool


# --- the status exchange's lane onto the pool ---------------------------------------------------------

LANE_MAX_PATH: Final = 4096
"""The longest status path the lane sends itself (a task id is tens of characters); a longer one
takes httpx's path, and httpx's own URL checks (at most 65,536 characters) apply to it as ever."""

_LANE_CHARS: Final = string.ascii_letters + string.digits + "-._~/%"
_ESCAPES: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a "%" that does not start an escape
"""A path as the generated builders make it (``quote(task_id, safe="")`` in a template) holds only
unreserved characters, "/" and ``%XX`` escapes, which httpx's URL parser keeps byte for byte (its
``quote`` leaves valid escapes as they are)."""

_DOTS: Final = frozenset((".", ".."))  # path segments httpx's URL parser drops (RFC 3986 section 5.2.4)


_HTTPX_LOGGER: Final = logging.getLogger("httpx")
_INFO: Final = logging.INFO


class Reading(Protocol):
    """What reads an answer off the lane (``_exchange``'s attempt)."""

    def started(self, status_code: int, headers: Mapping[str, str], encoding: str) -> None: ...

    def carried(self, extensions: Mapping[str, Any]) -> None: ...

    def feed(self, chunk: bytes) -> None: ...


class _Learned(NamedTuple):
    """What :class:`Lane` learned of its client's base URL and headers, made whole before it is
    published with one assignment: threads sharing a ``Client`` read it while another learns it
    anew (set field by field, a thread read the new path before the new headers were set, and
    sent a request without them: no key, a false 401 on a client's first calls)."""

    base_url: httpx.URL
    raw: list[tuple[bytes, bytes]]  # the client's headers it was learned from
    base: str  # the base URL as text, ending in "/"
    path: bytes | None  # the base URL's path; None: not a base URL the lane sends to
    scheme: bytes
    host: bytes
    port: int | None
    headers: list[tuple[bytes, bytes]]  # what build_request would send, Host first


class Lane:
    """A status exchange's way onto :class:`DeadlineTransport`'s pool, past ``httpx.Client.send`` and
    httpx's Request and Response: on loopback those layers cost about 100 µs of client CPU per status
    call (auth and redirect flows, event hooks, the URL parsed three times, a cookie jar's urllib
    and email objects per answer), far more than the call's own work. ``_aio.Lane`` is its async twin.

    The request is the one ``http.send(http.build_request(**kwargs))`` sends, byte for byte (method,
    URL, headers: tests/test_sync_lane.py): its headers and the URL's parts are learned from a
    request httpx builds, once per change of the client's base URL or headers. It declines (None:
    the exchange takes httpx's path) whatever it was not worked out for: an httpx client other than
    the one made on this transport, a closed one, one with auth, event hooks, params or cookies, or
    that follows redirects; a base URL with user info, a query or a fragment; kwargs other than a
    GET of a path as the generated builders make it. What ``send`` does besides sending is kept: the
    ``HTTP Request`` line is logged on the ``httpx`` logger when enabled. (The client's jar keeps no
    cookie an answer sets: ``_exchange.cookie_jar``.)
    """

    __slots__ = ("_accept_encoding", "_http", "_learned", "_pool", "_transport")

    def __init__(self, transport: DeadlineTransport, http: httpx.Client, accept_encoding: str) -> None:
        self._pool = transport.pool
        self._transport = transport
        self._http = http
        self._accept_encoding = accept_encoding  # what the exchange reads (httpx's default may offer more)
        self._learned: _Learned | None = None

    def close(self) -> None:
        """Close the pool's connections (again: one opened by a request that passed the closed
        check as the client closed stays otherwise until garbage collection), shut down first:
        the pool's close closes other threads' sockets under their reads, which does not wake them."""
        self._transport.close()

    def request(
        self, http: httpx.Client, kwargs: Mapping[str, Any], extensions: dict[str, Any]
    ) -> httpcore.Request | None:
        """The httpcore request for the generated builder's ``kwargs``, or None (see the class)."""
        if http is not self._http:
            return None
        learned = self._learned  # read once: another thread may learn anew meanwhile
        if learned is None or http.base_url is not learned.base_url or http.headers.raw != learned.raw:
            learned = self._learned = self._learn(http)
        url = kwargs.get("url")
        if (
            learned.path is None
            or len(kwargs) != 2
            or kwargs.get("method") not in ("get", "GET")
            or not isinstance(url, str)
            or len(url) > LANE_MAX_PATH
            or url[:1] != "/"
            or url[:2] == "//"
            or url.rstrip(_LANE_CHARS)
            or ("%" in url and _ESCAPES.search(url))
            or ("." in url and not _DOTS.isdisjoint(url.split("/")))
            or http.is_closed
            or http.follow_redirects
            or http.auth is not None
            or http.params
            or http.cookies
        ):
            return None
        hooks = http.event_hooks
        if hooks["request"] or hooks["response"]:
            return None
        target = learned.path + url[1:].encode("ascii")
        core_url = httpcore.URL(scheme=learned.scheme, host=learned.host, port=learned.port, target=target)
        return httpcore.Request(b"GET", core_url, headers=learned.headers, extensions=extensions)

    def _learn(self, http: httpx.Client) -> _Learned:
        base_url, raw = http.base_url, http.headers.raw
        plain = base_url.is_absolute_url and not (base_url.userinfo or base_url.query or base_url.fragment)
        if not plain:
            return _Learned(base_url, raw, "", None, b"", b"", None, [])
        # httpx keeps a base URL's path ending in "/" (an empty one is "/", but prints as "http://host")
        text = str(base_url)
        # the request build_request makes of a GET of the base URL without cookies or params (the lane
        # declines those): the client's headers merged with the exchange's, as it merges them, Host first
        headers = httpx.Headers(http.headers)
        headers.update({"Accept-Encoding": self._accept_encoding})
        probe = httpx.Request("GET", base_url, headers=headers)
        url = probe.url
        base = text if text.endswith("/") else text + "/"
        return _Learned(base_url, raw, base, url.raw_path, url.raw_scheme, url.raw_host, url.port, probe.headers.raw)

    def exchange(self, request: httpcore.Request, reading: Reading) -> None:
        """Send ``request`` on the pool and hand the answer to ``reading``: its status line and
        headers, then its body chunk by chunk as it arrives; the answer is closed whatever happens.
        httpcore's errors are raised as httpx's (as :class:`DeadlineTransport` raises them)."""
        try:
            response = self._pool.handle_request(request)
            try:
                headers = httpx.Headers(response.headers)
                if _HTTPX_LOGGER.isEnabledFor(_INFO):
                    self._log(request, response, headers)
                reading.started(response.status, headers, headers.get("content-encoding", ""))
                reading.carried(response.extensions)
                stream = response.stream
                assert isinstance(stream, Iterable)
                for chunk in stream:
                    reading.feed(chunk)
            finally:
                response.close()
        except Exception as exc:
            mapped = _httpx_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def _answer(self, request: httpcore.Request, response: httpcore.Response, headers: httpx.Headers) -> httpx.Response:
        """The answer's head as httpx's objects (for the log line: a rare path)."""
        learned = self._learned
        assert learned is not None  # it built the request
        url = learned.base + request.url.target[len(learned.path or b"") :].decode("ascii")
        sent = httpx.Request("GET", url, headers=request.headers)
        return httpx.Response(response.status, headers=headers, request=sent, extensions=response.extensions)

    def _log(self, request: httpcore.Request, response: httpcore.Response, headers: httpx.Headers) -> None:
        answer = self._answer(request, response, headers)
        _HTTPX_LOGGER.info(  # the line httpx.Client logs for every request it sends
            'HTTP Request: %s %s "%s %d %s"',
            answer.request.method,
            answer.request.url,
            answer.http_version,
            answer.status_code,
            answer.reason_phrase,
        )


def deadline_transport(*, verify: bool | ssl.SSLContext, limits: httpx.Limits, read_size: int = 0) -> DeadlineTransport:
    """The sync clients' default transport (without an environment proxy): see :class:`DeadlineTransport`."""
    return DeadlineTransport(verify=verify, limits=limits, read_size=read_size)
