"""Getting a finished job's video onto disk: resumable, checked, and never half-written.

Modelled on huggingface_hub's downloads:

- the bytes go to ``<name>.part`` (with ``<name>.part.json`` noting the file host's ETag or
  Last-Modified); at the end the file is fsynced and renamed, so the final name only ever
  holds a complete file. A crash, Ctrl-C or a dropped connection leaves the ``.part``; the
  next attempt (in the same call, up to ``max_retries`` times, or a later call) asks for the
  rest with ``Range`` + ``If-Range``, and starts over if the server cannot or the file changed;
- the length must match ``Content-Length`` (``Content-Range`` for a resumed one); an HTML, JSON
  or XML body (an error page sent with 200) is refused, whatever it is called; ``max_bytes``;
- no vendor key travels: the file host gets a plain request (signed URLs need none); a
  redirect is followed at most five times, never from https to http, and never with credentials;
- an expired link (``expires_at`` passed, or 403/404/410 from the file host) costs one fresh
  status call: a new URL is used, the same one is a :class:`LinkExpiredError`.

The logic is here once, without I/O: :func:`download_plan` (what to ask for next) and
:class:`Transfer` (one file being written). ``Client`` and ``AsyncClient`` only run them.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import attrs

from ._exceptions import CallbackError, DownloadError, LinkExpiredError, NetworkError, UsageError, VideoJobsError
from ._status import Download, DownloadProgress, JobStatus, State

__all__ = [
    "DownloadProgress",
    "Fetch",
    "HostRefused",
    "NeedStatus",
    "Transfer",
    "download_plan",
    "file_name",
    "next_hop",
]

CHUNK: Final = 1024 * 1024
"""Bytes read at a time: large enough that per-chunk work (hash, write, progress) is noise."""
MAX_REDIRECTS: Final = 5
"""As browsers and curl's defaults allow far more, a signed-URL CDN needs one or two."""
EXPIRED_STATUSES: Final = (403, 404, 410)
"""What S3, GCS and CDNs answer for an expired signed URL (S3: 403 AccessDenied "Request has expired")."""
REFUSED_TYPES: Final = ("text/", "application/json", "application/xml", "application/problem+json")
"""Content types that are an error page, not a video, whatever the status says."""
_SNIFF: Final = (b"<!doctype", b"<html", b"<?xml", b"{", b"[")
VIDEO_SUFFIXES: Final = (".mp4", ".mov", ".webm", ".mkv", ".m4v", ".avi", ".gif")
NAME_LIMIT: Final = 120  # characters of a file name we make (most file systems allow 255 bytes)


OnProgress = Callable[[DownloadProgress], object]


# --- names ---------------------------------------------------------------------------------------


def _safe(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._- ")
    if cleaned != text or len(cleaned) > NAME_LIMIT:  # two ids must not meet in one name
        digest = hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
        cleaned = f"{cleaned[: NAME_LIMIT - 9]}_{digest}".lstrip("_")
    return cleaned or "video"


def file_name(status: JobStatus, index: int, url: str) -> str:
    """``<vendor>-<task id>[-<n>].<ext>``, safe on every OS: no separator, no dot-leading or
    reserved name can come from an id or a URL (the suffix is one of :data:`VIDEO_SUFFIXES`)."""
    suffix = Path(urlsplit(url).path).suffix.lower()
    suffix = suffix if suffix in VIDEO_SUFFIXES else ".mp4"
    return f"{status.vendor}-{_safe(status.task_id)}{f'-{index}' if index else ''}{suffix}"


def target(dest: str | os.PathLike[str], status: JobStatus, index: int, url: str) -> Path:
    """A folder (existing, or given with a trailing separator) gets the job's file name; else ``dest`` is the file."""
    text = os.fspath(dest)
    path = Path(text)
    if path.is_dir() or text.endswith(("/", os.sep)):
        return path / file_name(status, index, url)
    return path


# --- the plan --------------------------------------------------------------------------------------


@attrs.frozen
class NeedStatus:
    """The plan needs the job's status (fresh)."""

    ref: str


@attrs.frozen
class Fetch:
    """The plan needs ``url`` saved at ``path``; the answer is a :class:`Download`."""

    url: str
    path: Path


class HostRefused(Exception):
    """The file host answered 403/404/410: maybe an expired link."""

    def __init__(self, status_code: int, host: str) -> None:
        super().__init__(f"the file host {host} answered {status_code}")
        self.status_code, self.host = status_code, host


Plan = Generator["NeedStatus | Fetch", Any, Download]


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
                f"{ref}: {vendor} returns a video id ({status.video_id}), not a URL; fetch the file with "
                f"{vendor}'s own API or dashboard",
                vendor=vendor,
            )
        raise DownloadError(f"{ref} succeeded without a video (no URL, no id)", vendor=vendor)
    if not 0 <= index < len(status.video_urls):
        raise DownloadError(
            f"{ref} has {len(status.video_urls)} video URL(s); there is no index {index}", vendor=vendor
        )
    return status.video_urls[index]


