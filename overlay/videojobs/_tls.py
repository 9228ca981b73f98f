"""The TLS context of ``verify=True``, made once per process and shared by every transport.

``httpx.create_ssl_context(verify=True)`` loads certifi's bundle of about 150 root certificates:
18-28 ms of CPU each time on the bench's machine, and a client made one for each vendor it used
and one more for the file hosts (six for a ``Client`` that polls the five vendors and downloads,
about 0.15 s before the first request). Every transport of the process now shares one, as
requests and aiohttp share their default contexts; it is what ``httpx.create_ssl_context``
makes, so what is trusted does not change: certifi's roots, or ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` when set. A client made after either changes (or after the file named is
rewritten: its size and modification time are part of the key) gets a new context; OpenSSL
reads a folder's certificates as it needs them.

An ``SSLContext`` is thread-safe for the handshakes made with it. The one thing set on it after
it is made is ALPN: httpcore sets ``["http/1.1"]`` on each connection (as on its own pool's
context before), the only protocol either face speaks, so every setter writes the same value.
``verify=False`` and a caller's own ``SSLContext`` are used as given, never cached.

A vendor reached over plain HTTP (a sandbox, a loopback stand-in, a base URL of ``http://`` with
no proxy or an ``http://`` one) makes no TLS connection, and its transport gets
:func:`closed_context` instead: certifi's roots are loaded when a transport may need them, not
for one that never will (they were 35-40 ms of a 20-job ``wait_all``'s 450 ms on a sandbox).
"""

from __future__ import annotations

import os
import ssl
import threading

import httpx

from ._exceptions import ConfigurationError

__all__ = ["closed_context", "speaks_tls", "tls_context"]

_lock = threading.Lock()
_closed: ssl.SSLContext | None = None
_shared: tuple[tuple[object, ...], ssl.SSLContext] | None = None
"""The last context made and what it was made from: one at a time (a bundle rotated daily in a
long-running worker would otherwise keep every day's context; clients made before keep theirs)."""


def _after_fork() -> None:  # a lock held by another thread at fork() would never be let go in the child
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _key() -> tuple[object, ...]:
    """What httpx reads to make the context: the variables, and the file's size and time."""
    cert_file = os.environ.get("SSL_CERT_FILE") or None
    stamp: tuple[int, int] | None = None
    if cert_file is not None:
        try:
            st = os.stat(cert_file)
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None  # httpx then fails to load it, as it would have
    return (cert_file, stamp, os.environ.get("SSL_CERT_DIR") or None)


def tls_context(verify: bool | ssl.SSLContext) -> ssl.SSLContext:
    """The context a transport uses for ``verify``: the process's shared one for ``True``, a
    caller's own (or :func:`closed_context`) as it is."""
    if isinstance(verify, ssl.SSLContext):  # what httpx.create_ssl_context returns for one, without importing certifi
        return verify
    if verify is not True:
        return httpx.create_ssl_context(verify=verify)
    global _shared
    key = _key()
    with _lock:
        if _shared is not None and _shared[0] == key:
            return _shared[1]
        try:
            context = httpx.create_ssl_context(verify=True)
        except (OSError, ssl.SSLError) as exc:  # a missing or unreadable bundle, or no PEM in it
            where = "SSL_CERT_FILE" if key[0] else "SSL_CERT_DIR" if key[2] else "certifi's bundle"
            raise ConfigurationError(
                f"could not load the trusted root certificates from {where}: {type(exc).__name__}: {exc}"
            ) from exc
        _shared = (key, context)
        return context


def speaks_tls(url: str | None) -> bool:
    """Whether a connection to ``url`` (a vendor's base URL, or the proxy it goes through) is made
    over TLS: an ``https://`` one. Every request of a vendor's transport goes to its base URL (a
    redirect is never followed), through the proxy the environment names for it, if any."""
    return url is not None and url[:6].lower() == "https:"


def closed_context() -> ssl.SSLContext:
    """The context of a transport that makes no TLS connection (see :func:`speaks_tls`): it
    verifies as ``verify=True`` does but trusts no root, so a handshake made with it anyway fails
    (``CERTIFICATE_VERIFY_FAILED``): closed, never open. One per process, made on first use."""
    global _closed
    if _closed is None:
        _closed = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname: its defaults
    return _closed
