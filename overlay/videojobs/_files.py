"""The disk side of a download: one file on its way from the network to its final name.

:class:`Transfer` writes the bytes to ``<name>.part`` and, once complete and checked, links it
to its final name; every rule it follows (what an answer must be, when a ``.part`` may be
resumed) is ``_download``'s, pure; the network is ``_fetch``'s. Every name is opened in the
folder's handle (``dir_fd``) with ``O_NOFOLLOW`` (fresh ones with ``O_EXCL``): a link planted at
``<name>.part``, ``<name>.part.json``, ``<name>.part.lock`` or ``<name>`` is never followed; one
transfer at a time holds a name (a POSIX ``flock`` on ``<name>.part.lock``; none on Windows or on
a file system without locks); every refusal of the disk, also while cleaning up, is a
:class:`DownloadError` with its errno.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ._download import (
    SNIFF_LIMIT,
    FirstAnswer,
    OnProgress,
    StartOver,
    check_head,
    int_or_none,
    looks_like_a_page,
    names_a_folder,
    same_file,
)
from ._exceptions import CallbackError, DownloadError, NetworkError, callback_errors, not_awaited
from ._status import Download, DownloadProgress

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["Transfer", "target"]


def target(dest: str | os.PathLike[str], name: str, vendor: str) -> Path:
    """A folder gets ``name``: one that exists, one given with a trailing separator, or a name
    without a suffix that does not exist yet (``"videos"``, as the CLI's ``-o videos`` and every
    batch read it: it was saved as a file named ``videos``). Else ``dest`` is the file."""
    path = Path(dest)
    try:
        folder = names_a_folder(dest) or path.is_dir() or (not path.suffix and not os.path.lexists(path))
    except OSError as exc:  # is_dir passes on ENOENT and the like, not ENAMETOOLONG
        raise _disk(exc, f"could not look at {path}", vendor) from exc
    return path / name if folder else path


# --- the folder: every name opened relative to it, never through a link ---------------------------

_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted at a name cannot block the open
_BINARY: Final = getattr(os, "O_BINARY", 0)
_DIRECTORY: Final = getattr(os, "O_DIRECTORY", 0)
_AT_FD: Final = os.name == "posix" and {os.open, os.stat, os.unlink, os.link, os.rename} <= os.supports_dir_fd
"""Whether names are opened relative to the folder's handle (os.replace takes the same dir fds as os.rename)."""
META_LIMIT: Final = 4096  # bytes of a .part.json read: ours are under 300
_NO_LOCKS: Final = frozenset(getattr(errno, name) for name in ("EOPNOTSUPP", "ENOSYS") if hasattr(errno, name))
"""What flock() says on a file system that cannot lock: the transfer goes on without one.
(ENOLCK, NFS's lock daemon failing, may pass: it is a DownloadError, tried again later.)"""


def _exists(path: Path, vendor: str, fact: str = "exists") -> DownloadError:
    """A file (or a link) that has the name (EEXIST): the way out is a note, in Python's words (a
    traceback shows it); the message states the fact only, so that the CLI can name its own flag."""
    error = DownloadError(f"{path} {fact}", vendor=vendor, errno=errno.EEXIST, name_taken=True)
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

    def _at(self, name: str) -> tuple[str, dict[str, int]]:
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

    def free(self) -> int | None:
        """Bytes an unprivileged writer may still put on the folder's file system, when it says
        (None: no ``statvfs``, or a file system that reports no size at all, as some FUSE ones do)."""
        try:
            st = os.fstatvfs(self.fd) if self.fd is not None else os.statvfs(self.path)
        except (OSError, AttributeError):  # pragma: no cover - Windows has neither
            return None
        return st.f_bavail * st.f_frsize if st.f_blocks else None

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


