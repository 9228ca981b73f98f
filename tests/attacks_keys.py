r"""Attacks on the keys: vendors that echo the key back in every form, on loopback sockets.

Each attack serves one hostile answer (tests/hostile.py's server) and reads it every way a
user can: ``Client.status``, ``AsyncClient.status``, and the CLI's ``status`` plain, with
``-v`` and with ``--json``; with the httpx, httpcore, aiohttp and videojobs loggers at DEBUG.
``safe`` means the key, in no form (see :func:`shows_key`), appears in anything a user can read:
``repr``, ``to_dict()``, the typed ``raw`` model, every field, the error's message, ``raw``
and traceback, the log lines, the CLI's stdout and stderr. For the short key: that honest
answers come back intact. ``scripts/attacks.py`` runs each in a fresh process; the tests
(tests/test_security.py) run the same :func:`run`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import io
import json
import logging
import re
import socket
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import videojobs
from tests import hostile
from videojobs._cli import main as cli

KEY = "sk-Ezm/echo+KEY=42&<x>'q"
"""The key every attack is sent: characters that JSON encoders escape (``= < > & ' /``) and that
percent-encoders encode (``/ + = & < > '``)."""

SHORT_KEY = "e"  # in "completed", "processing", most URLs and messages

BACKSLASH_KEY = "sk-Ezm\\echo\\\\KEY=42/x"
"""A key holding a backslash and two in a row: JSON escapes them, and each escape's backslashes
run into the next character's."""

TIMEOUT = 2.0  # seconds per request attempt
LOGGERS = ("videojobs", "httpx", "httpcore", "aiohttp")

# --- the forms of an echo -----------------------------------------------------------------------------------

Form = Callable[[str], str]  # key -> the text placed between the quotes of a JSON string


def _json(text: str) -> str:
    return json.dumps(text)[1:-1]


def _every_char(text: str, upper: bool = False) -> str:
    return "".join((f"\\u{ord(c):04X}" if upper else f"\\u{ord(c):04x}") for c in text)


def _gson(text: str) -> str:  # Gson's HTML-safe escaping (its default)
    return _json(text).translate({ord(c): f"\\u{ord(c):04x}" for c in "=<>&'"})


def _lower_hex(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), text)


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"user:{key}".encode()).decode()


FORMS: dict[str, Form] = {
    "as is": _json,
    "every char \\uXXXX": _every_char,
    "every char \\uXXXX, upper hex": lambda k: _every_char(k, upper=True),
    "Gson-escaped (\\u003d)": _gson,
    "slash escaped (\\/)": lambda k: _json(k).replace("/", "\\/"),
    "percent-encoded (%3D)": lambda k: urllib.parse.quote(k, safe=""),
    "percent-encoded, lower hex (%3d)": lambda k: _lower_hex(urllib.parse.quote(k, safe="")),
    "quote_plus": lambda k: urllib.parse.quote_plus(k),
    "percent-encoded twice (%253D)": lambda k: urllib.parse.quote(urllib.parse.quote(k, safe=""), safe=""),
    "every byte percent-encoded (%73%6B)": lambda k: "".join(f"%{b:02X}" for b in k.encode()),
    "percent-encoded, then Gson-escaped": lambda k: _gson(urllib.parse.quote(k, safe="/=")),
    "slash-escaped JSON, then percent-encoded (%5C%2F)": lambda k: urllib.parse.quote(
        json.dumps({"auth": k}).replace("/", "\\/"), safe=""
    ),
    "JSON inside a JSON string": lambda k: _json(json.dumps({"authorization": f"Bearer {k}"}).replace("/", "\\/")),
    "base64 of user:key (Basic)": lambda k: _basic(k),
    "HTML numeric references (&#115;)": lambda k: "".join(f"&#{ord(c)};" for c in k),
    "HTML hex references, some (&#x73;)": lambda k: "".join(f"&#x{ord(c):X};" if i % 2 else c for i, c in enumerate(k)),
    "HTML-escaped (&amp;)": lambda k: html.escape(k),
    "hex of its bytes": lambda k: k.encode().hex(),
    "hex of its bytes, upper case": lambda k: k.encode().hex().upper(),
}


