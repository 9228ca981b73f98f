"""The sandbox's file host: each finished job's video, as deterministic bytes of a chosen size.

Served at ``https://videos.sandbox.invalid/<vendor>/<task>.mp4`` (a job's first video) and
``.../<vendor>/<task>/<n>.mp4`` (its n-th after that: Duomi's second is ``<task>/1.mp4``) through
the embedded transports, and at ``<root>/files/...`` under uvicorn (the answers' URLs point there:
``Sandbox.file_root``). The task is quoted whole, so its own ``/`` is ``%2F``: the index can be
nobody's task. The older ``<task>-<n>.mp4`` (of recordings made before) still names the job
``<task>-<n>`` when the sandbox has it, else ``<task>``'s n-th video. Like a CDN or S3 it supports ``Range`` with ``If-Range``
(a strong ETag and Last-Modified), answers 416 past the end, and 403 once a signed link
(``?exp=``, see the ``ttl<s>`` option) has expired. A job's ``f<fault>`` options make it
misbehave (``_jobs.FILE_FAULTS``). The bytes are a pseudo-random 1 MiB block, repeated: any
range can be served without holding the file, and a client's checksum can be checked.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

FILE_HOST = "videos.sandbox.invalid"
BLOCK = 1024 * 1024
CHUNK = 256 * 1024
SLOW_CHUNK, SLOW_DELAY = 16 * 1024, 0.05  # the "slow" fault: about 320 KiB/s

_NAME = re.compile(
    r"/(?P<vendor>[a-z0-9_]+)/(?:(?P<folder>[^/]+)/(?P<index>[0-9]{1,3})|(?P<task>[^/]+?)(?:-(?P<n>\d))?)\.mp4"
)
"""``/<vendor>/<task>/<n>.mp4``, or ``/<vendor>/<task>.mp4`` (``<task>-<n>.mp4``: the older form)."""
_RANGE = re.compile(r"bytes=([0-9]{1,18})-([0-9]{0,18})")
"""One byte range; ASCII digits only, and few enough for int() (a 5,000-digit one passed \\d+
and raised in int(), a 500)."""
_DIGITS = re.compile(r"[0-9]{1,18}")
"""A link's expiry, Unix seconds: ``str.isdigit`` took "²", which int() refuses."""
_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)
_HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in to download.</body></html>"


@functools.lru_cache(maxsize=16)
def block(task: str) -> bytes:
    """The job's 1 MiB pattern, starting like an MP4 (``ftyp`` box)."""
    seed = int.from_bytes(hashlib.blake2b(task.encode(), digest_size=8).digest(), "big")
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    return head + random.Random(seed).randbytes(BLOCK - len(head))


