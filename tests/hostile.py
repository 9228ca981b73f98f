"""Hostile HTTP servers on real loopback sockets: each connection gets a scripted misbehaviour.

A scenario is a function ``(request: Request, conn: socket.socket) -> None`` that writes
whatever bytes it likes. Every loop here is bounded in bytes and in time, and stops by
itself when the client goes away, so a test can never leave a server running.
"""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MAX_SECONDS = 30.0  # no scenario writes for longer than this
MAX_BYTES = 64 * 1024 * 1024  # nor more than this


@dataclass
class Request:
    line: str
    headers: dict[str, str]


Scenario = Callable[[Request, socket.socket], None]


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk or len(data) > 65536:
            return None
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    line, *rest = head.split("\r\n")
    headers = {}
    for item in rest:
        name, _, value = item.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(line, headers)


@contextmanager
def hostile(scenario: Scenario) -> Iterator[str]:
    """Serve ``scenario`` on a free loopback port; yield the base URL; stop afterwards."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn: socket.socket = self.request
            try:
                while (request := _read_request(conn)) is not None:
                    scenario(request, conn)
            except OSError:
                pass  # the client went away: that is how most scenarios end

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 128  # socketserver's 5: a sixth connection at once waited a second for its SYN again

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- scenarios ------------------------------------------------------------------------------------

OK_BODY = json.dumps({"task_id": "t", "status": "processing"}).encode()  # Vozo's running answer


def answer(status: int = 200, body: bytes = OK_BODY, headers: dict[str, str] | None = None) -> Scenario:
    """A well-formed answer (with any status, headers and body)."""

    def scenario(request: Request, conn: socket.socket) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nContent-Type: application/json\r\n{extra}\r\n"
        conn.sendall(head.encode() + body)

    return scenario


def trickle_headers(interval: float = 0.2) -> Scenario:
    """The status line and headers one byte at a time (never the body): read timeouts never trip."""

    def scenario(request: Request, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"y" * 40) for i in range(400))
        end = time.monotonic() + MAX_SECONDS
        for byte in head:
            if time.monotonic() > end:
                return
            conn.sendall(bytes([byte]))
            time.sleep(interval)

    return scenario


def trickle_body(interval: float = 0.2) -> Scenario:
    """Headers at once, then the body one byte at a time."""

    def scenario(request: Request, conn: socket.socket) -> None:
        body = b" " * 4000 + OK_BODY
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/json\r\n\r\n" % len(body))
        end = time.monotonic() + MAX_SECONDS
        for byte in body:
            if time.monotonic() > end:
                return
            conn.sendall(bytes([byte]))
            time.sleep(interval)

    return scenario


def endless_body(chunk: int = 256 * 1024) -> Scenario:
    """A chunked body that does not end (until MAX_BYTES, or the client hangs up)."""

    def scenario(request: Request, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n")
        piece = b"%x\r\n%s\r\n" % (chunk, b"[" * chunk)
        sent = 0
        end = time.monotonic() + MAX_SECONDS
        while sent < MAX_BYTES and time.monotonic() < end:
            conn.sendall(piece)
            sent += chunk

    return scenario


def gzip_bomb(decoded: int = 1024 * 1024 * 1024, encoding: str = "gzip") -> Scenario:
    """``decoded`` bytes of JSON whitespace, compressed (about 1 MB on the wire per GB), streamed."""

    def scenario(request: Request, conn: socket.socket) -> None:
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: %s\r\n"
            b"Content-Type: application/json\r\n\r\n" % encoding.encode()
        )
        block = b" " * (1024 * 1024)
        end = time.monotonic() + MAX_SECONDS
        for _ in range(decoded // len(block)):
            if time.monotonic() > end:
                return
            data = comp.compress(block)
            if data:
                conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
        data = comp.compress(OK_BODY) + comp.flush()
        conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))

    return scenario


def compressed_then_endless(encoding: str = "gzip", tail: str = "zeros") -> Scenario:
    """A small answer, compressed whole (a complete gzip member or deflate stream), then a tail
    that does not end (until MAX_BYTES): ``zeros``, or ``members`` (empty gzip members, each a
    valid one that decodes to nothing)."""

    def scenario(request: Request, conn: socket.socket) -> None:
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        comp = zlib.compressobj(6, zlib.DEFLATED, wbits)
        head = comp.compress(OK_BODY) + comp.flush()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: %s\r\n"
            b"Content-Type: application/json\r\n\r\n%x\r\n%s\r\n" % (encoding.encode(), len(head), head)
        )
        piece = bytes(64 * 1024) if tail == "zeros" else gzip.compress(b"") * 3000
        chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        sent = 0
        end = time.monotonic() + MAX_SECONDS
        while sent < MAX_BYTES and time.monotonic() < end:
            conn.sendall(chunk)
            sent += len(piece)

    return scenario


def claims(encoding: str, body: bytes = OK_BODY) -> Scenario:
    """A body sent as is, under a Content-Encoding it is not in."""
    return answer(body=body, headers={"Content-Encoding": encoding})


def reset_mid_body() -> Scenario:
    """Half the promised body, then a TCP reset."""

    def scenario(request: Request, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(OK_BODY), OK_BODY[:10]))
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    return scenario


def silent() -> Scenario:
    """Reads the request and never answers (until MAX_SECONDS)."""

    def scenario(request: Request, conn: socket.socket) -> None:
        conn.settimeout(MAX_SECONDS)
        conn.recv(1)  # returns when the client hangs up

    return scenario


def echo_authorization(status: int = 200) -> Scenario:
    """Echoes the request's Authorization header back: in the body (JSON and text) and a header."""

    def scenario(request: Request, conn: socket.socket) -> None:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ")
        if status == 200:
            body = json.dumps({"task_id": key, "status": "failed", "video_url": auth, "echo": {"authorization": auth}})
        else:
            body = json.dumps({"code": "BAD_KEY", "message": f"invalid token {auth} (key {key})"})
        data = body.encode()
        conn.sendall(
            b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nX-Echo: %s\r\nContent-Type: application/json\r\n\r\n%s"
            % (status, len(data), auth.encode(), data)
        )

    return scenario


