"""Attacks on the terminal (surface ``cli``): a hostile vendor drives every output path of the command.

The vendor (Duomi-shaped, on a loopback socket: :mod:`tests.hostile`) answers with text made to
act on a terminal, in the state word (``vendor_state``), the error message, the error code, a
video URL, the task id it echoes, and an answer that is not JSON (which a poll-error notice
quotes); the user's own job reference carries U+202E. :data:`EVIL` holds what a hostile server
would send: ``ESC ]0;title BEL`` (renames the window), ``ESC [2J`` (clears the screen), ``\\r``
(overwrites the line), U+202E (turns the line around), U+009B (an 8-bit CSI), a lone surrogate
(cannot be written as UTF-8), and rich markup (``[link=...]`` would be a hidden OSC 8 hyperlink,
``[/bogus]`` an exception).

Each attack runs ``python -m videojobs`` in a fresh process, piped (stdout and stderr are pipes)
or on a pseudo-terminal (pexpect; the bytes are then rendered by pyte as a terminal would).
``safe`` means: no control, ESC, C1, bidi or unencodable character of the vendor's reached the
output (on a terminal only rich's own cursor and colour sequences are there: no OSC at all, no
screen erase), the window title is unchanged, no markup was read (the literal text is visible),
and there is no traceback. ``typed`` means the exit code is the documented one.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests import hostile
from tests.servers import as_a_terminal_starts_it
from videojobs._text import is_printable

MARKUP = "[link=https://evil.example/]click[/link] [/bogus] [bold red]"
EVIL = "\x1b]0;pwned\x07\x1b[2J\r\u202e\x9b31m" + MARKUP + " \ud800 漢字 a\u200bb\U000e0041\ufeff"
"""What the vendor puts in every string it controls (a zero-width space, a tag character and a
byte-order mark too: invisible on a terminal)."""

KEY = "sk-hostile-cli-7f3a9c41"  # long enough for the key scrubber to leave honest text alone
USER_REF = "duomi:mine-\u202eevil"  # a reference the user pasted, with a bidi override in it
JOBS = ("duomi:fail", "duomi:odd", "duomi:video", "duomi:bad", "duomi:garbage", "duomi:echo", USER_REF)
WAIT = ("--timeout", "4s")  # the jobs that never end (odd, garbage, echo, mine) time out soon; the rest end at once
# (at 1 s, the failing job's first answer came too late beside make test's other processes: exit 124, not 1)

ESCAPED_MARKERS = ("\\x1b]0;pwned\\x07", "\\u001b]0;pwned\\u0007", "mine-\\u202eevil")
"""EVIL as printed, EVIL in JSON, the user's reference as printed: one of them is in every output."""
ROWS, COLUMNS = 48, 200  # a wide terminal: each result fits a few rows, so the screen keeps them all
TTY_CSI = re.compile(rb"\x1b\[[0-9;?]*[ABCDGKhlm]")
"""What rich itself writes on a terminal: cursor moves, line erase, cursor show/hide, colours."""


def vendor(request: hostile.Request, conn: socket.socket) -> None:
    """Duomi's status endpoint, by task id, with :data:`EVIL` in every string; and a file host."""
    path = request.line.split(" ")[1].partition("?")[0]
    host = request.headers.get("host", "")
    if path.startswith("/files/"):
        video = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: video/mp4\r\n\r\n%s" % (len(video), video)
        )
        return
    task = unquote(path.rpartition("/")[2])
    status = 200
    body: dict[str, Any] = {"id": task, "state": "running", "progress": 40, "create_time": 1764547200}
    if task == "fail":
        body.update(state="error", message=EVIL)
    elif task == "odd":
        body.update(state=EVIL)
    elif task == "video":
        # the first is a URL (markup is printable), kept as the video; the others are not, and are left out
        videos = [f"http://{host}/files/v.mp4?sig={MARKUP}", f"http://{host}/files/{EVIL}", EVIL]
        body.update(state="succeeded", progress=100, data={"videos": [{"url": url} for url in videos]})
    elif task == "echo":
        body.update(id=EVIL, data={"videos": [{"url": EVIL}]})
    elif task == "bad":
        status, body = 400, {"code": EVIL, "message": EVIL}
    # not JSON (a poll-error notice quotes it), or JSON (ensure_ascii: the lone surrogate travels as \ud800)
    data = ("<html>" + EVIL).encode("utf-8", "surrogatepass") if task == "garbage" else json.dumps(body).encode()
    head = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nContent-Type: application/json\r\n\r\n" % (status, len(data))
    conn.sendall(head + data)


