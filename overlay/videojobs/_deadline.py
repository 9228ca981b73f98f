"""A deadline for a whole sync request: connect, send, headers and body, however the bytes trickle.

httpx's timeouts bound each socket operation, so a server sending a byte per second never trips
a 2 s read timeout. The async client bounds an attempt with ``asyncio.timeout``; a sync call
cannot be cancelled from outside, so instead every socket operation is given at most the time
left until the attempt's deadline:

- :class:`Deadline` is a float (the per-operation timeout httpx hands to httpcore unchanged, via
  the request's ``timeout`` extension) that also carries the absolute deadline;
- :class:`DeadlineBackend` wraps httpcore's sync network backend; its streams cut each
  ``read``/``write`` (and connect, TLS) to the time left, and time out once none is left.

``deadline_transport()`` is the sync client's default transport: httpx's own ``HTTPTransport``
on a connection pool with this backend (httpx has no public parameter for a network backend,
so its pool is built here with the same settings; httpx is pinned below 0.29 for this).
"""

from __future__ import annotations

import ssl
import time
import typing
from typing import Any

import httpcore
import httpx

from ._boundary import Deadline

__all__ = ["Deadline", "DeadlineBackend", "deadline_transport"]


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    if not isinstance(timeout, Deadline):
        return timeout
    left = timeout.at - time.monotonic()
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


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, with every operation cut to the request's :class:`Deadline`."""

    def __init__(self, backend: httpcore.NetworkBackend | None = None) -> None:
        self._backend = backend if backend is not None else httpcore.SyncBackend()

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
        return _Stream(stream)

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


def deadline_transport(*, verify: bool | ssl.SSLContext, limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's HTTPTransport whose connection pool runs on :class:`DeadlineBackend`."""
    transport = httpx.HTTPTransport(verify=verify, limits=limits)
    context = httpx.create_ssl_context(verify=verify)
    transport._pool = httpcore.ConnectionPool(  # see the module docstring
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=DeadlineBackend(),
    )
    return transport
