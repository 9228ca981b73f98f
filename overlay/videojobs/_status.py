"""The one status protocol: what every vendor's answer becomes, and the two errors that carry one
(:class:`WaitTimeout`, :class:`JobFailedError`: part of ``_exceptions``' hierarchy, defined here
so that the errors stand below the status and nothing runs back up)."""

from __future__ import annotations

import enum
import numbers
import reprlib
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs

from ._exceptions import UsageError, VideoJobsError

__all__ = [
    "Download",
    "DownloadProgress",
    "JobError",
    "JobFailedError",
    "JobStatus",
    "State",
    "WaitTimeout",
    "outcome_dict",
]


class State(enum.StrEnum):
    """A job's state, the same words for every vendor (values are the lower-case names)."""

    QUEUED = enum.auto()
    RUNNING = enum.auto()
    SUCCEEDED = enum.auto()
    FAILED = enum.auto()
    CANCELED = enum.auto()
    UNKNOWN = enum.auto()

    @property
    def is_terminal(self) -> bool:
        """True once the job will not change any more (succeeded, failed or canceled)."""
        return self in _TERMINAL


_TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED})


def _to_tuple(items: Iterable[str]) -> tuple[str, ...]:
    """A list of strings as a tuple; one string is refused (its characters would each be an item)."""
    # most answers' problems, and every unfinished job's URLs (the type first: an array's == is elementwise)
    if type(items) is tuple and not items:
        return items
    if isinstance(items, (str, bytes)):
        raise UsageError(
            f"video_urls and problems are lists of strings, not one {type(items).__name__} "
            f"({reprlib.repr(items)}): wrap it in a list"
        )
    try:
        kept = tuple(items)
    except TypeError:
        raise UsageError(f"video_urls and problems are lists of strings, not {reprlib.repr(items)}") from None
    if not all(isinstance(item, str) for item in kept):
        raise UsageError(f"video_urls and problems are lists of strings, not {reprlib.repr(kept)}")
    return kept


def _to_state(value: State | str) -> State:
    """A :class:`State`, or one of its values (``"succeeded"``: a status rebuilt from ``to_dict()``)."""
    if type(value) is State:
        return value
    try:
        return State(value)
    except ValueError:
        raise UsageError(
            f"state must be a videojobs.State or one of {', '.join(s.value for s in State)}, not {value!r}"
        ) from None


def _to_progress(value: float | None) -> float | None:
    """A progress as a float (any real number: numpy's, a Decimal, a Fraction), so ``to_dict()``
    is JSON; a bool, a string or a number outside 0.0-1.0 is a UsageError."""
    if value is None:
        return None
    if isinstance(value, numbers.Number) and not isinstance(value, (bool, complex)):
        progress = float(value)
        if 0.0 <= progress <= 1.0:
            return progress
    raise UsageError(f"progress must be a number between 0.0 and 1.0, not {reprlib.repr(value)}")


def _check_aware(instance: object, attribute: attrs.Attribute[datetime | None], value: datetime | None) -> None:
    if value is None:
        return
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise UsageError(f"{attribute.name} must be a timezone-aware datetime, not {reprlib.repr(value)}")


@attrs.frozen(kw_only=True)
class JobError:
    """Why a job failed, in the vendor's words."""

    code: str | None = None
    message: str


@attrs.frozen(kw_only=True)
class DownloadProgress:
    """Handed to ``on_progress`` as a file's bytes arrive (about once per network read)."""

    ref: str
    path: Path
    done: int
    total: int | None
    resumed_from: int = 0


