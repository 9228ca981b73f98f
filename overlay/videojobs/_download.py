"""Getting a finished job's video onto disk: resumable, checked, and never half-written.

Modelled on huggingface_hub's downloads:

- the bytes go to ``<name>.part`` (with ``<name>.part.json`` noting the first answer's ETag or
  Last-Modified and length); at the end the file is fsynced and linked to its final name, so
  that name only ever holds a complete file, and is never taken from someone else: the link
  fails if the name exists (``overwrite=True`` renames over it). A crash, Ctrl-C or a dropped
  connection leaves the ``.part``; the next attempt (in the same call, up to ``max_retries``
  times, or a later call) asks for the rest with ``Range`` + ``If-Range``, and keeps it only if
  the 206 proves it is the same file (same validator, same total, the range asked for); else
  it starts over: a splice of two versions cannot be reported as done;
- every name is opened in the folder's handle with ``O_NOFOLLOW`` (fresh ones with ``O_EXCL``):
  a link planted at ``<name>.part``, ``<name>.part.json`` or ``<name>`` is never followed;
  every refusal of the disk, also while cleaning up, is a :class:`DownloadError` with its errno;
- a host that stops making progress (under :data:`LOW_SPEED_LIMIT` for a ``timeout``) ends the
  attempt; ``download(timeout=)`` bounds the whole download;
- only an absolute http(s) URL is fetched; names are injective (:func:`file_name`);
- the length must match ``Content-Length`` (``Content-Range`` for a resumed one); an HTML, JSON
  or XML body (an error page sent with 200) is refused, whatever it is called; ``max_bytes``;
- no vendor key travels: the file host gets a plain request (signed URLs need none); a
  redirect is followed at most five times, never from https to http, and never with credentials;
- an expired link (``expires_at`` passed, or 403/404/410 from the file host) costs one fresh
  status call: a new URL is used, the same one is a :class:`LinkExpiredError`.

The rules are here once, without I/O: names (:func:`file_name`), :func:`download_plan` (what
to ask for next), the checks of an answer (:func:`check_head`, :func:`next_hop`), the proof that
a resume is the same file (:func:`same_file`) and the pace (:class:`Pace`). The disk is
``_files``' (:class:`~videojobs._files.Transfer`), the network ``_fetch``'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import unicodedata
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import urljoin, urlsplit

import attrs

from ._adapter import MAX_VENDOR_WORD, not_a_video_url
from ._base import check_flag, check_timeout
from ._exceptions import (
    DownloadError,
    InvalidReferenceError,
    LinkExpiredError,
    NetworkError,
    UsageError,
    VideoJobsError,
)
from ._status import Download, DownloadProgress, JobStatus, State

__all__ = [
    "CHUNK",
    "LOW_SPEED_LIMIT",
    "DownloadProgress",
    "Fetch",
    "FirstAnswer",
    "HostRefused",
    "NeedStatus",
    "Pace",
    "StartOver",
    "check_head",
    "download_plan",
    "file_name",
    "int_or_none",
    "looks_like_a_page",
    "names_a_folder",
    "next_hop",
    "same_file",
]

CHUNK: Final = 1024 * 1024
"""Bytes a blocking download reads from a plain TCP socket at a time (httpcore asks for 64 KiB):
each read is a pass through httpcore, h11 and the write, so 1 MiB takes a 200 MB download's
client CPU from about 200 to 135 ms on the bench machine (raw httpx, same reads)."""
MAX_REDIRECTS: Final = 5
"""As browsers and curl's defaults allow far more, a signed-URL CDN needs one or two."""
EXPIRED_STATUSES: Final = (403, 404, 410)
"""What S3, GCS and CDNs answer for an expired signed URL (S3: 403 AccessDenied "Request has expired")."""
REFUSED_TYPES: Final = ("text/", "application/json", "application/xml", "application/problem+json")
"""Content types that are an error page, not a video, whatever the status says."""
_SNIFF: Final = (b"<!doctype", b"<html", b"<?xml", b"<!--", b"<head", b"<body", b"{", b"[")
_BOMS: Final = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
"""Byte-order marks a page's text may begin with (a Windows server's error page, a UTF-16 one):
what follows one is judged as text. No video begins with the UTF-8 one; the UTF-16 ones could
begin an MPEG audio frame, so those bytes are judged as they are too."""
VIDEO_SUFFIXES: Final = (".mp4", ".mov", ".webm", ".mkv", ".m4v", ".avi", ".gif")
NAME_LIMIT: Final = 120  # characters of a file name we make (most file systems allow 255 bytes)


