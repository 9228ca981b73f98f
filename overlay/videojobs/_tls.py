"""The TLS context of ``verify=True``, made once per process and shared by every transport.

``httpx.create_ssl_context(verify=True)`` loads certifi's bundle of about 150 root certificates:
18-28 ms of CPU each time on the bench's machine, and a client made one for each vendor it used
and one more for the file hosts (six for a ``Client`` that polls the five vendors and downloads,
about 0.15 s before the first request). Every transport of the process now shares one, as
requests and aiohttp share their default contexts; it is what ``httpx.create_ssl_context``
makes, so what is trusted does not change (certifi's roots, or ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set: a change to those makes a new context).

Sharing is safe: an ``SSLContext`` is thread-safe for the handshakes made with it, and the
transports only set ALPN on it (httpcore sets ``http/1.1``, the only protocol either face
speaks). ``verify=False`` and a caller's own ``SSLContext`` are used as given, never cached.
"""

from __future__ import annotations

import os
import ssl
import threading

import httpx

__all__ = ["tls_context"]

_lock = threading.Lock()
_shared: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def tls_context(verify: bool | ssl.SSLContext) -> ssl.SSLContext:
    """The context a transport uses for ``verify``: the process's shared one for ``True``."""
    if verify is not True:
        return httpx.create_ssl_context(verify=verify)
    key = (os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)
    with _lock:
        context = _shared.get(key)
        if context is None:
            context = _shared[key] = httpx.create_ssl_context(verify=True)
        return context
