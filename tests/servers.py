"""The sandbox served by uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from videojobs.sandbox import Sandbox


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(sandbox: Any | None = None, *, files: bool = True, **kwargs: Any) -> Iterator[tuple[Sandbox, str]]:
    """Yield ``(sandbox, root URL)`` while uvicorn serves it; stop it afterwards.

    ``files``: the answers' video links point at this server's ``/files`` (the videos are served
    here too); False keeps the sandbox's own ``file_root`` (``make record``: no loopback port may
    end up in a cassette).
    """
    app = sandbox if sandbox is not None else Sandbox(**kwargs)
    port = free_port()
    if files:
        app.file_root = f"http://127.0.0.1:{port}/files"
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.01)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def as_a_terminal_starts_it() -> None:
    """``preexec_fn`` of a child that plays a command typed at a terminal: SIGINT and SIGQUIT at
    their defaults. A non-interactive shell starts its background jobs with both ignored, and a
    child inherits that (``make test`` runs modules in background processes): the Ctrl-C a test
    sent its command was ignored, and the test waited out its minute."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
