"""Every error videojobs raises, and the one place backend errors are translated.

Our exception hierarchy::

    VideoJobsError                  every error below; carries vendor, status_code, code, message, raw
    ├── UsageError                  (also a ValueError) refused before any request is sent
    │   ├── InvalidReferenceError   a bad "<vendor>:<task id>" or task id ("", ".", "..")
    │   └── ConfigurationError      unknown vendor, missing API key, bad base URL
    ├── APIError                    the vendor answered with an error (4xx, or an envelope error on 200)
    │   ├── AuthenticationError     401, 403
    │   ├── NotFoundError           404
    │   ├── RateLimitError          429; retry_after from the Retry-After header
    │   └── ServerError             5xx, non-standard codes (520) included
    ├── MalformedResponseError      not JSON, or not the shape the spec promises; raw bytes kept
    ├── NetworkError                connection failures and timeouts (after retries)
    ├── WaitTimeout                 Client.wait() reached its deadline; carries last_status
    └── JobFailedError              JobStatus.raise_for_failure() on a failed or canceled job

No exception, message or repr ever contains an API key: messages are built from the
vendor's answer and our own words, never from request headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from ._status import JobStatus

__all__ = [
    "TRANSIENT",
    "APIError",
    "AuthenticationError",
    "ConfigurationError",
    "InvalidReferenceError",
    "JobFailedError",
    "MalformedResponseError",
    "NetworkError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "UsageError",
    "VideoJobsError",
    "WaitTimeout",
]

_SNIPPET = 200  # characters of a non-JSON body quoted in a message


class VideoJobsError(Exception):
    """Base of every videojobs error."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        raw: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.vendor = vendor
        self.status_code = status_code
        self.code = code
        self.raw = raw  # the vendor's answer, byte for byte, when there was one
        self.ref: str | None = None  # "<vendor>:<task id>", set when the error ended a wait in wait_all

    def __str__(self) -> str:
        where = f"{self.vendor}: " if self.vendor else ""
        extra = [f"HTTP {self.status_code}"] if self.status_code is not None else []
        if self.code is not None:
            extra.append(f"code {self.code!r}")
        return f"{where}{self.message}" + (f" ({', '.join(extra)})" if extra else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class UsageError(VideoJobsError, ValueError):
    """The call was refused before any request was sent."""


class InvalidReferenceError(UsageError):
    """A job reference or task id that cannot be sent."""


class ConfigurationError(UsageError):
    """Unknown vendor, missing API key or unusable base URL."""


class APIError(VideoJobsError):
    """The vendor answered with an error."""


class AuthenticationError(APIError):
    """401 or 403: the key is missing, wrong or not allowed."""


class NotFoundError(APIError):
    """404: the vendor does not know this task."""


class RateLimitError(APIError):
    """429: too many requests. ``retry_after`` is in seconds, from the Retry-After header."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx, including non-standard codes such as 520."""


class MalformedResponseError(VideoJobsError):
    """The answer is not JSON, or not the shape the vendor's spec promises. ``raw`` holds it."""


class NetworkError(VideoJobsError):
    """The vendor could not be reached: connection failure or timeout, after retries."""


class WaitTimeout(VideoJobsError):
    """``wait()`` reached its deadline before the job ended. ``last_status`` is the latest answer."""

    def __init__(self, message: str, *, last_status: JobStatus | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.last_status = last_status


class JobFailedError(VideoJobsError):
    """Raised by ``JobStatus.raise_for_failure()``; ``status`` is the failed job."""

    def __init__(self, status: JobStatus) -> None:
        error = status.error
        message = f"job {status.task_id} {status.state.value}" + (f": {error.message}" if error else "")
        super().__init__(message, vendor=status.vendor, code=error.code if error else None)
        self.status = status


TRANSIENT: tuple[type[VideoJobsError], ...] = (NetworkError, ServerError, RateLimitError)
"""What may succeed if asked again: the client retries these, and a wait rides them out."""


# --- translation: one table, one context manager ---------------------------------------------

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
    """Seconds from a Retry-After header: delta-seconds or an HTTP date. None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        import email.utils  # the HTTP-date form is rare: keep it off the import path

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


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
    return str(value)


def snippet(raw: bytes) -> str:
    text = raw[: _SNIPPET * 4].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return text[:_SNIPPET] + ("…" if len(text) > _SNIPPET else "")


def api_error(vendor: str, status_code: int, raw: bytes, headers: Mapping[str, str]) -> APIError:
    """The typed error for a non-2xx answer, with the vendor's code and message when its body has them."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    code, message = error_details(body)
    if message is None:
        reason = httpx.codes.get_reason_phrase(status_code) or "non-standard status"
        message = f"HTTP {status_code} {reason}" + (f": {snippet(raw)}" if raw and body is None else "")
    cls = error_class(status_code)
    if cls is RateLimitError:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return RateLimitError(
            message, vendor=vendor, status_code=status_code, code=code, raw=raw, retry_after=retry_after
        )
    return cls(message, vendor=vendor, status_code=status_code, code=code, raw=raw)


# The last response an adapter's httpx client received, in this thread or task. The
# generated clients raise (ValueError for HTTPStatus(520), JSONDecodeError, KeyError from
# from_dict) after reading the answer and before handing it back; a response event hook
# records it here so that the translation below can keep the answer on the exception.
last_response: ContextVar[httpx.Response | None] = ContextVar("videojobs_last_response", default=None)


def remember_response(response: httpx.Response) -> None:
    last_response.set(response)


async def aremember_response(response: httpx.Response) -> None:
    last_response.set(response)


class translating:
    """Translate what a generated ``*_detailed`` call raises into our hierarchy, ``from`` the cause.

    ``on_unparsable(response, exc)`` decides what an answer the generated client could not
    parse stands for (an API error by status, a vendor envelope error, or malformed).
    A class rather than a generator: it runs around every request.
    """

    __slots__ = ("on_unparsable", "vendor")

    def __init__(self, vendor: str, on_unparsable: Callable[[httpx.Response, BaseException], VideoJobsError]) -> None:
        self.vendor = vendor
        self.on_unparsable = on_unparsable

    def __enter__(self) -> None:
        last_response.set(None)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        if isinstance(exc, httpx.TimeoutException):
            raise NetworkError(f"request timed out ({type(exc).__name__})", vendor=self.vendor) from exc
        if isinstance(exc, httpx.TransportError):
            raise NetworkError(f"could not reach the vendor: {type(exc).__name__}: {exc}", vendor=self.vendor) from exc
        if isinstance(exc, (ValueError, TypeError, KeyError, AttributeError)):
            response = last_response.get()
            if response is not None:
                raise self.on_unparsable(response, exc) from exc
