r"""Every error videojobs raises (definitions only: translation lives in ``_translate``).

Our exception hierarchy::

    VideoJobsError                  every error below; carries vendor, status_code, code, message, raw
    ├── UsageError                  (also a ValueError) refused before any request is sent
    │   ├── InvalidReferenceError   a bad "<vendor>:<task id>" or task id ("", ".", "..")
    │   └── ConfigurationError      unknown vendor, missing or unusable API key, bad base URL
    ├── APIError                    the vendor answered with an error (4xx, or an envelope error on 200)
    │   ├── AuthenticationError     401, 403
    │   ├── NotFoundError           404
    │   ├── RateLimitError          429; retry_after from the Retry-After header
    │   └── ServerError             5xx, non-standard codes (520) included
    ├── MalformedResponseError      not JSON, too large, no readable state, or another job's answer
    │                               (the id it repeats is not the one asked); raw bytes kept
    ├── NetworkError                connection failures, timeouts, the call's deadline, a download cut
    │                               short (after retries and resumes: its .part is kept)
    ├── WaitTimeout                 a wait reached its deadline; carries last_status (cause: last error) *
    ├── CallbackError               the caller's own code (on_update, a policy) raised during a wait
    ├── JobFailedError              JobStatus.raise_for_failure() on a failed or canceled job *
    └── DownloadError               a video could not be saved (no URL, an error page, an empty body,
        │                           the file exists); no file is left under the final name
        └── LinkExpiredError        the link expired and the vendor handed out no fresh one; expires_at

\* defined in ``_status``, beside the :class:`JobStatus` they carry: this module is the floor
everything else stands on, and imports nothing of videojobs but ``_text`` (pure, a floor too).

``str()`` and ``repr()`` of an error are for people (a log, a terminal, a traceback): a vendor's
words in them (an envelope's message, a state word, a URL) pass through ``_text.printable``, so
an ``ESC`` sequence or a newline a vendor sent is shown as ``\x1b`` or ``\n``, never acted on
by the terminal that shows the log, nor forging a line of it. ``message`` and ``to_dict()`` keep
the text exact: they are data.

No exception, message or repr contains an API key: messages are built from the vendor's
answer (scrubbed of the client's keys before anything reads it) and our own words, never
from request headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._text import printable

if TYPE_CHECKING:
    from datetime import datetime

    from ._status import JobStatus

__all__ = [
    "TRANSIENT",
    "APIError",
    "AuthenticationError",
    "CallbackError",
    "ConfigurationError",
    "DownloadError",
    "InvalidReferenceError",
    "LinkExpiredError",
    "MalformedResponseError",
    "NetworkError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "UsageError",
    "VideoJobsError",
]


class VideoJobsError(Exception):
    """Base of every videojobs error."""

    last_status: JobStatus | None = None  # (an error pickled by an older videojobs has none of its own)

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
        self.raw = raw  # the vendor's answer (bounded, keys scrubbed), when there was one
        self.ref: str | None = None  # "<vendor>:<task id>", set when the error ended a wait in wait_all
        # the job's last status read, when the error came after one: a wait's (WaitTimeout), a
        # failed job's (JobFailedError), a job whose videos could not all be saved (its saved
        # ones in ``downloads``: a later call skips nothing, so this is where they are told)
        self.last_status: JobStatus | None = None

    def __str__(self) -> str:
        where = f"{self.vendor}: " if self.vendor else ""
        extra = [f"HTTP {self.status_code}"] if self.status_code is not None else []
        if self.code is not None:
            extra.append(f"code {self.code!r}")
        return printable(f"{where}{self.message}" + (f" ({', '.join(extra)})" if extra else ""))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON-ready data: what the CLI's ``--json`` and the Celery callback's payload
        carry as ``"exception"``. The vendor's raw answer stays on the exception (``raw``)."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "vendor": self.vendor,
            "ref": self.ref,
            "status_code": self.status_code,
            "code": self.code,
            **self._details(),
        }

    def _details(self) -> dict[str, Any]:
        """What a kind of error adds to :meth:`to_dict` (``retry_after``, ``errno`` ...)."""
        return {}

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (multiprocessing, Celery's pickle serializer) and copied whole, whatever the
        kind's ``__init__`` takes: Python rebuilds an exception as ``cls(*args)``, from the
        message alone, which ``WaitTimeout`` (``last_status=``) and ``JobFailedError`` (a
        status) do not take; a process pool's result thread died on them."""
        return _rebuilt, (type(self), self.message), self.__dict__


