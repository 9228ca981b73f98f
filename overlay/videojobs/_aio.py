"""The async client's default transport: httpx on aiohttp (the ``httpx-aiohttp`` package).

Why: at a thousand concurrent polls, httpcore's async pool bookkeeping costs several times the
whole of aiohttp's request path (issue 11 measured 3 ms of client CPU per poll on httpcore,
0.8 ms on this transport). openai-python ships the same package as ``DefaultAioHttpClient``
"for improved concurrency performance". The generated clients still see an ``httpx.AsyncClient``;
only the bytes travel through aiohttp.

The boundary keeps its guarantees on it: ``asyncio.timeout`` bounds the attempt whatever the
transport, the body is read in chunks and counted by ``BodyReader`` (aiohttp is told not to
decompress), and whatever aiohttp raises that ``httpx-aiohttp`` does not map is a transport
error for the boundary (see :data:`TRANSPORT_ERRORS`).

aiohttp is imported only here, when an ``AsyncClient`` first makes a vendor's typed client.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

# aiohttp's limits on one header line and one field (its defaults are 8190 bytes): a vendor's
# signed URL in a Location header can be long, a megabyte is not a header.
MAX_HEADER_LINE = 64 * 1024


def aiohttp_transport(*, verify: bool | ssl.SSLContext, max_connections: int) -> httpx.AsyncBaseTransport:
    """An httpx transport on one aiohttp session (made lazily, on the loop that first sends)."""
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    context = httpx.create_ssl_context(verify=verify)

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ssl=context)
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # a status API sets no cookie worth keeping
            trust_env=True,  # HTTP(S)_PROXY / NO_PROXY, as httpx's own transport honours them
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
            auto_decompress=False,  # the boundary decodes, counting decoded bytes
        )

    return AiohttpTransport(client=session, verify=context)


def transport_errors() -> tuple[type[BaseException], ...]:
    """What a transport may raise for a failed exchange: httpx's errors, and aiohttp's own."""
    import sys

    aiohttp: Any = sys.modules.get("aiohttp")
    if aiohttp is None:
        return (httpx.HTTPError,)
    return (httpx.HTTPError, aiohttp.ClientError, aiohttp.http_exceptions.HttpProcessingError)