@dataclass(frozen=True)
class Path:
    argv: tuple[str, ...]  # the command line after `videojobs`; {dir} is a fresh folder
    code: int  # the documented exit code
    tty: bool  # on a pseudo-terminal (live view, table), or piped
    env: tuple[tuple[str, str], ...] = ()  # more environment for the command


PATHS: dict[str, Path] = {
    "piped status (plain lines)": Path(("status", *JOBS), 1, False),
    "piped status --json": Path(("status", "--json", *JOBS), 1, False),
    "piped wait (progress lines, notices)": Path(("wait", *WAIT, *JOBS), 1, False),
    "piped wait --json": Path(("wait", "--json", *WAIT, *JOBS), 1, False),
    "piped wait -v (log records)": Path(("wait", "-v", *WAIT, *JOBS), 1, False),
    "piped download": Path(("download", "-o", "{dir}", "duomi:video", "duomi:fail", USER_REF), 1, False),
    "piped status, ASCII-only streams": Path(("status", *JOBS), 1, False, (("PYTHONIOENCODING", "ascii"),)),
    "piped wait, ASCII-only streams": Path(("wait", *WAIT, *JOBS), 1, False, (("PYTHONIOENCODING", "ascii"),)),
    "piped usage error (a ref with ESC)": Path(("status", "duomi:x\x1b]0;pwned\x07\u202e"), 2, False),
    "tty status (table)": Path(("status", *JOBS), 1, True),
    "tty wait (live view)": Path(("wait", *WAIT, *JOBS), 1, True),
    "tty wait --dest (byte bars)": Path(("wait", "--dest", "{dir}", *WAIT, *JOBS), 1, True),
}

ATTACKS: dict[str, float] = {name: 30.0 for name in PATHS}
"""Seconds each command may run before it counts as hung: about 1 s alone (the waits time out at
4 s), but a `status --json` of seven jobs took over 6 s beside `make test`'s two other
processes on 2 cores. A guard against a hang, not a measure of speed."""


@dataclass
class Outcome:
    code: int
    out: bytes  # piped: stdout; on a terminal: everything the terminal received
    err: bytes  # piped: stderr
    screen: list[str] = field(default_factory=list)  # on a terminal: the last frame, as pyte renders it
    title: str = ""  # on a terminal: the window title at the end
    unsafe: list[str] = field(default_factory=list)  # what went wrong, if anything

    def text(self) -> str:
        return (self.out + self.err).decode("utf-8", "replace")


def _check_text(data: bytes, where: str, unsafe: list[str]) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        unsafe.append(f"{where}: not UTF-8 ({exc})")
        return ""
    for number, line in enumerate(text.split("\n"), 1):
        if not is_printable(line):
            unsafe.append(f"{where} line {number}: raw control or bidi character: {line[:120]!r}")
    return text


def attack(name: str) -> Outcome:
    """Run the command of :data:`PATHS` ``[name]`` against the hostile vendor; judge what it wrote."""
    path = PATHS[name]
    with tempfile.TemporaryDirectory(prefix="videojobs-cli-attack-") as folder, hostile.hostile(vendor) as url:
        argv = [a.replace("{dir}", os.path.join(folder, "videos")) for a in path.argv]
        argv += ["--api-key", f"duomi={KEY}", "--base-url", f"duomi={url}"]
        limit = ATTACKS[name]
        outcome = _on_a_terminal(argv, limit) if path.tty else _piped(argv, limit, dict(path.env))
    text = outcome.text()
    if "Traceback" in text:
        outcome.unsafe.append("a traceback")
    if KEY in text:
        outcome.unsafe.append("the key is shown")
    if path.code != 2 and not any(m in text for m in ESCAPED_MARKERS):
        outcome.unsafe.append("the vendor's text is not shown at all (nothing to judge)")
    return outcome


