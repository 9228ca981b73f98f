"""The async client's default transport: httpx on aiohttp (the ``httpx-aiohttp`` package).

Why: at a thousand concurrent polls, httpcore's async pool bookkeeping costs several times the
whole of aiohttp's request path (issue 11 measured 3 ms of client CPU per poll on httpcore,
0.8 ms on this transport). openai-python ships the same package as ``DefaultAioHttpClient``
"for improved concurrency performance". The generated clients still see an ``httpx.AsyncClient``;
only the bytes travel through aiohttp.

The exchange (``_exchange``) keeps its guarantees on it: ``asyncio.timeout`` bounds the attempt
whatever the transport, the body is read in chunks and counted by ``BodyReader`` (aiohttp is
told not to decompress), HTTP(S)_PROXY and NO_PROXY are honoured as httpx honours them, and
whatever aiohttp raises that ``httpx-aiohttp`` does not map is a transport error for the
exchange (see :func:`transport_errors`).

aiohttp is imported only here, when an ``AsyncClient`` first makes a vendor's typed client.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ._base import basic_credential, environment_proxy_url
from ._tls import tls_context

# aiohttp's limits on one header line and one field (its defaults are 8190 bytes): a vendor's
# signed URL in a Location header can be long, a megabyte is not a header.
MAX_HEADER_LINE = 64 * 1024

_LANE_KWARGS = frozenset(("method", "url", "params"))  # what a generated status endpoint's builder returns


def environment_proxy(base_url: str) -> httpx.Proxy | None:
    """The proxy HTTP(S)_PROXY / ALL_PROXY name for a vendor's base URL, unless NO_PROXY exempts it
    (``_base.environment_proxy_url``).

    Read once per vendor, here: aiohttp's own ``trust_env`` re-reads the environment (and
    ``~/.netrc``, in a worker thread) on every request, which cost more than the request."""
    chosen = environment_proxy_url(base_url)
    return httpx.Proxy(chosen) if chosen else None


class Lane:
    """The exchange's way onto the default transport's aiohttp session, past httpx's request and
    response objects: at a thousand concurrent polls, building an ``httpx.Request`` (two URL
    parses, header merging) and an ``httpx.Response`` (cookies) per poll cost more than aiohttp's
    whole request path. The request is the one httpx would send: the generated builder's method,
    URL (relative to the client's ``base_url``) and params, with the httpx client's headers (the
    key, the user agent) and the exchange's Accept-Encoding. The session is the transport's own,
    so the generated client and the exchange share one connection pool.
    """

    __slots__ = (
        "_base", "_headers", "_http", "_proxy", "_proxy_headers", "_session_class", "_timeout", "_transport", "_url",
    )  # fmt: skip

    def __init__(self, transport: Any, http: httpx.AsyncClient, accept_encoding: str) -> None:
        import yarl
        from aiohttp import ClientSession, ClientTimeout

        self._url, self._session_class = yarl.URL, ClientSession  # looked up once, not per poll
        self._transport, self._http = transport, http
        self._base = str(http.base_url).rstrip("/") + "/"  # as httpx merges: base path, one slash, URL
        self._headers = {**http.headers, "accept-encoding": accept_encoding}  # httpx's names are lower case
        proxy = transport.proxy
        self._proxy = None if proxy is None else str(proxy.url)
        # httpx.Proxy moves a proxy URL's user and password to .auth: aiohttp got the URL alone,
        # sent no Proxy-Authorization, and a proxy that wants one answered 407 to every poll. It goes
        # where aiohttp's own proxy_auth (deprecated) would put it: on the request itself to an
        # http:// vendor (the proxy reads it), on the CONNECT to an https:// one (never inside the tunnel)
        self._proxy_headers: dict[str, str] | None = None
        if proxy is not None and proxy.auth is not None:
            credential = {"Proxy-Authorization": "Basic " + basic_credential(*proxy.auth)}
            if http.base_url.scheme == "https":
                self._proxy_headers = credential
            else:
                self._headers = {**self._headers, **credential}
        # the exchange's asyncio.timeout is the attempt's one deadline: aiohttp's own (its session
        # default of 300 s) would add a second timer to every poll (8 us of the 90 a poll costs)
        self._timeout = ClientTimeout(total=None, connect=None, sock_connect=None, sock_read=None)

    @property
    def closed(self) -> bool:
        """Its session was closed (the client's ``aclose()``)."""
        client = self._transport.client
        return isinstance(client, self._session_class) and bool(client.closed)

    def url(self, kwargs: Mapping[str, Any]) -> Any:
        """The ``yarl.URL`` the generated builder's ``kwargs`` stand for (worked out once per job:
        see ``_exchange.Prepared``)."""
        if not _LANE_KWARGS.issuperset(kwargs):  # a body or headers: not a status GET
            raise TypeError(f"the fast lane sends no {sorted(set(kwargs) - _LANE_KWARGS)}")
        # the generated builder percent-encodes path parameters; httpx would not re-encode them
        url = self._url(self._base + str(kwargs["url"]).lstrip("/"), encoded=True)
        params = kwargs.get("params")
        if params:
            url = url.update_query({k: str(v) for k, v in params.items() if v is not None})
        return url

    def request(self, kwargs: Mapping[str, Any], url: Any) -> Any:
        """The aiohttp request context manager for the generated builder's ``kwargs`` (their ``url``)."""
        transport = self._transport
        if not isinstance(transport.client, self._session_class):  # as httpx-aiohttp does, on first use
            transport.client = transport.get_client()
        return transport.client.request(
            str(kwargs["method"]).upper(), url, headers=self._headers, allow_redirects=False, proxy=self._proxy,
            proxy_headers=self._proxy_headers, timeout=self._timeout,
        )  # fmt: skip


class AioTransport(httpx.AsyncBaseTransport):
    """The default async transport: one aiohttp session, made on the loop that first sends. The
    exchange's :class:`Lane` sends every status poll on it directly; any other request (a caller
    of the generated client's other endpoints) goes through ``httpx-aiohttp``'s
    ``AiohttpTransport`` on the same session, made at the first such request: importing it reads
    the installed packages' metadata (15-35 ms of a client's set-up, for a transport no poll uses).
    ``client`` and ``get_client`` are what ``AiohttpTransport`` calls them (the session, or what
    makes it)."""

    def __init__(self, session: Callable[[], Any], context: ssl.SSLContext, proxy: httpx.Proxy | None) -> None:
        self.client: Any = session
        self.proxy = proxy
        self._context = context
        self._wrapped: httpx.AsyncBaseTransport | None = None

    def get_client(self) -> Any:
        """The session: made now if it was not yet."""
        client = self.client
        return client() if callable(client) else client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._wrapped is None:
            from httpx_aiohttp import AiohttpTransport

            self.client = self.get_client()
            self._wrapped = AiohttpTransport(client=self.client, verify=self._context, proxy=self.proxy)
        return await self._wrapped.handle_async_request(request)

    async def aclose(self) -> None:
        client = self.client
        if not callable(client):  # a session was made: close it (the wrapped transport holds the same one)
            await client.close()


def aiohttp_transport(
    *, verify: bool | ssl.SSLContext, max_connections: int, base_url: str
) -> httpx.AsyncBaseTransport:
    """An httpx transport on one aiohttp session (made lazily, on the loop that first sends)."""
    import aiohttp

    context = tls_context(verify)

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ssl=context)
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # a status API sets no cookie worth keeping
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
            auto_decompress=False,  # the exchange decodes, counting decoded bytes
        )

    return AioTransport(session, context, environment_proxy(base_url))


def transport_errors() -> tuple[type[BaseException], ...]:
    """What a transport may raise for a failed exchange: httpx's errors, and aiohttp's own."""
    import sys

    aiohttp: Any = sys.modules.get("aiohttp")
    if aiohttp is None:
        return (httpx.HTTPError,)
    return (httpx.HTTPError, aiohttp.ClientError, aiohttp.http_exceptions.HttpProcessingError)
