"""The ``videojobs`` command: status, wait (with live progress bars), sandbox, demo.

Exit codes: 0 all good; 1 a job failed, was canceled, finished without a video, or could
not be read; 2 a timeout or a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from ._base import split_ref
from ._client import AsyncClient
from ._exceptions import UsageError, VideoJobsError, WaitTimeout
from ._policy import AdaptivePolicy, PollingPolicy
from ._registry import known_vendors as vendors
from ._status import JobStatus, State

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# --- options ------------------------------------------------------------------------------------


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """``VENDOR=VALUE`` pairs. A value is never echoed back: for --api-key it may be a key."""
    out: dict[str, str] = {}
    for number, value in enumerate(values, 1):
        slug, sep, rest = value.partition("=")
        if not sep or slug not in vendors() or not rest:
            raise UsageError(
                f"{what} #{number} is not VENDOR=VALUE with a known vendor ({', '.join(vendors())}); "
                f"a key goes to its own vendor only, e.g. {what} vozo=..."
            )
        out[slug] = rest
    return out


@dataclass
class Setup:
    """How the command reaches the vendors: real ones, or an embedded sandbox."""

    client: AsyncClient
    sandbox: Any = None
    policy: PollingPolicy | None = None
    time_scale: float = 1.0


def _setup(args: argparse.Namespace, refs: Sequence[str]) -> Setup:
    for ref in refs:
        split_ref(ref)  # a bad reference is a usage error, before anything is sent
    if getattr(args, "sandbox", False):
        from .sandbox import Sandbox

        sb = Sandbox(time_scale=args.time_scale)
        client = AsyncClient(
            api_keys=sb.api_keys(),
            base_urls=sb.base_urls(),
            transport=sb.transport(),
            timeout=args.request_timeout,
        )
        return Setup(client, sb, AdaptivePolicy().scaled(args.time_scale), args.time_scale)
    api_keys = _pairs(args.api_key or [], "--api-key")
    base_urls = _pairs(args.base_url or [], "--base-url")
    for ref in refs:
        slug = ref.partition(":")[0]
        if slug in vendors() and not api_keys.get(slug) and not os.environ.get(f"{slug.upper()}_API_KEY"):
            raise UsageError(f"no API key for {slug}: set {slug.upper()}_API_KEY or pass --api-key {slug}=KEY")
    return Setup(AsyncClient(api_keys=api_keys, base_urls=base_urls, timeout=args.request_timeout))


# --- output ----------------------------------------------------------------------------------


def _error_dict(ref: str, exc: VideoJobsError) -> dict[str, Any]:
    return {
        "ref": ref,
        "error": {"type": type(exc).__name__, "message": exc.message, "status_code": exc.status_code, "code": exc.code},
    }


def _pct(status: JobStatus) -> str:
    return "-" if status.progress is None else f"{status.progress:.0%}"


def _until(when: datetime) -> str:
    seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds <= 0:
        return f"expired {when:%Y-%m-%d %H:%M} UTC"
    hours = seconds / 3600
    return (
        f"expires {when:%Y-%m-%d %H:%M} UTC, in {hours:.0f} h" if hours >= 1 else f"expires in {seconds / 60:.0f} min"
    )


def _outcome_lines(status: JobStatus) -> list[str]:
    """What a user needs once a job has ended: where the video is, or why there is none."""
    lines = []
    if status.state is State.SUCCEEDED:
        for url in status.video_urls:
            lines.append(f"  video: {url}" + (f"  ({_until(status.expires_at)})" if status.expires_at else ""))
        if status.video_id and not status.video_urls:
            lines.append(f"  video id: {status.video_id} (this vendor returns an id, not a URL)")
        if not status.has_video:
            lines.append("  WARNING: the vendor says the job is done but returned no video (no URL, no id)")
    elif status.error is not None:
        lines.append(
            f"  {status.state.value}: {status.error.message}" + (f" [{status.error.code}]" if status.error.code else "")
        )
    elif status.state is State.CANCELED:
        lines.append(f"  canceled by the vendor ({status.vendor_state})")
    return lines


def _exit_code(results: Sequence[JobStatus | VideoJobsError]) -> int:
    if any(isinstance(r, WaitTimeout) for r in results):
        return EXIT_USAGE
    if any(isinstance(r, VideoJobsError) or r.state is not State.SUCCEEDED or not r.has_video for r in results):
        return EXIT_FAILED
    return EXIT_OK


# --- status ----------------------------------------------------------------------------------


async def _status(args: argparse.Namespace, out: TextIO) -> int:
    setup = _setup(args, args.refs)
    async with setup.client as client:
        results = await asyncio.gather(*(client.status(ref) for ref in args.refs), return_exceptions=True)
    code = EXIT_OK
    rows: list[dict[str, Any]] = []
    for ref, result in zip(args.refs, results, strict=True):
        if isinstance(result, VideoJobsError):
            code = EXIT_FAILED
            rows.append(_error_dict(ref, result))
        elif isinstance(result, BaseException):
            raise result
        else:
            rows.append(result.to_dict())
    if args.json:
        for row in rows:
            out.write(json.dumps(row) + "\n")
        return code
    from rich.console import Console
    from rich.table import Table

    table = Table("job", "state", "vendor says", "progress", "video / error", box=None, pad_edge=False)
    for row in rows:
        if "error" in row and "state" not in row:
            table.add_row(row["ref"], "[red]error[/]", "", "", f"{row['error']['type']}: {row['error']['message']}")
            continue
        detail = (
            row["video_urls"][0] if row["video_urls"] else row["video_id"] or (row["error"] or {}).get("message") or ""
        )
        pct = "-" if row["progress"] is None else f"{row['progress']:.0%}"
        table.add_row(row["ref"], row["state"], row["vendor_state"], pct, detail)
    Console(file=out, width=160 if not out.isatty() else None).print(table)
    return code


# --- wait ------------------------------------------------------------------------------------


@dataclass
class Display:
    """Live progress bars on a terminal; one plain line per change otherwise."""

    out: TextIO
    live: bool
    started: float = field(default_factory=time.monotonic)
    _progress: Any = None
    _tasks: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def running(self, refs: Sequence[str]) -> Iterator[Display]:
        if not self.live:
            yield self
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(file=self.out)
        self._progress = Progress(
            TextColumn("{task.fields[vendor]:<10}"),
            TextColumn("{task.fields[task]:<28}"),
            TextColumn("{task.fields[state]:<10}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=8,
        )
        for ref in refs:
            vendor, _, task = ref.partition(":")
            self._tasks[ref] = self._progress.add_task("", total=None, vendor=vendor, task=task[:28], state="waiting")
        with self._progress:
            yield self

    def update(self, status: JobStatus) -> None:
        if self.live:
            task = self._tasks[status.ref]
            state = {
                State.SUCCEEDED: "[green]done[/]",
                State.FAILED: "[red]failed[/]",
                State.CANCELED: "[yellow]canceled[/]",
            }
            kwargs: dict[str, Any] = {"state": state.get(status.state, status.state.value)}
            if status.progress is not None:
                kwargs.update(total=100, completed=round(status.progress * 100))
            elif status.is_terminal:
                kwargs.update(total=100, completed=100 if status.state is State.SUCCEEDED else 0)
            self._progress.update(task, **kwargs)
            if status.is_terminal:
                self._progress.stop_task(task)
        else:
            elapsed = time.monotonic() - self.started
            self.out.write(f"[{elapsed:6.1f}s] {status.ref}  {status.state.value}  {_pct(status)}\n")
            self.out.flush()

    def failed(self, ref: str, exc: VideoJobsError) -> None:
        if self.live:
            self._progress.update(self._tasks[ref], state="[red]error[/]")
            self._progress.stop_task(self._tasks[ref])
        else:
            self.out.write(f"[{time.monotonic() - self.started:6.1f}s] {ref}  error  {type(exc).__name__}: {exc}\n")


async def _wait_for(
    setup: Setup, refs: Sequence[str], display: Display, timeout: float | None
) -> list[JobStatus | VideoJobsError]:
    results: list[JobStatus | VideoJobsError] = []
    async with setup.client as client:
        with display.running(refs):
            async for result in client.wait_all(refs, timeout=timeout, on_update=display.update, policy=setup.policy):
                if isinstance(result, VideoJobsError):
                    display.failed(result.ref or "?", result)
                results.append(result)
    return results


async def _wait(args: argparse.Namespace, out: TextIO) -> int:
    setup = _setup(args, args.refs)
    live = out.isatty() and not args.plain and not args.json
    display = Display(io.StringIO() if args.json else out, live=live)  # JSON: no progress lines
    results = await _wait_for(setup, args.refs, display, args.timeout)
    order = {ref: i for i, ref in enumerate(args.refs)}
    results.sort(key=lambda r: order.get(r.ref or "", 0))
    if args.json:
        for r in results:
            out.write(json.dumps(_error_dict(r.ref or "", r) if isinstance(r, VideoJobsError) else r.to_dict()) + "\n")
    else:
        out.write("\n")
        for r in results:
            if isinstance(r, VideoJobsError):
                out.write(f"{r.ref}: {type(r).__name__}: {r}\n")
            else:
                out.write(f"{r.ref}: {r.state.value}\n" + "".join(line + "\n" for line in _outcome_lines(r)))
    return _exit_code(results)


# --- demo ------------------------------------------------------------------------------------

DEMO_JOBS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("vozo", {"queue": 5, "run": 90}),
    ("vozo", {"queue": 3, "run": 60, "outcome": "failed"}),
    ("vozo", {"queue": 8, "run": 40}),
    ("duomi", {"queue": 4, "run": 120, "stall": 25}),
    ("duomi", {"queue": 2, "run": 45, "faults": (("429", 3),)}),
    ("ezmodel", {"queue": 6, "run": 150}),
    ("ezmodel", {"queue": 5, "run": 80, "outcome": "failed"}),
    ("colossyan", {"queue": 9, "run": 100}),
    ("colossyan", {"queue": 4, "run": 60, "outcome": "canceled"}),
    ("jimmyai", {"queue": 10, "run": 170}),
    ("jimmyai", {"queue": 3, "run": 70, "faults": (("502", 1),)}),
    ("jimmyai", {"queue": 2, "run": 35, "video": False}),
)


async def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from rich.console import Console
    from rich.table import Table

    from .sandbox import Sandbox

    scale = args.time_scale
    sb = Sandbox(time_scale=scale, retry_after=0.5)
    refs = [sb.create(vendor, **options) for vendor, options in DEMO_JOBS]
    client = AsyncClient(
        api_keys=sb.api_keys(),
        base_urls=sb.base_urls(),
        transport=sb.transport(),
    )
    setup = Setup(client, sb, AdaptivePolicy().scaled(scale), scale)
    live = not args.plain and out.isatty()
    console = Console(file=out, width=None if out.isatty() else 140)
    console.print(
        f"[bold]videojobs demo[/]: {len(refs)} jobs at five vendors, simulated offline by the embedded sandbox "
        f"at {scale:g}x speed (a {max(o.get('run', 0) + o.get('queue', 0) for _, o in DEMO_JOBS) / 60:.0f}-minute job "
        f"plays in {max(o.get('run', 0) + o.get('queue', 0) for _, o in DEMO_JOBS) / scale:.0f} s).\n"
        "Some fail, one is deleted, one hits 429s, one answers a 502, one finishes without a video.\n"
    )
    started = time.monotonic()
    results = await _wait_for(setup, refs, Display(out, live=live), timeout=args.timeout)
    elapsed = time.monotonic() - started

    by_ref = {r.ref: r for r in results}
    table = Table("vendor", "job", "state", "requests", "lag (job time)", "video / reason", title="Summary")
    polls = fixed = 0
    for ref in refs:
        result, job = by_ref[ref], sb.job(ref)
        assert job is not None
        polls += job.polls
        fixed += int(job.script.total // 5) + 1
        lag = "-"
        if job.terminal_seen_at is not None:
            lag = f"{max(0.0, job.terminal_seen_at - sb.ended_at(job)) * scale:.1f} s"
        if isinstance(result, VideoJobsError):
            table.add_row(job.vendor, job.task_id, "[red]error[/]", str(job.polls), lag, str(result))
            continue
        detail = result.video_url or (f"video id {result.video_id}" if result.video_id else "")
        if result.state is State.CANCELED:
            detail = "the vendor deleted the job"
        elif result.error:
            detail = result.error.message
        elif result.state is State.SUCCEEDED and not result.has_video:
            detail = "[yellow]done, but no video was returned[/]"
        colour = {State.SUCCEEDED: "green", State.FAILED: "red", State.CANCELED: "yellow"}.get(result.state, "white")
        table.add_row(job.vendor, job.task_id, f"[{colour}]{result.vendor_state}[/]", str(job.polls), lag, detail)
    console.print(table)
    console.print(
        f"{len(refs)} jobs in {elapsed:.1f} s; {polls} status requests in all, where polling every 5 s "
        f"(the vendors' advice) would have made {fixed}."
    )
    return EXIT_OK if len(results) == len(refs) else EXIT_FAILED


# --- entry point -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api-key",
        action="append",
        metavar="VENDOR=KEY",
        help="a vendor's key, sent to that vendor only (default: <VENDOR>_API_KEY)",
    )
    common.add_argument("--base-url", action="append", metavar="VENDOR=URL", help="base URL, e.g. for a proxy")
    common.add_argument("--request-timeout", type=float, default=30.0, metavar="S", help="seconds per request")
    common.add_argument("--sandbox", action="store_true", help="talk to an embedded sandbox instead of the vendors")
    common.add_argument(
        "--time-scale", type=float, default=1.0, metavar="X", help="with --sandbox: play jobs X times faster"
    )
    common.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    parser = argparse.ArgumentParser(prog="videojobs", description="Status of AI video jobs at five vendors.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("status", parents=[common], help="the status of jobs, now")
    p.add_argument("refs", nargs="+", metavar="VENDOR:TASK_ID")
    p = sub.add_parser("wait", parents=[common], help="wait for jobs with live progress bars")
    p.add_argument("refs", nargs="+", metavar="VENDOR:TASK_ID")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="give up after S seconds (exit 2)")
    p.add_argument("--plain", action="store_true", help="one line per change, even on a terminal")
    p = sub.add_parser("sandbox", help="serve the vendor sandbox (uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8710)
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--api-key", default="sk-sandbox")
    p.add_argument("--limit", action="append", metavar="VENDOR=RPS", help="throttle a vendor: 429 + Retry-After")
    p = sub.add_parser("demo", help="a dozen sandbox jobs at five vendors, waited for live (offline)")
    p.add_argument("--time-scale", type=float, default=12.0)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--plain", action="store_true")
    return parser


def _require(module: str, extra: str) -> None:
    """Name the extra to install when an optional dependency is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(f"this command needs {module}: pip install 'videojobs[{extra}]'")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    try:
        if args.command == "sandbox":
            from .sandbox.__main__ import parse_limits, serve

            serve(args.host, args.port, args.time_scale, args.api_key, rate_limits=parse_limits(args.limit))
            return EXIT_OK
        if getattr(args, "time_scale", 1.0) <= 0:
            raise UsageError("--time-scale must be positive")
        _require("rich", "cli")
        runner = {"status": _status, "wait": _wait, "demo": _demo}[args.command]
        return asyncio.run(runner(args, out))
    except UsageError as exc:
        print(f"videojobs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("videojobs: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (| head): stop quietly, and keep Python from failing to flush at exit
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