def _replaceable(st: os.stat_result, path: Path, vendor: str) -> None:
    """Only a file, or a link (never followed), may be replaced by ``overwrite=True``: not a device,
    a FIFO, a socket or a folder that has the name (``/dev/null`` as ``curl -o`` takes it, replaced
    as root). Checked before whether to overwrite: "pass overwrite=True" is no way out for these.
    The message states the fact (the CLI adds its own flags), the way out is a note."""
    if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        return
    folder = stat.S_ISDIR(st.st_mode)
    error = DownloadError(
        f"{path} is {'a folder' if folder else 'a device, a FIFO or a socket'}, not a file",
        vendor=vendor,
        errno=errno.EISDIR if folder else errno.ENOTSUP,
        name_taken=True,
    )
    error.add_note("overwrite=True replaces files and links only: choose another dest")
    raise error


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
            there = os.lstat(path)
        except OSError:  # nothing there (or a folder we cannot look into: mkdir or open tells)
            there = None
        if there is not None:  # early, to spare the transfer; the link (or the replace) at the end decides
            _replaceable(there, path, self.vendor)
            if not overwrite:
                raise _exists(path, self.vendor)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.folder = _Folder(path.parent)
        except FileExistsError as exc:  # a file (or a link) where the folder goes: overwrite= is no help
            error = DownloadError(
                f"{path.parent} is not a folder (a file or a link is there)", vendor=self.vendor, errno=errno.ENOTDIR
            )
            error.add_note("choose another dest")
            raise error from exc
        except OSError as exc:
            raise _disk(exc, f"could not make the folder {path.parent}", self.vendor) from exc
        self.lock = path.with_name(path.name + ".part.lock")
        try:
            self._lock_fd = self._take_lock()
        except BaseException:
            self.folder.close()
            raise
        self.fd: int | None = None
        self.done = 0  # bytes in the .part
        self.total: int | None = None
        self.resumed_from = 0
        self.content_type: str | None = None
        self.host = ""
        self._first: FirstAnswer | None = None
        self._fresh = False  # this transfer began the .part itself: with no record, nothing can resume it
        self._asked = 0  # the Range start of the request in flight (0: the whole file)
        self._kept_id: tuple[int, int, int] | None = None  # (st_dev, st_ino, st_size) of the .part to resume
        self._behind: _Behind | None = None  # the checksum and write-back threads of the open .part
        self._limit = 0  # the most bytes the .part may hold (max_bytes, the announced total)
        self._sniffed = False
        self._head = b""  # the body's first bytes, until they tell whether it is a page (see looks_like_a_page)

    # --- the name, held for the whole transfer

    def _take_lock(self) -> int | None:
        """An exclusive lock (``flock``) on ``<name>.part.lock``, held until :meth:`close`: another
        transfer to the same name, in this process or another, would resume, replace or remove this
        one's ``.part``, and two saves would end in half a file, or none. It is refused at once
        (``EBUSY``), never waited for; the lock goes with its holder, even killed. A name removed
        by its last holder between our open and our lock is opened again."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks
            return None
        busy = DownloadError(f"{self.path} is being saved by another download now", vendor=self.vendor,
                             errno=errno.EBUSY)  # fmt: skip
        for _ in range(3):
            try:
                fd = self.folder.open(self.lock.name, os.O_RDWR | os.O_CREAT | _NONBLOCK)
            except OSError as exc:  # a link planted there (ELOOP), a folder we cannot write to ...
                raise _disk(exc, f"could not lock {self.lock}", self.vendor) from exc
            try:
                held = os.fstat(fd)
                if not _own_regular(held):
                    raise DownloadError(f"{self.lock} is not a lock file of ours; left as it is", vendor=self.vendor)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                named = self.folder.lstat(self.lock.name)
            except BlockingIOError as exc:
                os.close(fd)
                raise busy from exc
            except OSError as exc:
                os.close(fd)
                if exc.errno in _NO_LOCKS:  # a file system that cannot lock (some FUSE and SMB mounts)
                    return None  # as on Windows: saved without one; the name may be another's: left
                raise _disk(exc, f"could not lock {self.lock}", self.vendor) from exc
            except BaseException:
                os.close(fd)
                raise
            if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
                return fd
            os.close(fd)  # its last holder removed it meanwhile: the lock is the name's current file
        raise busy

    def _let_go(self) -> None:
        """Remove the lock's name, then the lock (cleanup never raises)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                self.folder.unlink(self.lock.name)
            with contextlib.suppress(OSError):
                os.close(fd)

    # --- the .part and its record, never through a link

    def _kept(self) -> tuple[os.stat_result, FirstAnswer] | None:
        """The ``.part`` and the first answer it came from, if it may be resumed."""
        st = self.folder.lstat(self.part.name)
        if st is None or not _own_regular(st) or st.st_size < 1:
            return None
        first = self._first or self._read_meta()
        if first is None or st.st_size > first.total or first.total < 2:
            return None  # a whole one is kept too (the disk filled as it was named): see request_headers
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
        return self.folder.open(self.part.name, os.O_RDWR | os.O_CREAT | os.O_EXCL)  # read back by the checksum

    def _reopen_part(self, have: int) -> int:
        """The kept ``.part``, the very file asked about, as long as it was (else StartOver), cut
        back to ``have`` bytes (a whole one resumes from its last byte)."""
        try:
            fd = self.folder.open(self.part.name, os.O_RDWR | _NONBLOCK)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOENT, errno.ENXIO, errno.EISDIR):  # replaced meanwhile
                self._discard_part()
                raise StartOver("the .part changed while the file host answered") from exc
            raise
        st = os.fstat(fd)
        if not _own_regular(st) or (st.st_dev, st.st_ino, st.st_size) != self._kept_id:
            os.close(fd)
            self._discard_part()
            raise StartOver("the .part changed while the file host answered")
        if st.st_size > have:
            os.ftruncate(fd, have)
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
            # a whole .part (the disk filled as it was named; one whose fsync failed is not kept)
            # asks for its last byte again: the host's 206 to If-Range is its word that the bytes
            # kept are its file's, where the whole video was fetched again (a full disk, freed,
            # paid for it twice)
            asked = min(st.st_size, first.total - 1)
            self._first, self._asked, self._kept_id = first, asked, (st.st_dev, st.st_ino, st.st_size)
            headers["Range"] = f"bytes={asked}-"
            headers["If-Range"] = validator
        return headers

    def begin(self, status_code: int, headers: Mapping[str, str], host: str) -> None:
        """Check the answer's head and open the ``.part`` where the body will go."""
        self.host = host
        if status_code == 416 and self._asked:  # our .part is not this file's start
            self._discard_part()
            raise StartOver("the file host refused the range asked for")
        self.content_type = check_head(status_code, headers, host, self.vendor)
        try:
            if status_code == 206:
                self._begin_resume(headers)
            else:
                self._begin_whole(headers)
        except OSError as exc:  # an EIO there puts a kept .part in doubt: not kept (a full disk keeps it)
            self._close_fd()
            raise self._unwritten(exc, f"could not write {self.part}") from exc
        # the body's beginning is judged afresh: a resumed one from the kept bytes (a page cut
        # after its first "<" would otherwise be taken as a video), a whole one from its first chunk
        self._sniffed, self._head = False, b""
        if self.done:
            try:
                self._head = os.pread(self.fd, min(SNIFF_LIMIT, self.done), 0) if self.fd is not None else b""
            except OSError as exc:  # the kept bytes cannot be read back: every resume would fail so
                self._close_fd()
                raise self._unwritten(exc, f"could not read {self.part}", lost=True) from exc
            self._judge(looks_like_a_page(self._head))

    def _begin_resume(self, headers: Mapping[str, str]) -> None:
        if not self._asked or self._first is None:
            raise DownloadError(
                f"the file host {self.host} answered 206 (a part) to a request for the whole file", vendor=self.vendor
            )
        why = same_file(self._first, self._asked, headers)
        if why is not None:  # a splice of two files would follow: begin again from byte 0
            self._discard_part()
            raise StartOver(f"the file host's resume is not the same file: {why}")
        self._check_room(self._first.total, self._asked)
        fd = self._reopen_part(self._asked)
        self.fd = fd
        os.lseek(fd, self._asked, os.SEEK_SET)
        self._behind = _Behind(fd, self._asked)  # the kept bytes count in the checksum: hashed first
        self.total = self._first.total
        self.done = self._asked
        self._limit = _limit(self.max_bytes, self.total)
        if not self.resumed_from:
            self.resumed_from = self._asked

    def _begin_whole(self, headers: Mapping[str, str]) -> None:
        total = int_or_none(headers.get("content-length"))
        if total is not None and self.max_bytes is not None and total > self.max_bytes:
            raise DownloadError(
                f"the video is {total} bytes, over max_bytes={self.max_bytes}; nothing saved", vendor=self.vendor
            )
        if total is not None:
            old = self.folder.lstat(self.part.name)  # an earlier attempt's, removed before writing
            self._check_room(total, old.st_size if old is not None and stat.S_ISREG(old.st_mode) else 0)
        self._close_fd()
        self.fd = self._fresh_part()
        self._first = FirstAnswer.of(headers, total)
        self._fresh = True
        if self._first is not None:
            try:
                self._write_meta(self._first)
            except OSError as exc:  # its own name in the error: not the .part's, left empty beside it
                self._close_fd()
                raise self._unwritten(exc, f"could not write {self.meta}") from exc
        self._behind = _Behind(self.fd, 0)
        self.total = total
        self.done = self.resumed_from = 0
        self._limit = _limit(self.max_bytes, total)

    def write(self, chunk: bytes) -> None:
        size = len(chunk)
        if not size:
            return
        if not self._sniffed:
            self._head += chunk[: SNIFF_LIMIT - len(self._head)]
            self._judge(looks_like_a_page(self._head))
        done = self.done + size
        if done > self._limit:
            self.abort()
            if self.max_bytes is not None and done > self.max_bytes:
                raise DownloadError(
                    f"the video grew past max_bytes={self.max_bytes}; nothing saved", vendor=self.vendor
                )
            raise DownloadError(
                f"the file host sent more than the {self.total} bytes it announced; nothing saved", vendor=self.vendor
            )
        fd, behind = self.fd, self._behind
        assert fd is not None
        assert behind is not None
        try:
            written = os.write(fd, chunk)
            if written < size:  # a short write: the rest, or the disk's refusal
                _write_all(fd, memoryview(chunk)[written:])
        except OSError as exc:  # refused (a full disk, EFBIG): what was written before stands, for a resume
            raise self._unwritten(exc, f"could not write {self.part}") from exc
        self.done = done
        try:
            behind.wrote(done)  # the checksum reads it back; a failed write-back is raised here
        except OSError as exc:
            raise self._unwritten(exc, f"could not write {self.part}", lost=True) from exc
        if self.on_progress is not None:
            progress = DownloadProgress(
                ref=self.ref, path=self.path, done=done, total=self.total, resumed_from=self.resumed_from
            )
            try:
                not_awaited(self.on_progress(progress))
            except callback_errors() as exc:  # the caller's callback: it ends this download, typed; the .part stays
                raise CallbackError(
                    f"on_progress raised {type(exc).__name__} while saving {self.path.name}", vendor=self.vendor
                ) from exc

    def _judge(self, page: bool | None) -> None:
        """The body's beginning judged (None: not yet): a page, or a document, ends the download."""
        if page is None:
            return
        self._sniffed, self._head = True, b""
        if page:
            self.abort()
            raise DownloadError(
                f"the file host {self.host} sent a page or a document, not a video; nothing saved", vendor=self.vendor
            )

    def finish(self) -> Download:
        """The body ended: check its length, make it durable and give it its name."""
        if self.fd is None or not self.done:  # a video has bytes
            self.abort()
            if self.total == 0:
                raise DownloadError(f"the file host {self.host} sent an empty file; nothing saved", vendor=self.vendor)
            raise NetworkError("the file host ended the body before its first byte", vendor=self.vendor)
        if not self._sniffed:  # all of it was too short to tell
            self._judge(looks_like_a_page(self._head, whole=True))
        if self.total is not None and self.done < self.total:
            raise NetworkError(
                f"the file host sent {self.done} of {self.total} bytes before the body ended", vendor=self.vendor
            )
        fd, behind = self.fd, self._behind
        assert behind is not None
        try:
            sha256 = behind.finish(self.done)
            os.fsync(fd)  # little is left to write back: see SYNC_EVERY
            mine = os.fstat(fd)
            if mine.st_size != self.done:  # cut (or grown) behind the transfer's back: not the bytes hashed
                raise OSError(errno.EIO, f"the .part is {mine.st_size} bytes, not the {self.done} written to it")
        except OSError as exc:  # a write-back or read-back that failed: the bytes on disk are in doubt
            raise self._unwritten(exc, f"could not write {self.part}", lost=True) from exc
        try:
            self._place()
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                self.abort()
                there = self.folder.lstat(self.path.name)
                try:
                    if there is not None:  # a folder or a FIFO made meanwhile: no overwrite= would replace it
                        _replaceable(there, self.path, self.vendor)
                except DownloadError as error:
                    raise error from exc
                raise _exists(
                    self.path, self.vendor, "appeared while the video was saved; it is left as it is"
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
            sha256=sha256,
            content_type=self.content_type,
            url_host=self.host,
            resumed_from=self.resumed_from,
        )

    def _place(self) -> None:
        if self.overwrite:
            there = self.folder.lstat(self.path.name)
            if there is not None:
                _replaceable(there, self.path, self.vendor)
            self.folder.replace(self.part.name, self.path.name)
            return
        self.folder.link(self.part.name, self.path.name)  # EEXIST if the name is taken: never clobbered
        if self.folder.fd is not None:
            with contextlib.suppress(OSError):  # the video is whole under its name; a stray .part is harmless
                self.folder.unlink(self.part.name)

    def pause(self) -> None:
        """A failure the next attempt may resume from: keep the ``.part`` (cleanup never raises),
        unless its write-back or read-back had failed meanwhile (not yet said: a dropped connection,
        a callback that raised, a Ctrl-C came first), which puts its bytes in doubt, or nothing
        could resume it: a file host that sent no length, or no ETag or Last-Modified, left no
        record to ask for the rest by (the next attempt would begin a new ``.part`` anyway)."""
        if self._close_fd() or (self._fresh and self._first is None):
            self._discard_part()

    def _check_room(self, total: int, have: int) -> None:
        """Refuse, before writing, a file its folder's file system has no room for (``have``: its
        bytes already there, or freed first): a Content-Length of a terabyte (a host's lie, or a
        video too large) filled the disk, and the ``.part`` kept for a resume that could never end
        left it full. (A resume's ``.part`` stays: room may be made.)"""
        free = self.folder.free()
        if free is not None and total - have > free:
            raise DownloadError(
                f"the video is {total:,} bytes and {total - have:,} more do not fit in the {free:,} bytes free "
                f"in {self.folder.path}; nothing more written",
                vendor=self.vendor,
                errno=errno.ENOSPC,
            )

    def _unwritten(self, exc: OSError, what: str, *, lost: bool = False) -> DownloadError:
        """The disk's refusal, typed. A ``.part`` whose bytes are in doubt (``lost``: its write-back
        or its read-back failed, or any EIO) is not kept: resumed, or finished from its last byte
        (see ``request_headers``), it would have been taken as the video, checksum and all. One
        whose write was refused (a full disk, EFBIG) keeps what was written before, for a resume."""
        if lost or exc.errno == errno.EIO:
            self.abort()
        return _disk(exc, what, self.vendor)

    def abort(self) -> None:
        """A failure no retry mends (an error page, too large): no ``.part`` is left."""
        self._close_fd()
        self._discard_part()

    def close(self) -> None:
        """The end of the download, whatever happened: let go of the name and the folder (the .part is kept)."""
        try:
            self.pause()
        finally:  # a Ctrl-C while the checksum thread is joined must not keep the name locked
            self._let_go()
            self.folder.close()

    def _close_fd(self) -> bool:
        """Stop the threads and close the ``.part``: True when a write-back or read-back had failed."""
        doubt = False
        if self._behind is not None:  # its threads stop before the file they read goes (interrupted,
            doubt = self._behind.stop()  # they, and the fd, stay for close()'s pause to stop again)
            self._behind = None
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with contextlib.suppress(OSError):  # the failure being reported is the one that matters
                os.close(fd)
        return doubt

    def _discard_part(self) -> None:
        for name in (self.part.name, self.meta.name):
            with contextlib.suppress(OSError):
                self.folder.unlink(name)
        self._first = None