def _rebuilt(cls: type[VideoJobsError], message: str) -> VideoJobsError:
    """An error of ``cls`` with ``message``; its other attributes come back from its state."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


class UsageError(VideoJobsError, ValueError):
    """The call was refused before any request was sent."""


class InvalidReferenceError(UsageError):
    """A job reference or task id that cannot be sent."""


class ConfigurationError(UsageError):
    """Unknown vendor, missing or unusable API key, or unusable base URL."""


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

    def _details(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class ServerError(APIError):
    """5xx, including non-standard codes such as 520."""


class MalformedResponseError(VideoJobsError):
    """Not JSON, larger than ``max_response_bytes``, without a readable state, or naming another job
    than the one asked about (see ``VendorAdapter.echoed_id``). ``raw`` holds it."""


class NetworkError(VideoJobsError):
    """The vendor could not be reached in time: connection failure, timeout or the call's deadline."""


class CallbackError(VideoJobsError):
    """Code the caller handed in (``on_update``, a polling policy) raised; ``__cause__`` is its error.

    It ends the wait of the job it was called for, and only that one.
    """


def callback_errors() -> tuple[type[BaseException], ...]:
    """What a caller's code (a callback, a policy) may raise that ends its wait as a
    :class:`CallbackError`: any ``Exception``, and asyncio's ``CancelledError``, a
    ``BaseException`` that a callback raises by reading a cancelled future. Inside a plain
    callback it can only be such a stray one: a task's own cancellation arrives at an ``await``,
    never within a call that has none (and stays pending for the next one). ``KeyboardInterrupt``
    and ``SystemExit`` go through."""
    import sys

    asyncio: Any = sys.modules.get("asyncio")  # not loaded: nothing can raise its CancelledError
    return (Exception,) if asyncio is None else (Exception, asyncio.CancelledError)


def not_awaited(returned: object) -> None:
    """What a caller's callback returned: a coroutine (from an ``async def``, or a lambda that
    calls one) is closed and refused as a TypeError, which the call site raises as a
    :class:`CallbackError`. Callbacks are called, never awaited: the coroutine would never run.
    A task or future it started (``loop.create_task(...)``) is scheduled already: taken."""
    if returned is None:
        return
    import inspect
    import sys

    asyncio: Any = sys.modules.get("asyncio")  # not loaded: no task or future can exist
    if inspect.isawaitable(returned) and not (asyncio is not None and asyncio.isfuture(returned)):
        close = getattr(returned, "close", None)  # a coroutine of any kind (a compiled one, a generator-based one)
        if callable(close):
            close()  # never run: no "was never awaited" warning
        raise TypeError(
            f"it returned {type(returned).__name__}: a callback is called, never awaited (an async one's "
            "body never runs; from a plain one, start a task with asyncio.get_running_loop().create_task())"
        )


class DownloadError(VideoJobsError):
    """A job's video could not be saved: nothing is left under the final name (a ``.part`` may be,
    for the next call to resume). ``status_code`` is the file host's, when it answered; ``errno``
    the operating system's, when the disk refused (``errno.ENOSPC``, ``EEXIST``, ``EFBIG`` ...).
    ``name_taken`` is True when the video's name is held by something left as it is: a file
    without ``overwrite=True`` (``EEXIST``), a folder (``EISDIR``), a device, FIFO or socket
    (``ENOTSUP``). The job's other videos are still saved then; an errno alone cannot tell (a
    file system without hard links says ``ENOTSUP`` too)."""

    name_taken: bool = False  # (an error pickled by an older videojobs has none of its own)

    def __init__(self, message: str, *, errno: int | None = None, name_taken: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.errno = errno
        self.name_taken = name_taken

    def _details(self) -> dict[str, Any]:
        return {"errno": self.errno, "name_taken": self.name_taken}


class LinkExpiredError(DownloadError):
    """The video's link has expired, and a fresh status call handed out no new one.

    ``expires_at`` is when it expired, as the job's status said (``JobStatus.expires_at``, the same
    name for the same time), else None.
    """

    expires_at: datetime | None = None  # (an error pickled by an older videojobs has none: it said expired_at)

    def __init__(self, message: str, *, expires_at: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.expires_at = expires_at

    def _details(self) -> dict[str, Any]:
        return {**super()._details(), "expires_at": None if self.expires_at is None else self.expires_at.isoformat()}


TRANSIENT: tuple[type[VideoJobsError], ...] = (NetworkError, ServerError, RateLimitError)
"""What may succeed if asked again: the client retries these, and a wait rides them out
(a MalformedResponseError during a wait counts as a failed poll too, see ``_calls``)."""