def check_download_args(index: int, max_bytes: int | None) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise UsageError(f"index must be a whole number >= 0, not {index!r}")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise UsageError(f"max_bytes must be a whole number of bytes >= 1, or None, not {max_bytes!r}")


def job_of(job: JobStatus | str) -> tuple[JobStatus | None, str]:
    """A status to download from, or a ref to ask about first."""
    if isinstance(job, JobStatus):
        return job, job.ref
    if isinstance(job, str):
        return None, job
    raise UsageError(f"download takes a JobStatus or a '<vendor>:<task id>' reference, not {type(job).__name__}")


def download_plan(
    status: JobStatus | None, ref: str, index: int, dest: str | os.PathLike[str], now: Callable[[], datetime]
) -> Plan:
    """Fetch the job's ``index``-th video to ``dest``, refreshing an expired link once."""
    refreshed = False
    if status is None:
        status = yield NeedStatus(ref)
        refreshed = True
    if link_expired(status, now()):
        if refreshed:
            raise _expired(status, None)
        status = yield NeedStatus(ref)
        refreshed = True
        if link_expired(status, now()):
            raise _expired(status, None)
    url = pick_url(status, index)
    path = target(dest, status, index, url)
    while True:
        try:
            result: Download = yield Fetch(url, path)
            return result
        except HostRefused as refused:
            if refreshed:
                raise _expired(status, refused) from refused
            fresh: JobStatus = yield NeedStatus(ref)
            refreshed = True
            new_url = pick_url(fresh, index)
            if new_url == url:
                raise _expired(fresh, refused) from refused
            status, url = fresh, new_url


def _expired(status: JobStatus, refused: HostRefused | None) -> LinkExpiredError:
    when = status.expires_at
    if refused is None:
        what = f"the video link expired at {when:%Y-%m-%d %H:%M:%S} UTC" if when else "the video link expired"
    else:
        what = f"the video link no longer works (the file host answered {refused.status_code}: expired or gone)"
    return LinkExpiredError(
        f"task {status.task_id}: {what}, and a fresh status handed out no new one",
        vendor=status.vendor,
        status_code=refused.status_code if refused else None,
        expired_at=when,
    )


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
    return target_url


# --- one file being written ------------------------------------------------------------------------