def _received(request: hostile.Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ")


def _send(conn: socket.socket, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nContent-Type: application/json\r\n{extra}\r\n"
    conn.sendall(head.encode("latin-1") + body)


def echo_everywhere(form: Form) -> hostile.Scenario:
    """A 200 answer (ezmodel's shape) with the key, in ``form``, in the state word, the video URL,
    a nested object's key and value, the error's message and code, and a header (as is)."""

    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        echo = form(_received(request))
        body = (
            '{"id": "t", "object": "video", "status": "ECHO", "progress": 50,'
            ' "url": "https://cdn.example.com/v.mp4?token=ECHO&sig=1",'
            ' "error": {"message": "invalid token ECHO", "code": "ECHO"},'
            ' "metadata": {"ECHO": {"echo": "ECHO"}}}'
        ).replace("ECHO", echo)
        _send(conn, 200, body.encode(), {"X-Echo": f"Bearer {_received(request)}"})

    return scenario


def echo_in_error_answer(request: hostile.Request, conn: socket.socket) -> None:
    """A 401 whose message holds the key in every form at once."""
    echoes = " ".join(form(_received(request)) for form in FORMS.values())
    code = FORMS["Gson-escaped (\\u003d)"](_received(request))
    body = '{"error": {"message": "invalid token: ECHOES", "code": "CODE"}}'.replace("ECHOES", echoes)
    body = body.replace("CODE", code)
    _send(conn, 401, body.encode(), {"WWW-Authenticate": f'Bearer error="{_received(request)}"'})


def echo_in_bad_header_line(request: hostile.Request, conn: socket.socket) -> None:
    """A header line without a colon: the HTTP parser's error quotes it (a NetworkError)."""
    body = b"{}"
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nX-Echo Bearer %s\r\nContent-Length: 2\r\n\r\n%s" % (_received(request).encode(), body)
    )


def echo_in_content_encoding(request: hostile.Request, conn: socket.socket) -> None:
    """A Content-Encoding nobody asked for, named in the MalformedResponseError."""
    _send(conn, 200, hostile.OK_BODY, {"Content-Encoding": f"x-{_received(request)}"})


def echo_across_the_cut(request: hostile.Request, conn: socket.socket) -> None:
    """A body over max_response_bytes with the key across the 800 bytes kept in ``raw``."""
    body = b'{"status": "' + b"x" * 770 + _received(request).encode() + b'", "pad": "' + b"y" * 4000 + b'"}'
    _send(conn, 200, body)


def echo_not_json(request: hostile.Request, conn: socket.socket) -> None:
    """An HTML page (quoted in the message) with the key Gson-escaped and as is."""
    key = _received(request)
    _send(conn, 200, f"<html>proxy says: token {_gson(key)} / {key}</html>".encode())


def echo_in_wide_text(status: int, encoding: str) -> hostile.Scenario:
    """An answer in UTF-16 or UTF-32 (``json.loads`` on bytes would read either) with the key as
    is in the error's message: refused as not UTF-8 JSON, its bytes kept in ``raw`` and quoted."""

    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        body = {"id": "t", "object": "video", "status": "failed", "error": {"message": "invalid token KEY"}}
        _send(conn, status, json.dumps(body).replace("KEY", _received(request)).encode(encoding))

    return scenario


def echo_cut_in_a_long_header(request: hostile.Request, conn: socket.socket) -> None:
    """A header line over aiohttp's limit with the key where its error's quote (the line's first
    100 bytes) ends: the quote holds all of the key but its last character."""
    key = _received(request).encode()
    line = b"X-Echo: " + b"x" * (101 - len(key)) + key + b"y" * (1 << 17)
    conn.sendall(b"HTTP/1.1 200 OK\r\n" + line + b"\r\nContent-Length: 2\r\n\r\n{}")


def echo_in_the_headers_of_a_cut_answer(request: hostile.Request, conn: socket.socket) -> None:
    """A status line and a header echoing the Authorization, then the connection closed before
    the headers end: aiohttp's ServerDisconnectedError holds the parsed answer (its C parser's
    object, which shows the header as sent)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Echo: Bearer %s\r\n" % _received(request).encode())
    conn.shutdown(socket.SHUT_WR)


def echo_upper_cased_in_a_bad_header_line(request: hostile.Request, conn: socket.socket) -> None:
    """The key upper-cased in a header line without a colon: the parsers quote the line whole."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n%s\r\nContent-Length: 2\r\n\r\n{}" % _received(request).upper().encode())


def echo_upper_cased_in_the_reason(request: hostile.Request, conn: socket.socket) -> None:
    """A 200 whose reason phrase is the key upper-cased: httpcore's DEBUG log line quotes it."""
    conn.sendall(
        b"HTTP/1.1 200 %s\r\nContent-Length: %d\r\n\r\n%s"
        % (_received(request).upper().encode(), len(hostile.OK_BODY), hostile.OK_BODY)
    )


def echo_upper_cased_in_content_encoding(request: hostile.Request, conn: socket.socket) -> None:
    """A Content-Encoding nobody asked for, the key in it upper-cased: no longer quoted at all."""
    _send(conn, 200, hostile.OK_BODY, {"Content-Encoding": f"x-{_received(request).upper()}"})


