"""The vendor boundary: bytes from a vendor in, a ``JobStatus`` or a typed ``VideoJobsError`` out.

One direct path per request, and nothing else touches the vendor's bytes:

1. the request is built from the generated endpoint's public ``build_request_kwargs``;
2. ``exchange_sync`` / ``exchange_async`` (the only I/O here, twins in I/O only) send it on
   the vendor's pooled httpx client as a *stream* and read it through :class:`BodyReader`,
   which decodes gzip/deflate itself and refuses a body that decodes to more than
   ``max_response_bytes``; the whole attempt (connect, send, headers, body) ends by its
   deadline, even against a server that trickles bytes (see ``_deadline``); every transport
   failure becomes a :class:`NetworkError`;
3. the body is scrubbed of the vendor's key in every form an echo can take (``_scrub``), once,
   before anything reads it: messages, ``raw``, the JSON and the typed model all come from it;
   transport errors and log records are scrubbed too;
4. :func:`translate` (pure) turns the answer into a JobStatus via the generated model and
   the vendor's adapter, or into the error it stands for.
"""

from __future__ import annotations

import collections
import threading
import time
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
import httpx

from ._adapter import PARSE_ERRORS, EnvelopeError, Fields, Unreadable, VendorAdapter, parse_model
from ._aio import transport_errors
from ._exceptions import (
    APIError,
    AuthenticationError,
    MalformedResponseError,
    NetworkError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from ._scrub import MIN_SCRUBBABLE, Scrubber, scrubbable
from ._status import JobStatus

if TYPE_CHECKING:
    import logging

__all__ = [
    "BodyReader",
    "Exchange",
    "Secrets",
    "api_error",
    "exchange_async",
    "exchange_sync",
    "parse_retry_after",
    "translate",
]

MAX_RETRY_AFTER: Final = 24 * 3600.0
"""A Retry-After beyond a day is read as a day: no call or wait sleeps longer than its own budget anyway."""

POLL_AFTER_HEADER: Final = "openai-poll-after-ms"
"""OpenAI-compatible servers' hint, in milliseconds, honoured on every poll that sends it."""

ACCEPT_ENCODING: Final = "gzip, deflate"
"""What BodyReader decodes (bounded); a vendor answering in another coding gets a MalformedResponseError."""

_SNIPPET: Final = 200  # characters of a non-JSON body quoted in a message
_ECHO_MARGIN: Final = 4096  # bytes kept past a sample's end until it is scrubbed: a key is never cut in two


class Deadline(float):
    """A timeout in seconds (the float) that also knows the absolute ``time.monotonic()`` deadline ``at``.

    It rides in the request's ``timeout`` extension; the sync client's network backend
    (``_deadline``, imported only when a sync client builds its transport) cuts every socket
    operation to the time left before ``at``."""

    at: float

    def __new__(cls, seconds: float, at: float) -> Deadline:
        self = super().__new__(cls, seconds)
        self.at = at
        return self


# --- keys: scrubbed from every byte a vendor sends back ------------------------------------------


Secrets = Scrubber  # the keys one vendor is sent, scrubbed from whatever comes back (see _scrub)


class LogScrubber:
    """Redacts the keys of open clients, in every form ``_scrub`` knows, from log records of
    httpx, httpcore, aiohttp and videojobs: the message, and the traceback when there is one.

    httpcore's DEBUG trace logs response headers as they come, and a proxy may echo the
    Authorization header in one. The filter sits on those libraries' loggers; it costs
    nothing unless a DEBUG record is made, since they check ``isEnabledFor`` first.
    """

    LOGGERS: Final = (  # a logger's filters see only the records made on it, not its children's
        "videojobs",
        "videojobs.celery",
        "httpx",
        "httpcore.connection",
        "httpcore.http11",
        "httpcore.http2",
        "httpcore.proxy",
        "httpcore.socks",
        "aiohttp.client",
        "aiohttp.internal",
    )

    def __init__(self) -> None:
        self._keys: collections.Counter[str] = collections.Counter()
        self._secrets = Scrubber(())
        self._lock = threading.Lock()
        self._installed = False
        self._warned: set[str] = set()

    def add(self, key: str) -> None:
        """Redact ``key`` from now on (until as many ``discard`` as ``add``); a key too short to
        scrub is said once per process, on the ``videojobs`` logger (without the key)."""
        import logging  # on the first client's first vendor, not on import videojobs

        with self._lock:
            self._keys[key] += 1
            self._secrets = Scrubber(self._keys)
            if not self._installed:
                for name in self.LOGGERS:
                    logging.getLogger(name).addFilter(self)
                self._installed = True
            warn = not scrubbable(key) and key not in self._warned
            self._warned.add(key)
        if warn:
            logging.getLogger("videojobs").warning(
                "an API key shorter than %d characters (length %d) is too short to scrub: it is sent "
                "as is, but an answer, error or log line that echoes it shows it",
                MIN_SCRUBBABLE,
                len(key),
            )

    def discard(self, key: str) -> None:
        with self._lock:
            self._keys[key] -= 1
            if self._keys[key] <= 0:
                del self._keys[key]
            self._secrets = Scrubber(self._keys)

    def scrub(self, text: str) -> str:
        """``text`` without the key of any open client, in any form an echo takes."""
        return self._secrets.scrub(text)

    def filter(self, record: logging.LogRecord) -> bool:  # logging accepts any object with filter()
        secrets = self._secrets
        message = record.getMessage()
        scrubbed = secrets.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            import logging

            # Formatters keep exc_text as it is set here: the traceback (and its causes) scrubbed
            record.exc_text = secrets.scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = secrets.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = secrets.scrub(record.stack_info)
        return True


LOG_SCRUBBER: Final = LogScrubber()


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
        head = b"".join(self._chunks)[: _SNIPPET * 4 + _ECHO_MARGIN]  # cut to _SNIPPET * 4 once scrubbed
        raise MalformedResponseError(
            f"the answer is larger than max_response_bytes ({self.limit:,} bytes, decoded); not read further",
            vendor=self.vendor,
            raw=head,
        )

    def _corrupt(self) -> MalformedResponseError:
        return MalformedResponseError(
            "the answer claims a compressed Content-Encoding but does not decode", vendor=self.vendor
        )


class Exchange:
    """One answer, read whole and bounded: status, headers and the decoded (scrubbed) body."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"Exchange(status_code={self.status_code}, body={len(self.body)} bytes)"


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
        # A response made in memory (httpx.MockTransport, a test's handler) was read and decoded
        # by httpx when it was built: its content is already decoded, whatever its headers say.
        consumed = response.is_stream_consumed
        encoding = "identity" if consumed else response.headers.get("content-encoding", "")
        self.started(response.status_code, response.headers, encoding)
        if consumed:
            self.reader.feed(response.content)

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
            exc.raw = None if exc.raw is None else self.secrets.scrub_bytes(exc.raw)[: _SNIPPET * 4]


def exchange_sync(
    http: httpx.Client, kwargs: Mapping[str, Any], deadline: float, limit: int, secrets: Secrets, vendor: str
) -> Exchange:
    """Send one request and read its answer, all of it by ``deadline`` (``time.monotonic()``)."""
    with _Attempt(deadline, limit, secrets, vendor) as attempt:
        response = http.send(attempt.request(http, kwargs), stream=True)
        try:
            attempt.started_httpx(response)
            for chunk in () if response.is_stream_consumed else response.iter_raw():
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
                if not response.is_stream_consumed:
                    async for chunk in response.aiter_raw():
                        attempt.feed(chunk)
            finally:
                await response.aclose()
    return attempt.exchange()


async def exchange_aiohttp(
    lane: Any, kwargs: Mapping[str, Any], deadline: float, limit: int, secrets: Secrets, vendor: str
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


# --- translation (pure) ---------------------------------------------------------------------------


def translate(adapter: VendorAdapter, task_id: str, answer: Exchange) -> JobStatus:
    """The JobStatus an answer stands for, or the typed error (raised ``from`` its cause)."""
    import json  # sys.modules after the first call

    vendor, status_code, raw = adapter.name, answer.status_code, answer.body
    if not 200 <= status_code < 300:
        raise api_error(vendor, status_code, raw, answer.headers)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MalformedResponseError(
            f"task {task_id}: the answer is not JSON: {snippet(raw)!r}", vendor=vendor, status_code=status_code, raw=raw
        ) from exc
    fields = Fields(millis=adapter.millis)
    try:
        envelope = adapter.check_envelope(body)
        if envelope is not None:
            raise envelope_api_error(vendor, envelope, status_code, raw, answer.headers)
        model = parse_model(adapter.model, body, fields)
        status = adapter.to_status(task_id, model, fields)
    except Unreadable as exc:
        raise MalformedResponseError(
            f"task {task_id}: no readable state: {exc}", vendor=vendor, status_code=status_code, raw=raw
        ) from exc
    except PARSE_ERRORS as exc:
        raise MalformedResponseError(
            f"task {task_id}: the answer could not be mapped ({type(exc).__name__})",
            vendor=vendor,
            status_code=status_code,
            raw=raw,
        ) from exc
    hint = answer.headers.get(POLL_AFTER_HEADER)
    poll_after = None if hint is None else poll_after_seconds(hint)
    if fields.problems or poll_after is not None:
        status = attrs.evolve(status, problems=fields.problems, poll_after=poll_after)
    return status


def poll_after_seconds(header: str) -> float | None:
    """``openai-poll-after-ms`` in seconds; None when it is not a sane number."""
    try:
        ms = float(header)
    except ValueError:
        return None
    return ms / 1000.0 if 0 <= ms < 3_600_000 else None


_BY_STATUS: Mapping[int, type[APIError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    429: RateLimitError,
}


def error_class(status_code: int) -> type[APIError]:
    """The APIError subclass for an HTTP status (or a status-like vendor code)."""
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIError)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), at most MAX_RETRY_AFTER.
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()[:64]
    try:
        seconds = float(value)
    except ValueError:
        import email.utils  # the HTTP-date form is rare: keep it off the import path

        try:
            when = email.utils.parsedate_to_datetime(value)
            seconds = when.timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def error_details(body: Any) -> tuple[str | None, str | None]:
    """``(code, message)`` from a vendor's error body, whichever documented shape it has.

    Vozo: ``{code, message}``; ezmodel (OpenAI): ``{error: {code, message}}``;
    JimmyAI: ``{code, msg}``; anything else: ``message``/``msg``/``detail``/``error`` strings.
    """
    if not isinstance(body, Mapping):
        return None, None
    inner = body.get("error")
    if isinstance(inner, Mapping):
        return _opt_str(inner.get("code") or inner.get("type")), _opt_str(inner.get("message"))
    message = next((body[k] for k in ("message", "msg", "detail", "error") if isinstance(body.get(k), str)), None)
    return _opt_str(body.get("code")), message


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)[:_SNIPPET]


def snippet(raw: bytes) -> str:
    text = raw[: _SNIPPET * 4].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return text[:_SNIPPET] + ("…" if len(text) > _SNIPPET else "")


def api_error(vendor: str, status_code: int, raw: bytes, headers: Mapping[str, str]) -> APIError:
    """The typed error for a non-2xx answer, with the vendor's code and message when its body has them."""
    import json

    try:
        body = json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        body = None
    code, message = error_details(body)
    if message is None:
        reason = httpx.codes.get_reason_phrase(status_code) or "non-standard status"
        message = f"HTTP {status_code} {reason}" + (f": {snippet(raw)}" if raw and body is None else "")
        if 300 <= status_code < 400:
            message += " (redirects are not followed, so that the key never travels elsewhere)"
    return make_api_error(error_class(status_code), message, vendor, status_code, code, raw, headers)


def envelope_api_error(
    vendor: str, exc: EnvelopeError, status_code: int, raw: bytes, headers: Mapping[str, str]
) -> APIError:
    cls = error_class(exc.status_hint) if exc.status_hint else APIError
    return make_api_error(cls, exc.message, vendor, status_code, exc.code, raw, headers)


def make_api_error(
    cls: type[APIError],
    message: str,
    vendor: str,
    status_code: int,
    code: str | None,
    raw: bytes,
    headers: Mapping[str, str],
) -> APIError:
    """The one factory of APIErrors: a RateLimitError also gets its Retry-After."""
    if cls is RateLimitError:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return RateLimitError(
            message, vendor=vendor, status_code=status_code, code=code, raw=raw, retry_after=retry_after
        )
    return cls(message, vendor=vendor, status_code=status_code, code=code, raw=raw)
