"""Translation, pure: a vendor's answer (status code, headers, bytes) in, a ``JobStatus`` or a typed
``VideoJobsError`` out, via the vendor's generated model and its adapter.

No I/O: the answer was read, bounded and scrubbed of the vendor's key by ``_exchange`` before
anything here sees it. :func:`translate` is the one place an answer becomes a status; the
error helpers (:func:`api_error`, :func:`parse_retry_after`) are the one place a non-2xx
answer, or a 2xx envelope that says "error", becomes its :class:`APIError` subclass.
"""

from __future__ import annotations

import json  # already loaded by httpx: no import cost
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import httpx

from ._adapter import (
    PARSE_ERRORS,
    EnvelopeError,
    Fields,
    ForeignAnswer,
    Unreadable,
    VendorAdapter,
    check_echo,
    parse_model,
)
from ._exceptions import (
    APIError,
    AuthenticationError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from ._status import JobStatus

__all__ = [
    "SNIPPET",
    "Exchange",
    "api_error",
    "parse_retry_after",
    "snippet",
    "translate",
]

MAX_RETRY_AFTER: Final = 24 * 3600.0
"""A Retry-After beyond a day is read as a day: no call or wait sleeps longer than its own budget anyway."""

POLL_AFTER_HEADER: Final = "openai-poll-after-ms"
"""OpenAI-compatible servers' hint, in milliseconds, honoured on every poll that sends it."""

SNIPPET: Final = 200  # characters of a non-JSON body quoted in a message

_NUMBER: Final = re.compile(r"[0-9.eE+-]{1,24}|nan|inf|-inf", re.IGNORECASE)
"""A header value quoted in a problem: what reads as a number. Headers are not scrubbed of the
client's keys (only bodies are), so any other value is described, never shown."""


def _as_is(text: str) -> str:
    return text


def _keep() -> None:
    """An answer whose connection is not known (a handler that built it in memory): nothing to drop."""


class Exchange:
    """One answer, read whole and bounded: status, headers and the decoded (scrubbed) body.

    ``quote`` passes the vendor's words an error's message quotes (its message and code, a
    snippet of its body): the scrubber that read the answer, which in an exception's text also
    takes out pieces of a key ("Incorrect API key provided: sk-proj-Ab3dEf...", a vendor's
    error quoting the start of the key it refused; the body itself holds no whole key).

    ``drop`` makes sure the connection that carried the answer carries no other request's: called
    when the answer could not be read as the status asked for (another job's, one a proxy or
    server left on a kept-alive connection; or no status at all), as what else that connection
    holds would be read as the next request's answer. Where the exchange cannot reach its
    connection (aiohttp's, released to its pool as the last byte came), it does nothing."""

    __slots__ = ("body", "drop", "headers", "quote", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str],
        body: bytes,
        quote: Callable[[str], str] = _as_is,
        drop: Callable[[], None] | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body
        self.quote = quote
        self.drop = drop or _keep

    def __repr__(self) -> str:
        return f"Exchange(status_code={self.status_code}, body={len(self.body)} bytes)"


def translate(adapter: VendorAdapter, task_id: str, answer: Exchange) -> JobStatus:
    """The JobStatus an answer stands for, or the typed error (raised ``from`` its cause)."""
    vendor, status_code, raw = adapter.name, answer.status_code, answer.body
    if not 200 <= status_code < 300:
        raise api_error(vendor, status_code, raw, answer.headers, answer.quote)
    try:
        body, unpaired = loads_counting(raw)
    except UnicodeDecodeError as exc:
        raise MalformedResponseError(
            f"task {task_id}: the answer is not UTF-8 (JSON between systems is, RFC 8259 8.1): "
            f"{answer.quote(snippet(raw))!r}",
            vendor=vendor,
            status_code=status_code,
            raw=raw,
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise MalformedResponseError(
            f"task {task_id}: the answer is not JSON: {answer.quote(snippet(raw))!r}",
            vendor=vendor,
            status_code=status_code,
            raw=raw,
        ) from exc
    fields = Fields(millis=adapter.millis)
    if unpaired:
        fields.problems.append(
            f"the answer held {unpaired} unpaired surrogate(s) (escaped halves of a UTF-16 pair, alone: no "
            "UTF-8 text can hold one); each is U+FFFD here"
        )
    try:
        envelope = adapter.check_envelope(body)
        if envelope is not None:
            raise envelope_api_error(vendor, envelope, status_code, raw, answer.headers, answer.quote)
        check_echo(getattr(adapter, "echoed_id", ()), task_id, body, fields)  # a plugin's from before it
        model = parse_model(adapter.model, body, fields)
        status = adapter.to_status(task_id, model, fields)
    except ForeignAnswer as exc:
        exc.args = (answer.quote(str(exc)),)  # the id it names, scrubbed as the message's (a traceback prints it)
        raise MalformedResponseError(
            f"task {task_id}: the answer is for another job ({answer.quote(str(exc))}), not this one's status: an "
            "answer out of step with its request (one a proxy or server left on a kept-alive connection)",
            vendor=vendor,
            status_code=status_code,
            raw=raw,
        ) from exc
    except Unreadable as exc:
        raise MalformedResponseError(
            f"task {task_id}: no readable state: {answer.quote(str(exc))}",
            vendor=vendor,
            status_code=status_code,
            raw=raw,
        ) from exc
    except PARSE_ERRORS as exc:
        raise MalformedResponseError(
            f"task {task_id}: the answer could not be mapped ({type(exc).__name__})",
            vendor=vendor,
            status_code=status_code,
            raw=raw,
        ) from exc
    if status.task_id != task_id or status.vendor != vendor:  # an adapter's slip (a plugin's): the job asked about
        fields.problems.append(
            f"the adapter named the job {status.vendor!r}:{status.task_id!r}; it is the one asked about, "
            f"{vendor!r}:{task_id!r}"
        )
        status = attrs.evolve(status, vendor=vendor, task_id=task_id)
    hint = answer.headers.get(POLL_AFTER_HEADER)
    poll_after = None if hint is None else poll_after_seconds(hint)
    if hint is not None and poll_after is None:  # quoted only when it is a number: a header may echo a key
        said = repr(hint) if _NUMBER.fullmatch(hint) else f"a value of {len(hint)} characters"
        fields.problem(POLL_AFTER_HEADER, f"{said} is not milliseconds from 0 to an hour; ignored")
    if fields.problems or poll_after is not None:
        status = attrs.evolve(status, problems=fields.named(), poll_after=poll_after)
    return status


def loads(raw: bytes) -> Any:
    """An answer's JSON (see :func:`loads_counting`)."""
    return loads_counting(raw)[0]


def loads_counting(raw: bytes) -> tuple[Any, int]:
    """An answer's JSON, read as UTF-8 (a leading BOM allowed) and nothing else: ``json.loads``
    given bytes would also take UTF-16 and UTF-32, whose bytes hide a key from the scrubber (it
    runs on the bytes, before this) and whose decoded text would show it. With how many unpaired
    surrogates it held (see :func:`_paired`)."""
    text = raw.decode("utf-8-sig")
    try:
        body = json.loads(text)
    except ValueError:  # broken JSON, or an integer past Python's digit limit (4,300: it refuses to read it)
        body = json.loads(text, parse_int=_int_or_float)  # the first, again; the second costs its field only
    if "\\ud" in text or "\\uD" in text:  # a \uD800-\uDFFF escape: a pair (an emoji), or maybe none
        return _paired(body)
    return body, 0


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _paired(body: Any) -> tuple[Any, int]:
    """``body`` with each unpaired surrogate (a ``\\ud800`` escape with no partner: JSON's
    grammar takes it, no UTF-8 writer does) replaced by U+FFFD, and how many there were. Kept,
    one in an error message made the CLI's ``--json`` line unreadable to jq (and the jobs after
    it lost) and ``print()`` raise UnicodeEncodeError. Walked without recursion: an answer may
    nest 100,000 deep."""
    count = 0

    def clean(text: str) -> str:
        nonlocal count
        fixed, n = _SURROGATE.subn("\ufffd", text)
        count += n
        return fixed

    if isinstance(body, str):
        return clean(body), count
    stack: list[Any] = [body] if isinstance(body, (dict, list)) else []
    while stack:
        node = stack.pop()
        items: list[tuple[Any, Any]]
        if isinstance(node, dict):
            items = list(node.items())
            if any(_SURROGATE.search(k) for k, _ in items):  # JSON's keys are strings
                node.clear()
                node.update((clean(k), v) for k, v in items)
                items = list(node.items())
        else:
            items = list(enumerate(node))
        for key, value in items:
            if isinstance(value, str):
                if _SURROGATE.search(value):
                    node[key] = clean(value)
            elif isinstance(value, (dict, list)):
                stack.append(value)
    return body, count


def _int_or_float(digits: str) -> int | float:
    """An integer's digits as an int, or, past Python's limit on digits, as a float (inf): a field
    that reads it finds it out of range, and the answer is read."""
    try:
        return int(digits)
    except ValueError:
        return float(digits)


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


_SECONDS: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
"""Retry-After's delta-seconds (RFC 9110: ASCII digits), with a fraction some vendors send.
Not what else ``float()`` reads: "1_000", "1e3", "inf", or digits of other scripts ("\u0665")."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), at most MAX_RETRY_AFTER.
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()[:64]
    first = value.partition(",")[
        0
    ].strip()  # "1, 1": httpx joins a repeated header; the first, as aiohttp's get() gives it
    if _SECONDS.fullmatch(first):
        seconds = float(first)
    else:  # an HTTP date (its weekday is followed by a comma), or nothing readable
        import email.utils  # the HTTP-date form is rare: keep it off the import path

        try:
            when = email.utils.parsedate_to_datetime(value)
            seconds = when.timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
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
    return _opt_str(body.get("code")), _opt_str(message)


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)[:SNIPPET]


def snippet(raw: bytes) -> str:
    text = raw[: SNIPPET * 4].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return text[:SNIPPET] + ("…" if len(text) > SNIPPET else "")


def api_error(
    vendor: str, status_code: int, raw: bytes, headers: Mapping[str, str], quote: Callable[[str], str] = _as_is
) -> APIError:
    """The typed error for a non-2xx answer, with the vendor's code and message when its body has
    them (passed through ``quote``: see :class:`Exchange`)."""
    try:
        body = loads(raw) if raw else None
    except (ValueError, RecursionError):  # UnicodeDecodeError too: the message then quotes the bytes
        body = None
    code, message = error_details(body)
    if message is None:
        reason = httpx.codes.get_reason_phrase(status_code) or "non-standard status"
        message = f"HTTP {status_code} {reason}" + (f": {snippet(raw)}" if raw and body is None else "")
        if 300 <= status_code < 400:
            message += " (redirects are not followed, so that the key never travels elsewhere)"
    code = None if code is None else quote(code)
    return make_api_error(error_class(status_code), quote(message), vendor, status_code, code, raw, headers)


def envelope_api_error(
    vendor: str,
    exc: EnvelopeError,
    status_code: int,
    raw: bytes,
    headers: Mapping[str, str],
    quote: Callable[[str], str] = _as_is,
) -> APIError:
    cls = error_class(exc.status_hint) if exc.status_hint else APIError
    code = _opt_str(exc.code)
    code = None if code is None else quote(code)
    return make_api_error(cls, quote(exc.message[:SNIPPET]), vendor, status_code, code, raw, headers)


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