def content(task: str, start: int, end: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of the job's file, in chunks of at most ``chunk``."""
    pattern = block(task)
    pos = start
    while pos < end:
        offset = pos % BLOCK
        piece = pattern[offset : offset + min(chunk, end - pos, BLOCK - offset)]
        yield piece
        pos += len(piece)


def sha256_of(task: str, size: int) -> str:
    """What a client that saved the whole file should find (for tests and the bench)."""
    digest = hashlib.sha256()
    for piece in content(task, 0, size, BLOCK):
        digest.update(piece)
    return digest.hexdigest()


@dataclass
class FileAnswer:
    """One answer of the file host: status, headers, and the body as chunks (never whole)."""

    status: int
    headers: dict[str, str]
    chunks: Iterator[bytes] = field(default_factory=lambda: iter(()))
    delay: float = 0.0  # seconds between two chunks
    drop_after: int | None = None  # bytes of the body sent before the connection drops
    count: Any = None  # called with each chunk's size (the job's byte counter)

    def body(self) -> Iterator[bytes]:
        """The chunks, counted, cut at ``drop_after`` (the caller then drops the connection)."""
        sent = 0
        for piece in self.chunks:
            if self.drop_after is not None and sent + len(piece) >= self.drop_after:
                piece = piece[: self.drop_after - sent]
                if piece and self.count:
                    self.count(len(piece))
                if piece:
                    yield piece
                return
            sent += len(piece)
            if self.count:
                self.count(len(piece))
            yield piece


def fixed(status: int, content_type: str, body: bytes) -> FileAnswer:
    """A short answer of the file host's own (an error page, S3's XML), its length declared: one
    sent without it went out as ``content-length: 0`` with a body after it, which h11 refused
    mid-answer (the client saw an empty body and a connection closed under it)."""
    return FileAnswer(status, {"content-type": content_type, "content-length": str(len(body))}, iter([body]))


def answer(job: Any, n: int, query: Mapping[str, str], headers: Mapping[str, str], now: float) -> FileAnswer:
    """The file host's answer for ``job``'s n-th video (``job`` None: no such file); ``now`` in Unix seconds."""
    if job is None or n > 1:
        return fixed(404, "application/xml", b"<Error><Code>NoSuchKey</Code></Error>")
    script, task = job.script, job.task_id + (f"-{n}" if n else "")
    faults = script.file_faults
    expiry = query.get("exp")
    if "expired" in faults or (expiry is not None and (not _DIGITS.fullmatch(expiry) or now > int(expiry))):
        return fixed(403, "application/xml", _DENIED)
    if "html" in faults:
        return fixed(200, "text/html; charset=utf-8", _HTML)
    job.file_gets += 1

    def count(size: int) -> None:
        job.file_bytes += size

    size = script.size
    ranged = "norange" not in faults
    out = {"content-type": "video/mp4"}
    etag = '"' + hashlib.blake2b(f"{task}:{size}".encode(), digest_size=8).hexdigest() + '"'
    # on the wall's clock, as the Date beside it (RFC 9110 8.8.2.1: never later): the vendor's
    # simulated clock runs --time-scale times faster, and was hours past Date at 1000x
    modified = formatdate(min(job.created_wall, now), usegmt=True)
    if ranged:
        out.update({"accept-ranges": "bytes", "etag": etag, "last-modified": modified})
    start, end, status = 0, size, 200
    wanted = _RANGE.fullmatch(headers.get("range", "").strip()) if ranged else None
    if wanted and wanted[2] and int(wanted[2]) < int(wanted[1]):
        wanted = None  # "bytes=5-3" is no range (RFC 9110 14.1.1): the whole file, as for any invalid one
    condition = headers.get("if-range")
    if wanted and (condition is None or condition in (etag, modified)):
        first = int(wanted[1])
        last = int(wanted[2]) + 1 if wanted[2] else size
        if first >= size:
            return FileAnswer(416, {"content-range": f"bytes */{size}"})
        start, end, status = first, min(last, size), 206
        out["content-range"] = f"bytes {start}-{end - 1}/{size}"
    out["content-length"] = str(end - start + (1000 if "badlen" in faults else 0))
    slow = "slow" in faults
    result = FileAnswer(status, out, content(task, start, end, SLOW_CHUNK if slow else CHUNK), count=count)
    if slow:
        result.delay = SLOW_DELAY
    if "drop" in faults and job.file_gets == 1:
        result.drop_after = max(0, int(size * script.drop_at) - start)
    if "badlen" in faults:
        result.drop_after = end - start  # all it has, then the connection closes short of its promise
    return result


def parse_path(path: str) -> tuple[str, str, int, bool] | None:
    """``/<vendor>/<task>/<n>.mp4`` → (vendor, task, n, False); ``/<vendor>/<task>[-n].mp4`` →
    (vendor, task, n, True): True, the older name, says that ``<task>-<n>`` may be the job."""
    from urllib.parse import unquote

    match = _NAME.fullmatch(path)
    if match is None:
        return None
    if match["folder"] is not None:
        return match["vendor"], unquote(match["folder"]), int(match["index"]), False
    return match["vendor"], unquote(match["task"]), int(match["n"] or 0), match["n"] is not None
