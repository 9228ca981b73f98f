"""``python -m videojobs.sandbox [--host H] [--port P] [--time-scale X]``: serve the sandbox with uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import socket
import sys

from ._clock import LAST_SECOND, MAX_TIME_SCALE, MIN_TIME_SCALE


def parse_limits(values: list[str] | None) -> dict[str, float]:
    """``["duomi=20", "vozo=5"]`` → ``{"duomi": 20.0, "vozo": 5.0}`` (requests per second), for
    vendors the sandbox has (a limit that would throttle nobody is a mistake: SystemExit says so)."""
    from ._spec import installed_vendors

    known = installed_vendors()
    out: dict[str, float] = {}
    for value in values or []:
        vendor, sep, rate = value.partition("=")
        try:
            out[vendor] = float(rate)
        except ValueError:
            sep = ""
        if not sep or not vendor or not 0 < out.get(vendor, 0) < math.inf:  # inf would throttle nobody
            raise SystemExit(f"--limit takes VENDOR=REQUESTS_PER_SECOND, e.g. duomi=20, not {value!r}")
        if vendor not in known:
            raise SystemExit(f"--limit names no vendor of this sandbox: {vendor!r} (it has {', '.join(known)})")
    return out


def port_number(text: str) -> int:
    """``--port``: a TCP port, 0 (any free one) to 65535 (argparse says so, exit 2, otherwise)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return port


GRACEFUL_SHUTDOWN_SECONDS = 2
"""How long Ctrl-C waits for answers still being sent before uvicorn cancels them. Downloads
and ``slow`` answers end at once when the server stops (``Sandbox.close``); this bounds the rest,
e.g. a download to a client that stopped reading (uvicorn's default waits for ever, and a slow
download held Ctrl-C for as long as its file)."""

MAX_EPOCH = LAST_SECOND
"""The vendors' clock at start, at most (Unix seconds): 9999-12-31, the last second a date in
the specs' formats can say (1e300 went out as a 301-digit create_time)."""


def positive(text: str) -> float:
    """``--time-scale``: a number from MIN_TIME_SCALE to MAX_TIME_SCALE (argparse says so, exit 2, otherwise)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not MIN_TIME_SCALE <= value <= MAX_TIME_SCALE:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from {MIN_TIME_SCALE:g} to {MAX_TIME_SCALE:g}")
    return value


def epoch_seconds(text: str) -> float:
    """``--epoch``: Unix seconds from 0 to MAX_EPOCH (nan and inf made every answer fail)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_EPOCH:
        raise argparse.ArgumentTypeError(f"{text!r} is not Unix seconds from 0 to {MAX_EPOCH:.0f}")
    return value


def _shown(text: str) -> str:
    """What the user typed (a key, a host), shown as text: a control character as its escape,
    never acted on by the terminal (the CLI's ``_text.printable``, which the sandbox does not import)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def serve(
    host: str,
    port: int,
    time_scale: float,
    api_key: str,
    epoch: float | None = None,
    rate_limits: dict[str, float] | None = None,
) -> None:
    try:
        import uvicorn
    except ImportError as exc:  # a usage error (exit 2), as `videojobs sandbox` says it
        print(
            "python -m videojobs.sandbox: error: serving the sandbox needs uvicorn: pip install "
            "'videojobs[sandbox]' (the embedded sandbox, Sandbox().transport(), needs nothing more)",
            file=sys.stderr,
        )
        raise SystemExit(2) from exc

    from . import Sandbox

    # bound here, before anything is said: with --port 0 the banner, the base URLs and the
    # videos' URLs name the port the system chose (they said :0, and no download could start)
    try:
        listening = _listen(host, port)
    except OSError as exc:
        print(f"videojobs sandbox could not listen on {_shown(host)}:{port}: {exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    bound = listening.getsockname()[1]
    root = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
    sandbox = Sandbox(
        time_scale=time_scale,
        api_key=api_key,
        epoch=epoch,
        rate_limits=rate_limits,
        file_root=f"{root}/files",  # the videos, served here too
    )
    print(f"videojobs sandbox on {_shown(root)}  (key: {_shown(api_key)}, time scale: {time_scale:g}x)", flush=True)
    for vendor, url in sandbox.base_urls(root).items():
        print(f"  {vendor:<10} {_shown(url)}", flush=True)

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            sandbox.close()  # the open answers end now: uvicorn waits for them
            await super().shutdown(sockets)

    config = uvicorn.Config(
        sandbox, log_level="warning", lifespan="on", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS
    )
    server = _Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl-C is the way to stop it
        server.run(sockets=[listening])
    if not server.started:  # as uvicorn.run, a server that did not start exits 3
        raise SystemExit(3)


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket, made with its protocol named (``IPPROTO_TCP``). asyncio sets
    TCP_NODELAY on the connections it accepts only from such a socket; ``create_server``'s has
    protocol 0, so every answer went out under Nagle's algorithm: its body waited for the
    client's delayed ACK of its head, 40 ms a poll on a kept-alive connection (44 ms against
    1.3 ms on a new one)."""
    listening = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name != "nt":  # as create_server: a restarted sandbox takes its port back at once
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen()
    except BaseException:
        listening.close()
        raise
    return listening


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def build_parser() -> argparse.ArgumentParser:
    """The options of ``videojobs sandbox`` with its help (the CLI's, which this module does not
    import: a test holds the two alike), and ``--epoch``."""
    parser = argparse.ArgumentParser(
        prog="python -m videojobs.sandbox", description="Serve the vendor sandbox over HTTP (uvicorn)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8710, help="port (default: 8710)")
    parser.add_argument(
        "--time-scale", type=positive, default=1.0, metavar="X", help="jobs run X times faster (default: 1)"
    )
    parser.add_argument(
        "--api-key", default="sk-sandbox", metavar="KEY",
        help="the one key the sandbox accepts, from every vendor (default: sk-sandbox)",
    )  # fmt: skip
    parser.add_argument(
        "--epoch", type=epoch_seconds, default=None, metavar="SECONDS",
        help="the vendors' clock at start, Unix seconds (default: now; for recordings that must match)",
    )  # fmt: skip
    parser.add_argument(
        "--limit", action="append", metavar="VENDOR=RPS", help="throttle a vendor: 429 + Retry-After (repeatable)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        limits = parse_limits(args.limit)
    except SystemExit as exc:  # its message names the bad --limit
        parser.error(str(exc))
    serve(args.host, args.port, args.time_scale, args.api_key, args.epoch, limits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