class Transfer:
    """The bytes of one file on their way to disk; all but the network I/O.

    ``request_headers()`` → the driver sends → ``begin(status, headers, host)`` → ``write(chunk)``
    for each chunk → ``finish()`` (the Download) or, after a failure, ``retry()`` and again.
    """

    def __init__(
        self,
        path: Path,
        ref: str,
        *,
        overwrite: bool,
        max_bytes: int | None,
        on_progress: OnProgress | None,
    ) -> None:
        self.path, self.ref, self.vendor = path, ref, ref.partition(":")[0]
        self.part = path.with_name(path.name + ".part")
        self.meta = path.with_name(path.name + ".part.json")
        self.max_bytes, self.on_progress = max_bytes, on_progress
        if path.exists() and not overwrite:
            raise DownloadError(f"{path} exists (pass overwrite=True to replace it)", vendor=self.vendor)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DownloadError(
                f"could not make the folder {path.parent}: {exc.strerror or exc}", vendor=self.vendor
            ) from exc
        self.file: Any = None
        self.hasher = hashlib.sha256()
        self.done = 0  # bytes in the .part
        self.total: int | None = None
        self.resumed_from = 0
        self.content_type: str | None = None
        self.host = ""
        self._validator = self._read_meta()
        self._behind = _Behind()
        self._synced = 0

    def _read_meta(self) -> str | None:
        if not self.part.exists():
            return None
        try:
            meta = json.loads(self.meta.read_text(encoding="utf-8"))
            validator = meta.get("etag") or meta.get("last_modified")
        except (OSError, ValueError, AttributeError):
            return None
        return validator if isinstance(validator, str) and validator else None

    def request_headers(self) -> dict[str, str]:
        headers = {"Accept-Encoding": "identity"}  # the bytes as stored: lengths and ranges mean what they say
        have = self.part.stat().st_size if self.part.exists() else 0
        if have and self._validator:
            headers["Range"] = f"bytes={have}-"
            headers["If-Range"] = self._validator
        return headers

    def begin(self, status_code: int, headers: Mapping[str, str], host: str) -> None:
        """Check the answer's head and open the ``.part`` where the body will go."""
        self.host = host
        if status_code in EXPIRED_STATUSES:
            raise HostRefused(status_code, host)
        if status_code == 416:  # our .part is longer than the file: it is not this file's start
            self._discard_part()
            raise NetworkError("the file host refused the range asked for; starting over", vendor=self.vendor)
        if status_code not in (200, 206):
            raise DownloadError(
                f"the file host {host} answered {status_code}, not the video",
                vendor=self.vendor,
                status_code=status_code,
            )
        kind = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if kind.startswith(REFUSED_TYPES):
            raise DownloadError(
                f"the file host {host} sent {kind}, not a video (an error page?); nothing saved",
                vendor=self.vendor,
                status_code=status_code,
            )
        encoding = (headers.get("content-encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise DownloadError(f"the file host {host} sent the video {encoding}-encoded", vendor=self.vendor)
        self.content_type = kind or None
        start, total = 0, _int(headers.get("content-length"))
        if status_code == 206:
            match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", (headers.get("content-range") or "").strip())
            have = self.part.stat().st_size if self.part.exists() else 0
            if match is None or int(match[1]) != have:
                self._discard_part()
                raise NetworkError("the file host resumed at the wrong byte; starting over", vendor=self.vendor)
            start = have
            total = int(match[3]) if match[3] != "*" else None
        if total is not None and self.max_bytes is not None and total > self.max_bytes:
            raise DownloadError(
                f"the video is {total} bytes, over max_bytes={self.max_bytes}; nothing saved", vendor=self.vendor
            )
        self.total = total
        self._open(start, headers)

    def _open(self, start: int, headers: Mapping[str, str]) -> None:
        if self.file is not None:
            self.file.close()
        self.hasher = hashlib.sha256()
        if start:
            with self.part.open("rb") as kept:  # the kept bytes count in the checksum
                for piece in iter(lambda: kept.read(CHUNK), b""):
                    self.hasher.update(piece)
            self.file = self.part.open("ab")
            if not self.resumed_from:
                self.resumed_from = start
        else:
            self.file = self.part.open("wb")
            self.resumed_from = 0
        self.done = self._synced = start
        validator = headers.get("etag") if not (headers.get("etag") or "").startswith("W/") else None
        meta = {"etag": validator, "last_modified": headers.get("last-modified"), "total": self.total}
        self.meta.write_text(json.dumps(meta), encoding="utf-8")
        self._validator = validator or headers.get("last-modified")
        self._sniffed = start > 0

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self._sniffed:
            self._sniffed = True
            if chunk.lstrip()[:9].lower().startswith(_SNIFF):
                self.abort()
                raise DownloadError(
                    f"the file host {self.host} sent a page or a document, not a video; nothing saved",
                    vendor=self.vendor,
                )
        self.done += len(chunk)
        if self.max_bytes is not None and self.done > self.max_bytes:
            self.abort()
            raise DownloadError(f"the video grew past max_bytes={self.max_bytes}; nothing saved", vendor=self.vendor)
        if self.total is not None and self.done > self.total:
            self.abort()
            raise DownloadError(
                f"the file host sent more than the {self.total} bytes it announced; nothing saved", vendor=self.vendor
            )
        self.file.write(chunk)
        self._behind.hash(self.hasher, chunk)
        if self.done - self._synced >= SYNC_EVERY:  # write back to disk while the rest arrives
            self.file.flush()
            self._behind.sync(self.file.fileno())
            self._synced = self.done
        if self.on_progress is not None:
            progress = DownloadProgress(
                ref=self.ref, path=self.path, done=self.done, total=self.total, resumed_from=self.resumed_from
            )
            try:
                self.on_progress(progress)
            except Exception as exc:  # the caller's callback: it ends this download, typed; the .part stays
                raise CallbackError(
                    f"on_progress raised {type(exc).__name__} while saving {self.path.name}", vendor=self.vendor
                ) from exc

    def finish(self) -> Download:
        """The body ended: check its length, make it durable and give it its name."""
        if self.file is None:
            raise NetworkError("the file host sent no body", vendor=self.vendor)
        if self.total is not None and self.done < self.total:
            self.file.flush()
            raise NetworkError(
                f"the file host sent {self.done} of {self.total} bytes before the body ended", vendor=self.vendor
            )
        self.file.flush()
        self._behind.drain()
        os.fsync(self.file.fileno())  # little is left to write back: see SYNC_EVERY
        self.file.close()
        self.file = None
        os.replace(self.part, self.path)
        with contextlib.suppress(OSError):
            self.meta.unlink()
        _fsync_dir(self.path.parent)
        return Download(
            path=self.path,
            bytes=self.done,
            sha256=self.hasher.hexdigest(),
            content_type=self.content_type,
            url_host=self.host,
            resumed_from=self.resumed_from,
        )

    def pause(self) -> None:
        """A failure the next attempt may resume from: keep the ``.part``, flushed."""
        self._behind.drain(raise_errors=False)
        if self.file is not None:
            self.file.flush()
            self.file.close()
            self.file = None

    def abort(self) -> None:
        """A failure no retry mends (an error page, too large): no ``.part`` is left."""
        self._behind.drain(raise_errors=False)
        if self.file is not None:
            self.file.close()
            self.file = None
        self._discard_part()

    def _discard_part(self) -> None:
        for leftover in (self.part, self.meta):
            with contextlib.suppress(OSError):
                leftover.unlink()
        self._validator = None


SYNC_EVERY: Final = 8 * 1024 * 1024
"""Bytes between two background write-backs (fdatasync) of the ``.part``: the fsync that makes
the file durable at the end then waits for at most this much, not for the whole file (on this
project's bench machine 8 MiB did best of 2-32 MiB and of one fsync at the end)."""
HASH_BATCH: Final = 4 * 1024 * 1024
PENDING: Final = 4
"""Bytes handed to the hashing thread at a time, and batches at most waiting for it (16 MiB):
one hand-over per 4 MiB costs nothing next to the hashing, and memory stays bounded if it lags."""


def _update_all(hasher: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


class _Behind:
    """One worker thread doing what need not hold up the network reads: the SHA-256 (hashlib
    releases the GIL on large buffers) and the periodic write-back. Tasks run in order."""

    def __init__(self) -> None:
        self._pool: Any = None
        self._pending: collections.deque[Any] = collections.deque()
        self._batch: list[bytes] = []
        self._batched = 0
        self._hasher: Any = None

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="videojobs-download")
        self._pending.append(self._pool.submit(fn, *args))
        while len(self._pending) > PENDING:
            self._pending.popleft().result()

    def hash(self, hasher: Any, chunk: bytes) -> None:
        """Hash ``chunk`` later, in order; chunks go over in batches of HASH_BATCH bytes."""
        if hasher is not self._hasher:
            self._flush_hash()
            self._hasher = hasher
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= HASH_BATCH:
            self._flush_hash()

    def _flush_hash(self) -> None:
        if self._batch:
            self._submit(_update_all, self._hasher, self._batch)
            self._batch, self._batched = [], 0

    def sync(self, fd: int) -> None:
        self._flush_hash()
        self._submit(os.fdatasync if hasattr(os, "fdatasync") else os.fsync, fd)

    def drain(self, *, raise_errors: bool = True) -> None:
        """Wait for every task; re-raise the first error (a disk that failed a write-back)."""
        self._flush_hash()
        error: BaseException | None = None
        while self._pending:
            try:
                self._pending.popleft().result()
            except BaseException as exc:  # the worker's own failure, kept for the caller
                error = error or exc
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if error is not None and raise_errors:
            raise error


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); Windows has no directory handles to sync."""
    if os.name != "posix":  # pragma: no cover
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


RESUMABLE: Final = (NetworkError,)
"""Failures a next attempt resumes from (the ``.part`` is kept)."""


def is_resumable(exc: VideoJobsError) -> bool:
    return isinstance(exc, RESUMABLE)