OnProgress = Callable[[DownloadProgress], object]


# --- names ---------------------------------------------------------------------------------------

_PLAIN: Final = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
"""A task id used as is in a file name: lower-case ASCII letters and digits, single separators
between them. Anything else (upper case, doubled or edge separators, other characters, too long,
or an id ending in ``-<digits>``, the form of a video's index) is shown cleaned up and followed by
``--`` and a hash of the id and index, a mark no plain name contains."""
HASH_HEX: Final = 16  # 64 bits of BLAKE2b: names in one folder do not meet by chance


def _stem(task_id: str, index: int) -> str:
    """The job's part of a file name; injective in (task id, index), also on a case-insensitive disk.

    Plain ids give ``<id>`` or ``<id>-<n>`` (a plain id never ends in ``-<digits>``, so the index
    is read back unambiguously); every other id gives ``<cleaned>[-<n>]--<hash>``, and ``--``
    occurs in no plain name. Two different (id, index) pairs thus never share a stem, up to a
    64-bit hash collision between two non-plain ids, and a pair always gets the same one.
    """
    index_part = f"-{index}" if index else ""
    if len(task_id) <= NAME_LIMIT and _PLAIN.fullmatch(task_id) and not re.search(r"-\d+$", task_id):
        return task_id + index_part
    cleaned = re.sub(r"[^a-z0-9]+", "_", unicodedata.normalize("NFKC", task_id).lower()).strip("_")
    digest = hashlib.blake2b(f"{task_id}\x00{index}".encode(), digest_size=HASH_HEX // 2).hexdigest()
    return f"{cleaned[: NAME_LIMIT - HASH_HEX - 2] or 'video'}{index_part}--{digest}"


def file_name(status: JobStatus, index: int, url: str) -> str:
    """``<vendor>-<task id>[-<n>].<ext>``, safe on every OS: no separator, no dot-leading or
    reserved name can come from an id or a URL (the suffix is one of :data:`VIDEO_SUFFIXES`),
    and two different videos never get the same name (see :func:`_stem`; a vendor slug is a
    lower-case identifier, without ``-``)."""
    suffix = Path(urlsplit(url).path).suffix.lower()
    suffix = suffix if suffix in VIDEO_SUFFIXES else ".mp4"
    return f"{status.vendor}-{_stem(status.task_id, index)}{suffix}"


def names_a_folder(dest: str | os.PathLike[str]) -> bool:
    """Whether ``dest`` is given as a folder (a trailing separator; ``_files.target`` also asks the disk)."""
    return os.fspath(dest).endswith(("/", os.sep))


# --- the plan --------------------------------------------------------------------------------------


@attrs.frozen
class NeedStatus:
    """The plan needs the job's status (fresh)."""

    ref: str


@attrs.frozen
class Fetch:
    """The plan needs ``url`` saved at ``dest`` (a folder gets ``name``); the answer is a :class:`Download`."""

    url: str
    dest: str | os.PathLike[str]
    name: str


class HostRefused(Exception):
    """The file host answered 403/404/410: maybe an expired link."""

    def __init__(self, status_code: int, host: str) -> None:
        super().__init__(f"the file host {host} answered {status_code}")
        self.status_code, self.host = status_code, host


Plan = Generator["NeedStatus | Fetch", "JobStatus | Download | None", Download]


def link_expired(status: JobStatus, now: datetime | None = None) -> bool:
    return status.expires_at is not None and status.expires_at <= (now or datetime.now(UTC))


def pick_url(status: JobStatus, index: int) -> str:
    """The job's ``index``-th video URL, or a DownloadError that says why there is none."""
    vendor, ref = status.vendor, f"task {status.task_id}"
    if status.state is not State.SUCCEEDED:
        raise DownloadError(f"{ref} has not succeeded (it is {status.state.value}): no video to fetch", vendor=vendor)
    if not status.video_urls:
        if status.video_id:
            raise DownloadError(
                f"{ref}: {vendor} returns a video id ({status.video_id[:MAX_VENDOR_WORD]}"
                f"{'…' if len(status.video_id) > MAX_VENDOR_WORD else ''}), not a URL; fetch the file with "
                f"{vendor}'s own API or dashboard",
                vendor=vendor,
            )
        raise DownloadError(f"{ref} succeeded without a video (no URL, no id)", vendor=vendor)
    if not 0 <= index < len(status.video_urls):
        raise DownloadError(
            f"{ref} has {len(status.video_urls)} video URL(s); there is no index {index}", vendor=vendor
        )
    url = status.video_urls[index]
    wrong = not_a_video_url(url)
    if wrong is not None:
        raise DownloadError(f"{ref}: its video URL {wrong}; nothing fetched", vendor=vendor)
    return url


def nothing_to_fetch(status: JobStatus) -> DownloadError:
    """The error of a succeeded job without a video URL (a video id only, or no video), as
    :func:`pick_url` says it, with the job's ref and status: ``wait_all(dest=)``'s answer for it."""
    try:
        pick_url(status, 0)
    except DownloadError as exc:
        exc.ref, exc.last_status = status.ref, status
        return exc
    raise AssertionError(f"{status.ref} has a video URL to fetch")  # pragma: no cover - callers check


class SavingAll:
    """Every video of one finished job saved in turn (the faces' ``_save_all`` do the I/O):
    ``indices``, then ``saved`` or ``failed`` for each, then ``result()``.

    A name taken by something kept as it is (``DownloadError.name_taken``: a file without
    ``overwrite=True``, a folder, a FIFO) does not stop the job's other videos: a
    job of two videos whose second broke off was saved again with its first refused, and the
    second's ``.part`` was never resumed, every later call stopping at the first file. Any other
    error ends the job's saving at once. The error that ends it carries the job's status with
    the videos saved before it (``last_status``): nothing else would tell they were."""

    def __init__(self, status: JobStatus) -> None:
        self.status = status
        self.indices = range(max(1, len(status.video_urls)))
        self._saved: list[Download] = []
        self._refused: VideoJobsError | None = None

    def saved(self, download: Download) -> None:
        self._saved.append(download)

    def failed(self, error: VideoJobsError) -> None:
        """Called in the ``except`` of a video's download: raises ``error`` unless the others go on."""
        # the status the download knew last (a fresh link's, or the one given), with the files saved before
        error.last_status = attrs.evolve(error.last_status or self.status, downloads=self._saved)
        if not (isinstance(error, DownloadError) and error.name_taken):
            raise error
        self._refused = self._refused or error

    def result(self) -> JobStatus:
        """The job with its files in ``downloads``, or the first name that existed, raised."""
        done = attrs.evolve(self.status, downloads=self._saved)
        if self._refused is not None:
            self._refused.last_status = done
            raise self._refused
        return done


def check_download_args(dest: object, index: int, max_bytes: int | None, overwrite: object = False) -> str:
    """A download's own arguments, checked before any request; ``dest`` as a path string
    (``overwrite="no"`` is refused: a string would read as True and replace the file)."""
    check_flag("overwrite", overwrite)
    if not isinstance(dest, (str, os.PathLike)) or not isinstance(path := os.fspath(dest), str):
        raise UsageError(f"dest must be a folder or file path (str or os.PathLike), not {type(dest).__name__}")
    if "\x00" in path:
        raise UsageError(f"dest {path!r} holds a NUL character, which no file name can")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise UsageError(f"index must be a whole number >= 0, not {index!r}")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise UsageError(f"max_bytes must be a whole number of bytes >= 1, or None, not {max_bytes!r}")
    return path


def deadline_of(timeout: object) -> float | None:
    """The ``time.monotonic()`` a download given ``timeout`` seconds in all must end by (None: none)."""
    seconds = check_timeout("timeout", timeout)
    return None if seconds is None else time.monotonic() + seconds


def job_of(job: JobStatus | str) -> tuple[JobStatus | None, str]:
    """A status to download from, or a ref to ask about first."""
    if isinstance(job, JobStatus):
        return job, job.ref
    if isinstance(job, str):
        return None, job
    raise InvalidReferenceError(  # as status(123) says it
        f"download takes a JobStatus or a '<vendor>:<task id>' reference, not {type(job).__name__}"
    )


def download_plan(
    status: JobStatus | None, ref: str, index: int, dest: str | os.PathLike[str], now: Callable[[], datetime]
) -> Plan:
    """Fetch the job's ``index``-th video to ``dest``, refreshing an expired link once. An error
    carries the job's last status known (``last_status``), as ``download_all``'s and the CLI's do."""
    refreshed = False
    try:
        if status is None:
            status = yield from _fresh(ref)
            refreshed = True
        if link_expired(status, now()):
            if refreshed:
                raise _expired(status, None)
            status = yield from _fresh(ref)
            refreshed = True
            if link_expired(status, now()):
                raise _expired(status, None)
        url = pick_url(status, index)
        while True:
            try:
                result = yield Fetch(url, dest, file_name(status, index, url))
                assert isinstance(result, Download)
                return result
            except HostRefused as refused:
                if refreshed:
                    raise _expired(status, refused) from refused
                fresh = yield from _fresh(ref)
                refreshed = True
                new_url = pick_url(fresh, index)
                if new_url == url:
                    raise _expired(fresh, refused) from refused
                status, url = fresh, new_url
    except VideoJobsError as exc:
        if exc.last_status is None and status is not None:
            exc.last_status = status
        raise


def _fresh(ref: str) -> Generator[NeedStatus, JobStatus | Download | None, JobStatus]:
    status = yield NeedStatus(ref)
    assert isinstance(status, JobStatus)
    return status


def _expired(status: JobStatus, refused: HostRefused | None) -> LinkExpiredError:
    when = status.expires_at
    if refused is None:
        what = f"the video link expired at {when:%Y-%m-%d %H:%M:%S} UTC" if when else "the video link expired"
    else:
        what = f"the video link no longer works (the file host answered {refused.status_code}: expired or gone)"
    expired = LinkExpiredError(
        f"task {status.task_id}: {what}, and a fresh status handed out no new one",
        vendor=status.vendor,
        status_code=refused.status_code if refused else None,
        expires_at=when,
    )
    expired.last_status = status  # the fresh one whose link was judged
    return expired


# --- the file host's answer -------------------------------------------------------------------------


def check_head(status_code: int, headers: Mapping[str, str], host: str, vendor: str) -> str | None:
    """The video's content type (None: unsaid), or the error the answer's head stands for:
    :class:`HostRefused` for an expired link, :class:`DownloadError` for anything but the video."""
    if status_code in EXPIRED_STATUSES:
        raise HostRefused(status_code, host)
    if status_code not in (200, 206):
        raise DownloadError(
            f"the file host {host} answered {status_code}, not the video", vendor=vendor, status_code=status_code
        )
    kind = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind.startswith(REFUSED_TYPES):
        raise DownloadError(
            f"the file host {host} sent {kind}, not a video (an error page?); nothing saved",
            vendor=vendor,
            status_code=status_code,
        )
    encoding = (headers.get("content-encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise DownloadError(f"the file host {host} sent the video {encoding}-encoded", vendor=vendor)
    return kind or None


SNIFF_LIMIT: Final = 4096
"""Bytes of a body's beginning kept to judge it: a video never begins with this much whitespace."""


def looks_like_a_page(head: bytes, *, whole: bool = False) -> bool | None:
    """Whether a body beginning with ``head`` is HTML, XML or JSON (an error page sent with 200),
    whatever its type says; None while it cannot be told yet, ``head`` being whitespace or the
    start of such a beginning (a host may send ``<`` alone first). A ``whole`` body of whitespace,
    or a head of :data:`SNIFF_LIMIT` bytes that is still undecided (whitespace that long), is no
    video either: True."""
    for bom, encoding in _BOMS:
        if not whole and len(head) < len(bom) and bom.startswith(head):
            return None  # a mark's first bytes alone (a host may send one byte first): not yet
        if head.startswith(bom):
            text = head[len(bom) :].decode(encoding, "ignore").encode("utf-8", "replace")
            verdict = _judged(text, whole)
            if verdict is not False:
                return verdict
            break
    return _judged(head, whole)


def _judged(head: bytes, whole: bool) -> bool | None:
    start = head.lstrip()[:9].lower()
    if start.startswith(_SNIFF):
        return True
    if not any(page.startswith(start) for page in _SNIFF):  # b"" and b"<!do" are the start of one
        return False
    if len(head) >= SNIFF_LIMIT:
        return True  # that much whitespace first
    return not head.strip() if whole else None


# --- following redirects -----------------------------------------------------------------------------


def next_hop(current: str, location: str | None, vendor: str) -> str:
    """Where a redirect points, if we may go: never from https to http, never with credentials."""
    if not location:
        raise DownloadError("the file host redirected without a Location", vendor=vendor)
    target_url = urljoin(current, location)
    parts = urlsplit(target_url)
    if parts.scheme not in ("https", "http") or (urlsplit(current).scheme == "https" and parts.scheme != "https"):
        raise DownloadError(f"the file host redirected to a {parts.scheme}: URL, refused (https only)", vendor=vendor)
    if parts.username or parts.password:
        raise DownloadError("the file host redirected to a URL with credentials, refused", vendor=vendor)
    if (wrong := not_a_video_url(target_url)) is not None:
        raise DownloadError(f"the file host redirected to a location that {wrong}, refused", vendor=vendor)
    return target_url


# --- resuming: only the same file --------------------------------------------------------------------


_VALIDATOR: Final = re.compile(r"[\x20-\x7e]+")
"""What an ETag or Last-Modified may hold to be sent back in If-Range: printable ASCII (RFC 9110
8.8.3's etagc also allows obs-text, bytes 0x80-0xFF, which httpx cannot send in a header)."""


def _sendable(validator: str) -> str:
    """``validator`` when it can go back in If-Range; "" (no validator: no resume) otherwise."""
    return validator if _VALIDATOR.fullmatch(validator) else ""


@attrs.frozen
class FirstAnswer:
    """What the first answer said about the file (kept in ``<name>.part.json``): a resume must match it."""

    etag: str | None  # strong ETags only: If-Range needs one (RFC 9110 13.1.5)
    last_modified: str | None
    total: int
    # a weak ETag (W/"..."), with a Last-Modified to ask by: never sent back, but a 206 whose ETag is
    # another one (or none) is another version of the file, whatever its Last-Modified says
    weak_etag: str | None = None

    @property
    def validator(self) -> str | None:
        return self.etag or self.last_modified

    def to_json(self) -> bytes:
        meta = {"etag": self.etag, "last_modified": self.last_modified, "total": self.total}
        if self.weak_etag is not None:
            meta["weak_etag"] = self.weak_etag
        return json.dumps(meta).encode()

    @classmethod
    def from_json(cls, data: bytes) -> FirstAnswer | None:
        try:
            meta = json.loads(data)
            etag, modified, total = meta["etag"], meta["last_modified"], meta["total"]
            weak = meta.get("weak_etag")  # absent from a record kept by an earlier version
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if not (weak is None or (isinstance(weak, str) and _sendable(weak))):
            return None
        if not (etag is None or isinstance(etag, str)) or not (modified is None or isinstance(modified, str)):
            return None
        if (etag and not _sendable(etag)) or (modified and not _sendable(modified)):
            return None  # kept by a version that took any text: it could never be sent back
        if isinstance(total, bool) or not isinstance(total, int) or total < 1 or not (etag or modified):
            return None
        return cls(etag or None, modified or None, total, weak or None)

    @classmethod
    def of(cls, headers: Mapping[str, str], total: int | None) -> FirstAnswer | None:
        tag = _sendable((headers.get("etag") or "").strip())
        etag = tag if tag.startswith('"') and tag.endswith('"') and len(tag) > 1 else ""  # W/ is weak
        modified = _sendable((headers.get("last-modified") or "").strip())
        if total is None or total < 1 or not (etag or modified):
            return None  # nothing to prove a later 206 is the same file: no resume
        return cls(etag or None, modified or None, total, None if etag or not tag else tag)


class StartOver(Exception):
    """The host's answer to a resume does not prove it is the same file: the ``.part`` is gone,
    ask again for the whole file (once, at once: it cannot happen to a request without ``Range``)."""


_CONTENT_RANGE: Final = re.compile(r"bytes ([0-9]{1,19})-([0-9]{1,19})/([0-9]{1,19})")
"""A 206's range, in ASCII digits and at most 19 of them (an int64, as h11 bounds Content-Length):
Python's ``\\d`` takes any script's digits, and ``int()`` refuses more than 4,300 of them."""


def same_file(first: FirstAnswer, have: int, headers: Mapping[str, str]) -> str | None:
    """Why a 206 to ``Range: bytes=<have>-`` is not the rest of the file first answered (None: it is).

    The validator and the total length must be the first answer's, the range must start at
    ``have`` and run to the end, and the length must be the range's: anything else could splice
    two versions of a file into one."""
    match = _CONTENT_RANGE.fullmatch((headers.get("content-range") or "").strip())
    if match is None:
        return "no usable Content-Range"
    start, end, total = int(match[1]), int(match[2]), int(match[3])
    if start != have:
        return f"it starts at byte {start}, not at {have}"
    if total != first.total:
        return f"the file is now {total} bytes, not {first.total}"
    if end != total - 1:
        return f"it ends at byte {end}, not at the end ({total - 1})"
    length = int_or_none(headers.get("content-length"))
    if length is not None and length != total - start:
        return f"its Content-Length {length} is not the range's {total - start} bytes"
    if first.etag is not None:
        if (headers.get("etag") or "").strip() != first.etag:
            return "its ETag is not the first answer's (the file changed)"
    elif (headers.get("last-modified") or "").strip() != first.last_modified:
        return "its Last-Modified is not the first answer's (the file changed)"
    elif first.weak_etag is not None and _opaque((headers.get("etag") or "").strip()) != _opaque(first.weak_etag):
        return "its ETag is not the first answer's (the file changed)"
    return None


def _opaque(etag: str) -> str:
    """An ETag's opaque part: weak comparison (RFC 9110 8.8.3.2) ignores the ``W/``."""
    return etag.removeprefix("W/")


# --- deadlines: stalls and the whole download -----------------------------------------------------

LOW_SPEED_LIMIT: Final = 1024
"""Bytes per second a transfer must keep up, averaged over the client's per-attempt ``timeout``:
slower for that long is a stall, which ends the attempt (the ``.part`` stays; the next attempt
resumes). curl's ``--speed-limit`` / ``--speed-time`` (``CURLOPT_LOW_SPEED_LIMIT`` and
``CURLOPT_LOW_SPEED_TIME``), with ``timeout`` as the time; without it a host that sends a byte
every few seconds never trips a read timeout."""


class Pace:
    """When the transfer must end (no I/O; the caller passes ``time.monotonic()`` readings).

    ``window`` is the client's per-attempt ``timeout``: the answer's head must come within it,
    and fewer than ``LOW_SPEED_LIMIT * window`` bytes over a window is a stall. ``deadline``
    ends the whole download (all attempts), if the caller set one."""

    def __init__(
        self, window: float, deadline: float | None, vendor: str, halted: Callable[[], bool] | None = None
    ) -> None:
        self.window, self.deadline, self.vendor, self.halted = window, deadline, vendor, halted
        self._since = 0.0
        self._base = 0

    def left(self, now: float) -> float | None:
        return None if self.deadline is None else self.deadline - now

    def expired(self, now: float) -> bool:
        """The deadline passed, or the batch this download is part of was left (``halted``): a
        blocking batch's threads cannot be cancelled, so each save looks at every chunk."""
        return (self.deadline is not None and now >= self.deadline) or (self.halted is not None and self.halted())

    def head_timeout(self, now: float) -> float:
        """Seconds the answer's head may take (never past the deadline)."""
        left = self.left(now)
        return max(0.0, self.window if left is None else min(self.window, left))

    def start(self, now: float, done: int) -> None:
        """The body begins (``done`` bytes already in the ``.part``)."""
        self._since, self._base = now, done

    def check(self, now: float, done: int) -> None:
        """After each chunk: the deadline, then the speed over the last window."""
        if self.expired(now):
            raise self.too_late()
        elapsed = now - self._since
        if elapsed >= self.window:
            if (done - self._base) / elapsed < LOW_SPEED_LIMIT:
                raise NetworkError(
                    f"the file host stalled: {done - self._base} bytes in {elapsed:.1f} s, under "
                    f"{LOW_SPEED_LIMIT} bytes/s for the timeout of {self.window:g} s",
                    vendor=self.vendor,
                )
            self._since, self._base = now, done

    def too_late(self) -> NetworkError:
        if self.halted is not None and self.halted():
            why = "was stopped: the call it was part of ended early"
        else:
            why = "did not finish by its deadline"
        return NetworkError(f"the download {why}; the .part is kept for a later call to resume", vendor=self.vendor)


def int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
