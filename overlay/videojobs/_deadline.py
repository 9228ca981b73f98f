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
"""

from __future__ import annotations

import contextlib
import ssl
import time
import typing
from collections.abc import Iterable, Iterator
from typing import Any, Final

import httpcore
import httpx

__all__ = ["DeadlineBackend", "DeadlineTransport", "deadline_transport", "environment_proxies"]


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    at: float | None = getattr(timeout, "at", None)  # a Deadline; any other transport's float as it is
    if at is None or timeout is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the call's deadline has passed")
    return min(float(timeout), left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout))
        return _Stream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _LargeReads(_Stream):
    """A plain TCP stream read ``size`` bytes at a time at least (httpcore asks for 64 KiB): a
    download's body in a sixteenth of the reads, each a pass through httpcore and h11. (TLS
    hands over one 16 KiB record per read whatever is asked: its streams are plain ``_Stream``s.)"""

    def __init__(self, stream: httpcore.NetworkStream, size: int) -> None:
        super().__init__(stream)
        self._size = size

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max(max_bytes, self._size), _bounded(timeout, httpcore.ReadTimeout))


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, with every operation cut to the request's :class:`Deadline`
    (``read_size``: plain TCP reads of at least that many bytes, see :class:`_LargeReads`)."""

    def __init__(self, read_size: int = 0) -> None:
        self._backend = httpcore.SyncBackend()
        self._read_size = read_size

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _bounded(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _LargeReads(stream, self._read_size) if self._read_size else _Stream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - not used by videojobs
        return _Stream(
            self._backend.connect_unix_socket(path, _bounded(timeout, httpcore.ConnectTimeout), socket_options)
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


@contextlib.contextmanager
def _as_httpx() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = next((_ERRORS[kind] for kind in type(exc).__mro__ if kind in _ERRORS), None)
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc


class _Body(httpx.SyncByteStream):
    """The response body as httpcore streams it, its errors as httpx's."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """An httpx transport on httpcore's connection pool, whose sockets run on :class:`DeadlineBackend`
    (HTTP/1.1, like httpx's default; no proxy: see the module docstring)."""

    def __init__(self, *, verify: bool | ssl.SSLContext, limits: httpx.Limits, read_size: int = 0) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=DeadlineBackend(read_size),
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
        with _as_httpx():
            answer = self._pool.handle_request(core)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def deadline_transport(*, verify: bool | ssl.SSLContext, limits: httpx.Limits, read_size: int = 0) -> DeadlineTransport:
    """The sync clients' default transport (without an environment proxy): see :class:`DeadlineTransport`."""
    return DeadlineTransport(verify=verify, limits=limits, read_size=read_size)