def holding(answer: bytes, arrived: threading.Semaphore, release: threading.Event) -> Scenario:
    """Sends ``answer`` (b"": nothing) to each request, tells ``arrived``, then holds the
    connection until ``release`` (at most six CLOSE_GUARDs): a vendor that never finishes."""

    def scenario(request: Request, conn: socket.socket) -> None:
        conn.sendall(answer)
        arrived.release()
        release.wait(6 * CLOSE_GUARD)

    return scenario


def closed_mid_calls(client: Any, calls: list[Callable[[], object]], arrived: threading.Semaphore) -> list[object]:
    """Each of ``calls`` (of a blocking ``videojobs.Client``: ``client.status``, ``client.download``)
    in a thread of its own, the client closed from this one once ``arrived`` has been released as
    many times (the server has each request, and holds it or its answer's end): what each call
    returned or raised, in their order. Each must end within CLOSE_GUARD seconds of the close."""
    ended: dict[int, object] = {}

    def calling(n: int) -> None:
        try:
            ended[n] = calls[n]()
        except BaseException as exc:  # the caller's outcome, whatever it is
            ended[n] = exc

    callers = [threading.Thread(target=calling, args=(n,), daemon=True) for n in range(len(calls))]
    for caller in callers:
        caller.start()
    for _ in calls:
        assert arrived.acquire(timeout=MAX_SECONDS), "a request never reached the server"
    client.close()
    for caller in callers:
        caller.join(CLOSE_GUARD)
        assert not caller.is_alive(), "a call outlived the client's close"
    return [ended[n] for n in range(len(calls))]


CLOSE_GUARD = 20.0
"""A guard, not a measure: a call the close ends returns at once; one it did not end ran until
its vendor let go (the scenarios hold the request longer than this)."""