def _piped(argv: list[str], limit: float, more: dict[str, str]) -> Outcome:
    env = {**os.environ, "COLUMNS": "100", "PYTHONUNBUFFERED": "1", **more}
    env.pop("NO_COLOR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "videojobs", *argv], capture_output=True, timeout=limit, env=env, check=False
    )
    outcome = Outcome(proc.returncode, proc.stdout, proc.stderr)
    for data, where in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
        if b"\x1b" in data:
            outcome.unsafe.append(f"{where}: an escape sequence into a pipe")
        _check_text(data, where, outcome.unsafe)
    return outcome


def _on_a_terminal(argv: list[str], limit: float) -> Outcome:
    import pexpect  # type: ignore[import-untyped]
    import pyte

    child = pexpect.spawn(
        sys.executable,
        ["-m", "videojobs", *argv],
        dimensions=(ROWS, COLUMNS),
        env={
            "TERM": "xterm-256color",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},  # the videojobs this process imports
        },
        timeout=limit,
        preexec_fn=as_a_terminal_starts_it,
    )
    data: bytes = child.read()
    child.close()
    outcome = Outcome(child.exitstatus if child.exitstatus is not None else -1, data, b"")
    if b"\x1b]" in data:
        outcome.unsafe.append("an OSC sequence (title, hyperlink) reached the terminal")
    leftover = TTY_CSI.sub(b"", data)
    if b"\x1b" in leftover:
        found = sorted({m.group(0) for m in re.finditer(rb"\x1b.{0,6}", leftover)})
        outcome.unsafe.append(f"escape sequences that are not rich's own: {found[:5]}")
    _check_text(leftover.replace(b"\r", b""), "terminal", outcome.unsafe)  # rich's own \r moves the cursor
    screen = pyte.Screen(COLUMNS, ROWS)
    pyte.ByteStream(screen).feed(data)
    outcome.screen = [line.rstrip() for line in screen.display]
    outcome.title = str(getattr(screen, "title", ""))
    if "pwned" in outcome.title:
        outcome.unsafe.append(f"the window title was changed to {outcome.title!r}")
    if MARKUP not in "".join(screen.display):  # a folded line continues on the next row
        outcome.unsafe.append("the vendor's markup is not shown as text")
    return outcome


def run(name: str) -> dict[str, Any]:
    """The contract of ``scripts/attacks.py``: perform attack ``name`` in this process."""
    try:
        outcome = attack(name)
    except Exception as exc:  # subprocess.TimeoutExpired, pexpect.TIMEOUT (neither is a VideoJobsError)
        if isinstance(exc, subprocess.TimeoutExpired) or type(exc).__module__.startswith("pexpect"):
            return {"outcome": f"the command did not end in time ({type(exc).__name__})", "typed": False, "safe": False}
        raise
    return judge(name, outcome)


def judge(name: str, outcome: Outcome) -> dict[str, Any]:
    """The row of :func:`run` for an outcome: typed = the documented exit code and no traceback."""
    expected = PATHS[name].code
    summary = f"exit {outcome.code}" + ("" if outcome.code == expected else f" (documented: {expected})")
    if outcome.unsafe:
        summary += "; UNSAFE: " + "; ".join(outcome.unsafe)[:300]
    else:
        summary += "; vendor text shown escaped, no markup read, no escape emitted"
    typed = outcome.code == expected and "a traceback" not in outcome.unsafe
    return {"outcome": summary, "typed": typed, "safe": not outcome.unsafe}