def _limit(max_bytes: int | None, total: int | None) -> int:
    """The most bytes the ``.part`` may hold: ``max_bytes`` and the announced total, whichever is less."""
    bounds = [b for b in (max_bytes, total) if b is not None]
    return min(bounds) if bounds else 1 << 62


SYNC_EVERY: Final = 8 * 1024 * 1024
"""Bytes between two background write-backs (fdatasync) of the ``.part``: the fsync that makes
the file durable at the end then waits for little more than this, not for the whole file."""
HASH_READ: Final = 1024 * 1024
"""Bytes the checksum thread reads back at a time (one buffer: its memory, whatever its lag),
and bytes written between two wake-ups of it (few hand-overs, whatever the chunk size)."""
_fdatasync: Final = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


def _read_at(fd: int, into: memoryview, offset: int) -> int:
    """``os.preadv`` into ``into`` (no bytes object made per read); ``os.pread`` where there is none."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [into], offset)
    piece = os.pread(fd, len(into), offset)
    into[: len(piece)] = piece
    return len(piece)


class _Behind:
    """What need not hold up the network reads, on two threads of their own:

    - the SHA-256, read back from the ``.part`` (``os.pread``, :data:`HASH_READ` bytes at a time)
      as it grows: the network thread hands over no bytes, only how far it has written, so it
      never waits for the hashing and no chunk is kept for it (hashlib releases the GIL on large
      buffers; a resumed ``.part``'s kept bytes are hashed the same way, first);
    - the write-back: an ``fdatasync`` every :data:`SYNC_EVERY` bytes, one at a time (skipped
      while the last is still running), so the durable fsync at the end has little left to do.

    A failure of either (the disk's EIO) is raised by :meth:`finish`."""

    def __init__(self, fd: int, written: int) -> None:
        self._fd = fd
        self._written = written  # set by the network thread only
        self._signalled = written
        self._stopping = False  # True: hash what is written, then end; see stop()
        self._abandon = False
        self._wake = threading.Event()
        self._hasher = hashlib.sha256()
        self._hashed = 0
        self._error: OSError | None = None
        self._synced = written
        self._sync: Future[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._thread = threading.Thread(target=self._hash, name="videojobs-sha256", daemon=True)
        self._thread.start()

    def wrote(self, done: int) -> None:
        """The network thread wrote up to byte ``done``."""
        self._written = done
        if done - self._signalled >= HASH_READ:
            self._signalled = done
            self._wake.set()
        if done - self._synced >= SYNC_EVERY:
            self._synced = done
            self._write_back()

    def _hash(self) -> None:
        # one buffer, read into again and again: a fresh 1 MiB bytes per read came from this
        # thread's own malloc arena, and the 1 GB download's peak RSS varied from 53 to 112 MiB
        buffer = bytearray(HASH_READ)
        view = memoryview(buffer)
        try:
            while not self._abandon:
                self._wake.clear()
                written = self._written
                if self._hashed < written:
                    want = min(HASH_READ, written - self._hashed)
                    got = _read_at(self._fd, view[:want], self._hashed)
                    if not got:
                        raise OSError(errno.EIO, "the .part is shorter than what was written to it")
                    self._hasher.update(view[:got])
                    self._hashed += got
                elif self._stopping:
                    return
                else:
                    self._wake.wait()
        except OSError as exc:
            self._error = exc

    def _write_back(self) -> None:
        if self._sync is not None:
            if not self._sync.done():
                return  # the next one covers these bytes too
            self._sync.result()  # a disk that failed a write-back fails the download now
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="videojobs-writeback")
        self._sync = self._pool.submit(_fdatasync, self._fd)

    def finish(self, done: int) -> str:
        """The SHA-256 of the ``done`` bytes written, once hashed; any failure of the threads, raised."""
        self._written = done
        self._end()
        if self._error is not None:
            raise self._error
        if self._hashed != done:  # pragma: no cover - the thread hashes all that is written or fails
            raise OSError(errno.EIO, f"hashed {self._hashed} of {done} bytes")
        return self._hasher.hexdigest()

    def stop(self) -> bool:
        """End both threads without waiting for the hashing (the file is paused or given up): True
        when either had failed (a write-back or a read-back: the bytes on disk are in doubt)."""
        self._abandon = True
        try:
            self._end()
        except OSError:
            return True
        return self._error is not None

    def _end(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join()
        if self._pool is not None:  # a second Ctrl-C while it waits leaves the sync, and its failure, to the next stop
            self._pool.shutdown(wait=True)
            self._pool = None
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.result()