def honest_answers(request: hostile.Request, conn: socket.socket) -> None:
    """An honest finished answer (ezmodel's documented example)."""
    body = {
        "id": "t",
        "object": "video",
        "status": "completed",
        "progress": 100,
        "created_at": 1705334400,
        "url": "https://storage.example.com/videos/vid_abc123xyz456.mp4",
        "metadata": {"fps": 30, "seed": 12345},
    }
    _send(conn, 200, json.dumps(body).encode())


# name -> (scenario, key, max_response_bytes)
_SCENARIOS: dict[str, tuple[hostile.Scenario, str, int]] = {
    **{f"echo {name} in a 200 answer": (echo_everywhere(form), KEY, 1 << 20) for name, form in FORMS.items()},
    "echo in every form in a 401 answer": (echo_in_error_answer, KEY, 1 << 20),
    "echo in every form of a key holding backslashes, in a 401 answer": (echo_in_error_answer, BACKSLASH_KEY, 1 << 20),
    "echo in a header line that does not parse": (echo_in_bad_header_line, KEY, 1 << 20),
    "echo in an unknown Content-Encoding": (echo_in_content_encoding, KEY, 1 << 20),
    "echo across the cut of a too-large body": (echo_across_the_cut, KEY, 2048),
    "echo in a body that is not JSON": (echo_not_json, KEY, 1 << 20),
    "echo in a UTF-16 answer": (echo_in_wide_text(200, "utf-16"), KEY, 1 << 20),
    "echo in a UTF-32 401 answer": (echo_in_wide_text(401, "utf-32-be"), KEY, 1 << 20),
    "echo cut short in a header line over the limit": (echo_cut_in_a_long_header, KEY, 1 << 20),
    "echo in the headers of an answer cut before they end": (echo_in_the_headers_of_a_cut_answer, KEY, 1 << 20),
    "echo upper-cased in a header line that does not parse": (echo_upper_cased_in_a_bad_header_line, KEY, 1 << 20),
    "echo upper-cased in the status line's reason": (echo_upper_cased_in_the_reason, KEY, 1 << 20),
    "echo upper-cased in an unknown Content-Encoding": (echo_upper_cased_in_content_encoding, KEY, 1 << 20),
    "one-character key, honest answer": (honest_answers, SHORT_KEY, 1 << 20),
}

_NETWORK_ERRORS = (
    "echo in a header line that does not parse",
    "echo cut short in a header line over the limit",
    "echo in the headers of an answer cut before they end",
    "echo upper-cased in a header line that does not parse",
)

ATTACKS: dict[str, float] = dict.fromkeys(_SCENARIOS, 10.0)  # a few calls of at most TIMEOUT each

# --- the oracle ---------------------------------------------------------------------------------------------

_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")
_HEX_TOKEN = re.compile(r"[0-9a-fA-F]{16,}")


def _one_escape(match: re.Match[str]) -> str:
    escape = match[1]
    return chr(int(escape[1:], 16)) if len(escape) == 5 else escape