@attrs.frozen(kw_only=True)
class Download:
    """A job's video saved to disk, complete and checked (see ``Client.download``)."""

    path: Path
    bytes: int
    sha256: str
    content_type: str | None
    url_host: str
    """The file host the bytes came from (after redirects); never the URL, whose query may be a signature."""
    resumed_from: int = 0
    """Bytes kept from an earlier ``.part`` (0 when the file was fetched whole)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "url_host": self.url_host,
            "resumed_from": self.resumed_from,
        }


def _to_downloads(items: Iterable[Download]) -> tuple[Download, ...]:
    return tuple(items)


@attrs.frozen(kw_only=True)
class JobStatus:
    """One vendor's answer about one job, normalized.

    ``raw`` is the vendor's own typed model (from the generated client): nothing the
    vendor said is lost. It takes no part in equality and is left out of ``repr()``.

    What the fields mean, for every vendor (a status read from an answer keeps these; one
    built by hand is taken as given):

    - ``error`` is set only on failed and canceled jobs.
    - ``video_urls`` holds only absolute http(s) URLs, and only on a succeeded job. A URL in
      an answer about a job in any other state (unknown included) is left out of
      ``video_urls`` (and of ``to_dict()``) and named in ``problems``, as is a video field
      that is not a URL (``""``, ``"ftp://x"``, ``"/relative"``), and a URL the answer lists
      again (one video); the vendor's words stay in ``raw``.
    - ``video_id`` is the vendor's id of the video (Colossyan's ``videoId``), on any state:
      Colossyan provisions it when the job starts.
    - ``has_video`` is True only on a succeeded job with a video URL or a video id. A
      succeeded job without one is named in ``problems`` (``"video: the job succeeded but
      ..."``).
    - ``progress`` is 0.0-1.0, 1.0 on a succeeded job; a vendor value outside its documented
      range (by any amount) is None and named in ``problems``, never clamped.
    """

    vendor: str
    task_id: str
    state: State = attrs.field(converter=_to_state)
    vendor_state: str = ""
    progress: float | None = attrs.field(default=None, converter=_to_progress)
    video_urls: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)
    video_id: str | None = None
    error: JobError | None = None
    created_at: datetime | None = attrs.field(default=None, validator=_check_aware)
    updated_at: datetime | None = attrs.field(default=None, validator=_check_aware)
    completed_at: datetime | None = attrs.field(default=None, validator=_check_aware)
    expires_at: datetime | None = attrs.field(default=None, validator=_check_aware)
    problems: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple, eq=False)
    """Fields of the answer that were missing, out of range or of the wrong type, and so left
    as None or out (e.g. ``"progress: expected a number, got a string"``), and what the answer
    lacks for what it says (a succeeded job without a video). Empty for a clean answer."""
    raw: Any = attrs.field(default=None, eq=False, repr=False)
    poll_after: float | None = attrs.field(default=None, eq=False, repr=False)
    """Seconds the vendor asked us to wait before polling again (``openai-poll-after-ms``)."""
    downloads: tuple[Download, ...] = attrs.field(default=(), converter=_to_downloads, eq=False)
    """The job's videos on disk, when a wait or ``download_all`` saved them (``dest=``)."""

    @property
    def ref(self) -> str:
        """The ``"<vendor>:<task id>"`` reference that ``Client.status()`` takes."""
        return f"{self.vendor}:{self.task_id}"

    @property
    def video_url(self) -> str | None:
        """The first video URL, or None."""
        return self.video_urls[0] if self.video_urls else None

    @property
    def is_terminal(self) -> bool:
        """True once the job will not change any more."""
        return self.state.is_terminal

    @property
    def has_video(self) -> bool:
        """True when the job succeeded and points at a video: a URL or (Colossyan) a video id."""
        return self.state is State.SUCCEEDED and (bool(self.video_urls) or self.video_id is not None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the normalized fields (times as ISO 8601; ``raw`` left out)."""

        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "ref": self.ref,
            "vendor": self.vendor,
            "task_id": self.task_id,
            "state": self.state.value,
            "vendor_state": self.vendor_state,
            "progress": self.progress,
            "video_urls": list(self.video_urls),
            "video_id": self.video_id,
            "has_video": self.has_video,
            "error": None if self.error is None else {"code": self.error.code, "message": self.error.message},
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "completed_at": iso(self.completed_at),
            "expires_at": iso(self.expires_at),
            "problems": list(self.problems),
            "downloads": [d.to_dict() for d in self.downloads],
        }

    def raise_for_failure(self) -> JobStatus:
        """Raise :class:`JobFailedError` unless the job succeeded or is still going; return self."""
        if self.state in (State.FAILED, State.CANCELED):
            raise JobFailedError(self)
        return self


class WaitTimeout(VideoJobsError):
    """A wait reached its deadline before the job ended.

    ``last_status`` is the latest answer (None if no poll succeeded); ``__cause__`` is the
    last transient error, when the last poll failed.
    """

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
        self.ref = status.ref  # the job it is about, as every error a wait ends with carries it
        self.last_status = status


def outcome_dict(ref: str, result: JobStatus | VideoJobsError) -> dict[str, Any]:
    """How a job's wait ended, as JSON-ready data of one shape whatever the outcome: the CLI's
    ``--json`` lines and the Celery callback's payload.

    Every key of :meth:`JobStatus.to_dict` (from the job's last status: the result itself, or
    the error's ``last_status``, with the videos saved before a download failed; ``state`` None
    when no answer was ever read), plus ``"exception"``: None, or the ``VideoJobsError`` that
    ended the wait as its ``to_dict()``.
    """
    status = result if isinstance(result, JobStatus) else result.last_status
    if status is not None:
        body = status.to_dict()
    else:  # the keys of a status, from a status: no list of them to keep in step by hand
        vendor, _, task_id = ref.partition(":")
        body = JobStatus(vendor=vendor, task_id=task_id, state=State.UNKNOWN).to_dict()
        body.update(state=None, vendor_state=None)
    body["ref"] = ref
    body["exception"] = None if isinstance(result, JobStatus) else result.to_dict()
    return body
