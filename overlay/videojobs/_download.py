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

The logic is here once, without I/O: :func:`download_plan` (what to ask for next) and
:class:`Transfer` (one file being written). ``Client`` and ``AsyncClient`` only run them.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import time
import unicodedata
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import attrs

from ._adapter import not_a_video_url
from ._exceptions import CallbackError, DownloadError, LinkExpiredError, NetworkError, UsageError, VideoJobsError
from ._status import Download, DownloadProgress, JobStatus, State

__all__ = [
    "LOW_SPEED_LIMIT",
    "DownloadProgress",
    "Fetch",
    "FirstAnswer",
    "HostRefused",
    "NeedStatus",
    "Pace",
    "StartOver",
    "Transfer",
    "download_plan",
    "file_name",
    "next_hop",
    "same_file",
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
                f"{ref}: {vendor} returns a video id ({status.video_id}), not a URL; fetch the file with "
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


def check_download_args(index: int, max_bytes: int | None) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise UsageError(f"index must be a whole number >= 0, not {index!r}")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise UsageError(f"max_bytes must be a whole number of bytes >= 1, or None, not {max_bytes!r}")


def deadline_of(timeout: object) -> float | None:
    """The ``time.monotonic()`` a download given ``timeout`` seconds in all must end by (None: none)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise UsageError(f"timeout must be a positive number of seconds, or None, not {timeout!r}")
    return time.monotonic() + float(timeout)


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
    path = target(dest, status, index, url)
    while True:
        try:
            result = yield Fetch(url, path)
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
    if not_a_video_url(target_url) is not None:
        raise DownloadError("the file host redirected to something that is not an http(s) URL, refused", vendor=vendor)
    return target_url


# --- the folder: every name opened relative to it, never through a link ---------------------------

_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted at a name cannot block the open
_BINARY: Final = getattr(os, "O_BINARY", 0)
_DIRECTORY: Final = getattr(os, "O_DIRECTORY", 0)
_AT_FD: Final = os.name == "posix" and {os.open, os.stat, os.unlink, os.link, os.rename} <= os.supports_dir_fd
"""Whether names are opened relative to the folder's handle (os.replace takes the same dir fds as os.rename)."""
META_LIMIT: Final = 4096  # bytes of a .part.json read: ours are under 300


def _exists(error: DownloadError) -> DownloadError:
    """A name that exists (errno EEXIST): the way out is a note, in Python's words (a traceback
    shows it); the message states the fact only, so that the CLI can name its own flag."""
    error.add_note("pass overwrite=True to replace it")
    return error


def _disk(exc: OSError, what: str, vendor: str) -> DownloadError:
    """A refusal of the disk, typed, with its errno (ENOSPC, EFBIG, EACCES, EIO ...)."""
    return DownloadError(f"{what}: {exc.strerror or exc}", vendor=vendor, errno=exc.errno)


class _Folder:
    """The download's folder, held open: each name is opened relative to this handle (``dir_fd``),
    with ``O_NOFOLLOW``, so a link planted at a name is never followed, and a folder renamed under
    us does not move our writes. (Without ``dir_fd``, Windows: by path, with the same flags.)"""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | _DIRECTORY | _CLOEXEC) if _AT_FD else None

    def _at(self, name: str) -> tuple[str, dict[str, Any]]:
        if self.fd is None:  # pragma: no cover - Windows
            return os.fspath(self.path / name), {}
        return name, {"dir_fd": self.fd}

    def open(self, name: str, flags: int) -> int:
        where, kw = self._at(name)
        return os.open(where, flags | _NOFOLLOW | _CLOEXEC | _BINARY, 0o666, **kw)

    def lstat(self, name: str) -> os.stat_result | None:
        where, kw = self._at(name)
        try:
            return os.stat(where, follow_symlinks=False, **kw)
        except FileNotFoundError:
            return None

    def unlink(self, name: str) -> None:
        """Remove the name (a link planted there is removed, never what it points to)."""
        where, kw = self._at(name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(where, **kw)

    def link(self, src: str, dst: str) -> None:
        """``dst`` becomes ``src``'s file, or EEXIST: the kernel decides, atomically."""
        if self.fd is None:  # pragma: no cover - without dir fds
            if os.name == "nt":  # Windows' rename refuses an existing target
                os.rename(self.path / src, self.path / dst)
            else:
                os.link(self.path / src, self.path / dst, follow_symlinks=False)
            return
        os.link(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)

    def replace(self, src: str, dst: str) -> None:
        if self.fd is None:  # pragma: no cover - Windows
            os.replace(self.path / src, self.path / dst)
            return
        os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def sync(self) -> None:
        """Make the rename durable (POSIX); Windows has no directory handles to sync."""
        if self.fd is not None:
            with contextlib.suppress(OSError):  # some file systems cannot fsync a folder; the file is synced
                os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _own_regular(st: os.stat_result) -> bool:
    """A regular file with one name (no hard link elsewhere), ours: one we may write into."""
    mine = not hasattr(os, "geteuid") or st.st_uid == os.geteuid()
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and mine


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# --- resuming: only the same file --------------------------------------------------------------------


@attrs.frozen
class FirstAnswer:
    """What the first answer said about the file (kept in ``<name>.part.json``): a resume must match it."""

    etag: str | None  # strong ETags only: If-Range needs one (RFC 9110 13.1.5)
    last_modified: str | None
    total: int

    @property
    def validator(self) -> str | None:
        return self.etag or self.last_modified

    def to_json(self) -> bytes:
        return json.dumps({"etag": self.etag, "last_modified": self.last_modified, "total": self.total}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> FirstAnswer | None:
        try:
            meta = json.loads(data)
            etag, modified, total = meta["etag"], meta["last_modified"], meta["total"]
        except (ValueError, KeyError, TypeError):
            return None
        if not (etag is None or isinstance(etag, str)) or not (modified is None or isinstance(modified, str)):
            return None
        if isinstance(total, bool) or not isinstance(total, int) or total < 1 or not (etag or modified):
            return None
        return cls(etag or None, modified or None, total)

    @classmethod
    def of(cls, headers: Mapping[str, str], total: int | None) -> FirstAnswer | None:
        etag = (headers.get("etag") or "").strip()
        etag = etag if etag.startswith('"') and etag.endswith('"') and len(etag) > 1 else ""  # W/ is weak
        modified = (headers.get("last-modified") or "").strip()
        if total is None or total < 1 or not (etag or modified):
            return None  # nothing to prove a later 206 is the same file: no resume
        return cls(etag or None, modified or None, total)


class StartOver(Exception):
    """The host's answer to a resume does not prove it is the same file: the ``.part`` is gone,
    ask again for the whole file (once, at once: it cannot happen to a request without ``Range``)."""


_CONTENT_RANGE: Final = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


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
    length = _int(headers.get("content-length"))
    if length is not None and length != total - start:
        return f"its Content-Length {length} is not the range's {total - start} bytes"
    if first.etag is not None:
        if (headers.get("etag") or "").strip() != first.etag:
            return "its ETag is not the first answer's (the file changed)"
    elif (headers.get("last-modified") or "").strip() != first.last_modified:
        return "its Last-Modified is not the first answer's (the file changed)"
    return None


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

    def __init__(self, window: float, deadline: float | None, vendor: str) -> None:
        self.window, self.deadline, self.vendor = window, deadline, vendor
        self._since = 0.0
        self._base = 0

    def left(self, now: float) -> float | None:
        return None if self.deadline is None else self.deadline - now

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

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
        return NetworkError(
            "the download did not finish by its deadline; the .part is kept for a later call to resume",
            vendor=self.vendor,
        )


# --- one file being written ------------------------------------------------------------------------


class Transfer:
    """The bytes of one file on their way to disk; all but the network I/O.

    ``request_headers()`` → the driver sends → ``begin(status, headers, host)`` → ``write(chunk)``
    for each chunk → ``finish()`` (the Download) or, after a failure, ``pause()``/``abort()`` and
    again; ``close()`` at the end, whatever happened.

    Every name is opened in the folder's handle with ``O_NOFOLLOW``: a fresh ``.part`` and
    ``.part.json`` with ``O_EXCL`` (after removing whatever had the name), a kept ``.part`` only
    if it is a regular file with one link, ours. The final name is taken by ``link()``, which
    fails if the name exists (``rename()`` replaces it only with ``overwrite=True``).
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
        self.overwrite, self.max_bytes, self.on_progress = overwrite, max_bytes, on_progress
        try:
            exists = os.path.lexists(path)
        except OSError:  # pragma: no cover - lexists does not raise
            exists = False
        if exists and not overwrite:  # early, to spare the transfer; the link at the end decides
            raise _exists(DownloadError(f"{path} exists", vendor=self.vendor, errno=errno.EEXIST))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.folder = _Folder(path.parent)
        except OSError as exc:
            raise _disk(exc, f"could not make the folder {path.parent}", self.vendor) from exc
        self.fd: int | None = None
        self.hasher = hashlib.sha256()
        self.done = 0  # bytes in the .part
        self.total: int | None = None
        self.resumed_from = 0
        self.content_type: str | None = None
        self.host = ""
        self._first: FirstAnswer | None = None
        self._asked = 0  # the Range start of the request in flight (0: the whole file)
        self._kept_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the .part asked to be resumed
        self._behind = _Behind()
        self._synced = 0
        self._sniffed = False

    # --- the .part and its record, never through a link

    def _kept(self) -> tuple[os.stat_result, FirstAnswer] | None:
        """The ``.part`` and the first answer it came from, if it may be resumed."""
        st = self.folder.lstat(self.part.name)
        if st is None or not _own_regular(st) or st.st_size < 1:
            return None
        first = self._first or self._read_meta()
        if first is None or st.st_size >= first.total:
            return None
        return st, first

    def _read_meta(self) -> FirstAnswer | None:
        try:
            fd = self.folder.open(self.meta.name, os.O_RDONLY | _NONBLOCK)
        except OSError:  # missing, a link (ELOOP), a FIFO without writer ...: no resume
            return None
        try:
            if not _own_regular(os.fstat(fd)):
                return None
            return FirstAnswer.from_json(os.read(fd, META_LIMIT))
        except OSError:
            return None
        finally:
            os.close(fd)

    def _write_meta(self, first: FirstAnswer) -> None:
        self.folder.unlink(self.meta.name)
        fd = self.folder.open(self.meta.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            _write_all(fd, first.to_json())
        finally:
            os.close(fd)

    def _fresh_part(self) -> int:
        """A new, empty ``.part`` of our own: whatever had the name (an old part, a link) is removed first."""
        self.folder.unlink(self.part.name)
        self.folder.unlink(self.meta.name)
        return self.folder.open(self.part.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)

    def _reopen_part(self, have: int) -> int:
        """The kept ``.part``, the very file asked about, still ``have`` bytes long (else StartOver)."""
        try:
            fd = self.folder.open(self.part.name, os.O_RDWR | _NONBLOCK)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOENT, errno.ENXIO, errno.EISDIR):  # replaced meanwhile
                self._discard_part()
                raise StartOver("the .part changed while the file host answered") from exc
            raise
        st = os.fstat(fd)
        if not _own_regular(st) or (st.st_dev, st.st_ino) != self._kept_id or st.st_size != have:
            os.close(fd)
            self._discard_part()
            raise StartOver("the .part changed while the file host answered")
        return fd

    # --- the exchange

    def request_headers(self) -> dict[str, str]:
        headers = {"Accept-Encoding": "identity"}  # the bytes as stored: lengths and ranges mean what they say
        try:
            kept = self._kept()
        except OSError as exc:
            raise _disk(exc, f"could not look at {self.part}", self.vendor) from exc
        self._asked, self._kept_id = 0, None
        if kept is not None:
            st, first = kept
            validator = first.validator
            assert validator is not None
            self._first, self._asked, self._kept_id = first, st.st_size, (st.st_dev, st.st_ino)
            headers["Range"] = f"bytes={st.st_size}-"
            headers["If-Range"] = validator
        return headers

    def begin(self, status_code: int, headers: Mapping[str, str], host: str) -> None:
        """Check the answer's head and open the ``.part`` where the body will go."""
        self.host = host
        if status_code in EXPIRED_STATUSES:
            raise HostRefused(status_code, host)
        if status_code == 416 and self._asked:  # our .part is not this file's start
            self._discard_part()
            raise StartOver("the file host refused the range asked for")
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
        try:
            if status_code == 206:
                self._begin_resume(headers)
            else:
                self._begin_whole(headers)
        except OSError as exc:
            self._close_fd()
            raise _disk(exc, f"could not write {self.part}", self.vendor) from exc
        self._sniffed = self.done > 0

    def _begin_resume(self, headers: Mapping[str, str]) -> None:
        if not self._asked or self._first is None:
            raise DownloadError(
                f"the file host {self.host} answered 206 (a part) to a request for the whole file", vendor=self.vendor
            )
        why = same_file(self._first, self._asked, headers)
        if why is not None:  # a splice of two files would follow: begin again from byte 0
            self._discard_part()
            raise StartOver(f"the file host's resume is not the same file: {why}")
        fd = self._reopen_part(self._asked)
        self.fd = fd
        self.hasher = hashlib.sha256()
        offset = 0
        while offset < self._asked:  # the kept bytes count in the checksum
            piece = os.pread(fd, min(CHUNK, self._asked - offset), offset)
            if not piece:
                raise OSError(errno.EIO, "the .part ended before its size")
            self.hasher.update(piece)
            offset += len(piece)
        os.lseek(fd, self._asked, os.SEEK_SET)
        self.total = self._first.total
        self.done = self._synced = self._asked
        if not self.resumed_from:
            self.resumed_from = self._asked

    def _begin_whole(self, headers: Mapping[str, str]) -> None:
        total = _int(headers.get("content-length"))
        if total is not None and self.max_bytes is not None and total > self.max_bytes:
            raise DownloadError(
                f"the video is {total} bytes, over max_bytes={self.max_bytes}; nothing saved", vendor=self.vendor
            )
        self._close_fd()
        self.fd = self._fresh_part()
        self._first = FirstAnswer.of(headers, total)
        if self._first is not None:
            self._write_meta(self._first)
        self.hasher = hashlib.sha256()
        self.total = total
        self.done = self._synced = self.resumed_from = 0

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
        assert self.fd is not None
        try:
            _write_all(self.fd, chunk)
            self._behind.hash(self.hasher, chunk)
            if self.done - self._synced >= SYNC_EVERY:  # write back to disk while the rest arrives
                self._behind.sync(self.fd)
                self._synced = self.done
        except OSError as exc:
            self.done -= len(chunk)
            raise _disk(exc, f"could not write {self.part}", self.vendor) from exc
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
        if self.fd is None:
            raise NetworkError("the file host sent no body", vendor=self.vendor)
        if self.total is not None and self.done < self.total:
            raise NetworkError(
                f"the file host sent {self.done} of {self.total} bytes before the body ended", vendor=self.vendor
            )
        fd = self.fd
        try:
            self._behind.drain()
            os.fsync(fd)  # little is left to write back: see SYNC_EVERY
            mine = os.fstat(fd)
        except OSError as exc:
            raise _disk(exc, f"could not write {self.part}", self.vendor) from exc
        try:
            self._place()
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                self.abort()
                raise _exists(
                    DownloadError(
                        f"{self.path} appeared while the video was saved; it is left as it is",
                        vendor=self.vendor,
                        errno=exc.errno,
                    )
                ) from exc
            raise _disk(exc, f"could not name the video {self.path}", self.vendor) from exc
        placed = self.folder.lstat(self.path.name)
        if placed is None or (placed.st_dev, placed.st_ino) != (mine.st_dev, mine.st_ino):
            # the .part was swapped for something else between our checks and the rename
            self.folder.unlink(self.path.name)
            self.abort()
            raise DownloadError(f"{self.part} was replaced while it was saved; nothing kept", vendor=self.vendor)
        self._close_fd()
        with contextlib.suppress(OSError):
            self.folder.unlink(self.meta.name)
        self.folder.sync()
        return Download(
            path=self.path,
            bytes=self.done,
            sha256=self.hasher.hexdigest(),
            content_type=self.content_type,
            url_host=self.host,
            resumed_from=self.resumed_from,
        )

    def _place(self) -> None:
        if self.overwrite:
            self.folder.replace(self.part.name, self.path.name)
            return
        self.folder.link(self.part.name, self.path.name)  # EEXIST if the name is taken: never clobbered
        if self.folder.fd is not None:
            with contextlib.suppress(OSError):  # the video is whole under its name; a stray .part is harmless
                self.folder.unlink(self.part.name)

    def pause(self) -> None:
        """A failure the next attempt may resume from: keep the ``.part`` (cleanup never raises)."""
        self._behind.drain(raise_errors=False)
        self._close_fd()

    def abort(self) -> None:
        """A failure no retry mends (an error page, too large): no ``.part`` is left."""
        self._behind.drain(raise_errors=False)
        self._close_fd()
        self._discard_part()

    def close(self) -> None:
        """The end of the download, whatever happened: let go of the folder (and the .part, kept)."""
        self.pause()
        self.folder.close()

    def _close_fd(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with contextlib.suppress(OSError):  # the failure being reported is the one that matters
                os.close(fd)

    def _discard_part(self) -> None:
        for name in (self.part.name, self.meta.name):
            with contextlib.suppress(OSError):
                self.folder.unlink(name)
        self._first = None


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


RESUMABLE: Final = (NetworkError,)
"""Failures a next attempt resumes from (the ``.part`` is kept)."""


def is_resumable(exc: VideoJobsError) -> bool:
    return isinstance(exc, RESUMABLE)