def _layers(text: str) -> Iterator[str]:
    """``text`` and what it decodes to under JSON escapes, percent-decoding and base64, up to three
    layers deep (written apart from the library's scrubber, on purpose)."""
    seen = {text}
    frontier = [text]
    for _ in range(3):
        following = []
        for item in frontier:
            # one escape at a time, left to right, as a JSON decoder reads one level: a greedy run
            # of backslashes also swallowed a key's own escaped backslash, and hid it
            unescaped = re.sub(r"\\(u[0-9a-fA-F]{4}|[/\"'\\])", _one_escape, item)
            wide = re.sub(r"\x00|\\x00", "", item)  # UTF-16/32 text as read (NULs) or in a bytes repr
            candidates = [
                unescaped,
                urllib.parse.unquote(item),
                urllib.parse.unquote_plus(item),
                wide,
                html.unescape(item),
            ]
            for token in _HEX_TOKEN.findall(item):
                candidates.append(bytes.fromhex(token[: len(token) // 2 * 2]).decode("latin-1"))
            for token in _B64_TOKEN.findall(item):
                for decode in (base64.b64decode, base64.urlsafe_b64decode):
                    with contextlib.suppress(ValueError):
                        candidates.append(decode(token + "=" * (-len(token) % 4)).decode("latin-1"))
            for candidate in candidates:
                if candidate not in seen:
                    seen.add(candidate)
                    following.append(candidate)
        frontier = following
    yield from seen


def shows_key(text: object, key: str) -> bool:
    """Whether ``text`` shows ``key``, or two thirds of it from either end, in any form and any case."""
    part = max(len(key) * 2 // 3, 1)
    pieces = {k.lower() for k in (key, key[:part], key[-part:])}
    return any(k in layer.lower() for layer in _layers(str(text)) for k in pieces)


# --- the attack ---------------------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def _debug_logs() -> Iterator[_Capture]:
    """Every library logger at DEBUG into one capture; levels and handlers restored afterwards
    (the CLI's ``-v`` adds its own handler)."""
    loggers = [logging.getLogger(name) for name in LOGGERS]
    saved = [(logger.level, list(logger.handlers)) for logger in loggers]
    capture = _Capture()
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(capture)
    try:
        yield capture
    finally:
        for logger, (level, handlers) in zip(loggers, saved, strict=True):
            logger.setLevel(level)
            logger.handlers[:] = handlers


def _readable(result: videojobs.JobStatus | videojobs.VideoJobsError) -> list[object]:
    """Everything a user can read of a result."""
    if isinstance(result, videojobs.JobStatus):
        raw = result.raw
        return [repr(result), json.dumps(result.to_dict()), repr(raw), raw.to_dict() if raw is not None else None,
                result.vendor_state, result.error, result.video_urls, result.problems]  # fmt: skip
    return [str(result), repr(result), result.message, result.raw, result.code,
            "".join(traceback.format_exception(result)), *_chain(result)]  # fmt: skip


def _chain(error: BaseException) -> Iterator[str]:
    """What a debugger or an error tracker shows of the exceptions behind ``error``: each one's
    repr, arguments and attributes (aiohttp's errors keep the request's headers there)."""
    seen: set[int] = set()
    pending = [error.__cause__, error.__context__]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield f"{current!r} {current.args!r} {vars(current)!r}"
        pending += [current.__cause__, current.__context__]


def _outcome(result: videojobs.JobStatus | videojobs.VideoJobsError) -> str:
    if isinstance(result, videojobs.JobStatus):
        return f"JobStatus {result.state.value} ({result.vendor_state!r})"
    return f"{type(result).__name__}: {result.message[:60]}"


def run(name: str) -> dict[str, Any]:
    scenario, key, limit = _SCENARIOS[name]
    texts: list[object] = []
    results: list[videojobs.JobStatus | videojobs.VideoJobsError] = []
    with hostile.hostile(scenario) as url, _debug_logs() as logs:
        kwargs: dict[str, Any] = {
            "api_keys": {"ezmodel": key},
            "base_urls": {"ezmodel": url},
            "max_retries": 0,
            "request_timeout": TIMEOUT,
            "max_response_bytes": limit,
        }
        try:
            with videojobs.Client(**kwargs) as client:
                results.append(client.status("ezmodel:t"))
        except videojobs.VideoJobsError as exc:
            results.append(exc)

        async def go() -> videojobs.JobStatus:
            async with videojobs.AsyncClient(**kwargs) as aclient:
                return await aclient.status("ezmodel:t")

        try:
            results.append(asyncio.run(go()))
        except videojobs.VideoJobsError as exc:
            results.append(exc)
        # The CLI retries a NetworkError with backoff (seconds): its output for one is read once, plain;
        # httpcore's DEBUG line with the parser's error is read from the library calls above.
        for extra in [[]] if name in _NETWORK_ERRORS else ([], ["-v"], ["--json"]):
            out, err = io.StringIO(), io.StringIO()
            argv = ["status", *extra, "--api-key", f"ezmodel={key}", "--base-url", f"ezmodel={url}", "ezmodel:t"]
            cli(argv, out, err)
            texts += [out.getvalue(), err.getvalue()]
        texts += logs.lines
    for result in results:
        texts += _readable(result)
    if key == SHORT_KEY:  # the short key is not scrubbed: the answer must come back as it was sent
        honest = results[0]
        safe = (
            isinstance(honest, videojobs.JobStatus)
            and honest.vendor_state == "completed"
            and honest.video_urls == ("https://storage.example.com/videos/vid_abc123xyz456.mp4",)
            and "[REDACTED]" not in "".join(map(str, texts))
        )
    else:
        safe = not any(shows_key(text, key) for text in texts)
    return {
        "outcome": _outcome(results[0]),
        "typed": all(isinstance(r, (videojobs.JobStatus, videojobs.VideoJobsError)) for r in results),
        "safe": safe,
    }


if __name__ == "__main__":
    for attack in ATTACKS:
        start = time.monotonic()
        print(f"{attack}: {run(attack)} {time.monotonic() - start:.2f} s")
