"""Hostile file hosts on real loopback sockets (served by ``tests.hostile.hostile``).

:class:`FileHost` serves a video that can change between two requests (a new version, a new
ETag), resume it wrongly (ignoring ``If-Range``, lying about the ``Content-Range`` total or
start), drop the connection part-way, or trickle it a byte at a time. It records every
request's headers, so a test can count attempts instead of timing them.
"""

from __future__ import annotations

import hashlib
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field

from tests.hostile import MAX_SECONDS, Request

HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"  # an MP4's first box: not sniffed as a page


def video(seed: int, size: int) -> bytes:
    """``size`` bytes of a video-looking file, different for each seed."""
    return (HEAD + random.Random(seed).randbytes(size))[:size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FileHost:
    """One file at ``/v.mp4``; version ``i`` (and its ETag) serves the i-th GET, the last one after.

    ``drop_at``: the first GET's body stops at this fraction and the connection closes.
    ``ignore_if_range``: a Range is honoured whatever If-Range says (the splice the issue shows).
    ``total_delta`` / ``start_delta``: added to the Content-Range total / start of a 206.
    ``trickle``: seconds between two bytes of the body (bounded by MAX_SECONDS).
    ``odd_validators``: text after each ETag's version and Last-Modified's date, sent as UTF-8
    (``"\u00e9"``: bytes no If-Range can carry back).
    ``content_range``: sent instead of a 206's true Content-Range.
    ``cookies``: Set-Cookie headers of 3 KB sent with every answer, each a new name.
    ``tail``: bytes sent after each body, past its Content-Length, on a connection kept open.
    """

    versions: list[bytes]
    drop_at: float | None = None
    ignore_if_range: bool = False
    total_delta: int = 0
    start_delta: int = 0
    trickle: float | None = None
    odd_validators: str = ""
    content_range: str | None = None
    cookies: int = 0
    tail: bytes = b""
    requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def etag(self, n: int) -> str:
        version = min(n, len(self.versions) - 1)
        return f'"v{version}-{sha(self.versions[version])[:12]}{self.odd_validators}"'

    def __call__(self, request: Request, conn: socket.socket) -> None:
        with self.lock:
            n = len(self.requests)
            self.requests.append(request.headers)
        body = self.versions[min(n, len(self.versions) - 1)]
        etag, size = self.etag(n), len(body)
        start, status = 0, "200 OK"
        extra = f"ETag: {etag}\r\nAccept-Ranges: bytes\r\nLast-Modified: Tue, 01 Dec 2026 10:00:0{min(n, 9)} GMT{self.odd_validators}\r\n"
        wanted = re.fullmatch(r"bytes=(\d+)-", request.headers.get("range", ""))
        if wanted and (self.ignore_if_range or request.headers.get("if-range") in (None, etag)):
            start, status = int(wanted[1]), "206 Partial Content"
            shown_start, total = start + self.start_delta, size + self.total_delta
            extra += f"Content-Range: {self.content_range or f'bytes {shown_start}-{total - 1}/{total}'}\r\n"
        extra += "".join(f"Set-Cookie: c{n}x{i}={'z' * 3000}; Path=/\r\n" for i in range(self.cookies))
        payload = body[start:]
        head = f"HTTP/1.1 {status}\r\nContent-Type: video/mp4\r\nContent-Length: {len(payload)}\r\n{extra}\r\n"
        conn.sendall(head.encode())
        if n == 0 and self.drop_at is not None:
            conn.sendall(payload[: int(size * self.drop_at)])
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()
            raise OSError("dropped on purpose")
        if self.trickle is None:
            conn.sendall(payload + self.tail)
            if self.tail:  # open, so that what follows the body is read only if asked for
                time.sleep(1.0)
            return
        end = time.monotonic() + MAX_SECONDS
        for byte in payload:
            if time.monotonic() > end:
                return
            conn.sendall(bytes([byte]))
            time.sleep(self.trickle)

    @property
    def gets(self) -> int:
        return len(self.requests)
