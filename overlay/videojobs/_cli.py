"""The ``videojobs`` command: status, wait, demo and sandbox; for people and for scripts.

Streams, words and exit codes are in :mod:`._cli_output`: results on stdout (whole, one per
job, as each ends), everything else on stderr, and distinct exit codes (124 for a timeout).
Whatever it writes passes through :func:`._text.printable` (vendor text and the user's own
references alike) and reaches rich as ``Text``, never as markup: see :mod:`._text`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import io
import logging
import math
import os
import re
import signal
import stat
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn, TextIO, cast

import attrs

from ._base import (
    MAX_SECONDS,
    MAX_WHOLE,
    base_url_problem,
    check_key,
    env_name,
    environment_proxy_url,
    glimpse,
    shown_url,
    split_ref,
)
from ._cli_output import (
    EXIT_BROKEN_PIPE,
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    STATE_STYLES,
    Display,
    detail,
    error_text,
    exit_code,
    note_lines,
    result_json,
    result_line,
    saved_lines,
    state_words,
)
from ._client import AsyncClient
from ._exceptions import DownloadError, InvalidReferenceError, UsageError, VideoJobsError
from ._policy import PollingPolicy
from ._registry import adapter_class
from ._registry import known_vendors as vendors
from ._status import JobStatus, State, WaitTimeout
from ._text import printable
from ._wait import DEFAULT_MAX_FAILED_POLLS

# --- option types ------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?")
_UNITS = (3600.0, 60.0, 1.0, 0.001)


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``30m``, ``1h``, ``1h30m``, ``500ms`` (as kubectl's ``--timeout``)."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        match = _DURATION.fullmatch(value)
        if not value or match is None or not any(match.groups()):
            raise argparse.ArgumentTypeError(f"{glimpse(text)} is not a duration (90, 90s, 30m, 1h, 1h30m)") from None
        seconds = sum(float(part) * unit for part, unit in zip(match.groups(), _UNITS, strict=True) if part)
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{glimpse(text)} is not a duration > 0")
    if seconds > MAX_SECONDS:  # the library's bound, in the command's words (it said "or None")
        raise argparse.ArgumentTypeError(f"{glimpse(text)} is longer than any a call takes ({MAX_SECONDS:g} s)")
    return seconds


def _whole(text: str, low: int = 1, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{glimpse(text)} is not a whole number") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(
            f"{glimpse(text)} is not a whole number >= {low}" + (f", <= {high}" if high else "")
        )
    return value


def _port(text: str) -> int:
    """``sandbox --port``: 0 (any free port) to 65535 (the sandbox's own ``--port`` checks the same)."""
    return _whole(text, 0, 65535)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{glimpse(text)} is not a number") from None
    if not (math.isfinite(value) and MIN_TIME_SCALE <= value <= MAX_TIME_SCALE):
        raise argparse.ArgumentTypeError(
            f"{glimpse(text)} is not a number from {MIN_TIME_SCALE:g} to {MAX_TIME_SCALE:g}"
        )
    return value


MAX_TIME_SCALE: Final = 1e6
"""``--time-scale`` at most: a day-long job in a tenth of a second (the sandbox's own bound,
``videojobs.sandbox._clock``; at 1e20 the client's clock no longer moved by a second and its
rate control failed)."""
MIN_TIME_SCALE: Final = 1e-6
"""``--time-scale`` at least: the sandbox's own bound (a served sandbox refuses a slower one)."""


def vendor_slug(text: str, where: str, *, shown: bool = True) -> str:
    """The vendor named ``text``, in any case (``Vozo`` is ``vozo``); an unknown one is a usage
    error that suggests the nearest known names. ``where`` says where the name was given; with
    ``shown=False`` the text is not repeated (before an --api-key's first ``=`` may be a key's
    start: a key holding ``=`` given without its vendor)."""
    slug = text.lower()
    if slug in vendors():
        return slug
    near = difflib.get_close_matches(slug, vendors(), n=3, cutoff=0.6)
    guess = f"did you mean {' or '.join(near)}? " if near else ""
    name = glimpse(text) if shown else "(not shown: it may be part of a key)"
    raise UsageError(f"unknown vendor {name} in {where}; {guess}known vendors: {', '.join(vendors())}")


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """``VENDOR=VALUE`` pairs. A value is never echoed back: for --api-key it may be a key."""
    out: dict[str, str] = {}
    for number, value in enumerate(values, 1):
        slug, sep, rest = value.partition("=")
        if not sep or not slug or not rest:
            raise UsageError(
                f"{what} #{number} is not VENDOR=VALUE with a known vendor ({', '.join(vendors())}); "
                f"a key goes to its own vendor only, e.g. {what} vozo=..."
            )
        out[vendor_slug(slug, f"{what} #{number}", shown=what != "--api-key")] = rest
    return out


# --- reaching the vendors ------------------------------------------------------------------------


@dataclass
class Setup:
    """How the command reaches the vendors: real ones, or an embedded sandbox on a scaled clock."""

    client: AsyncClient
    sandbox: Any = None
    policy: PollingPolicy | None = None
    time_scale: float = 1.0  # how much faster than real time the client's clock runs

    def timeout(self, seconds: float | None) -> float | None:
        """A wait's timeout, given in real seconds, on the client's clock."""
        return None if seconds is None else seconds * self.time_scale


def _refs(args: argparse.Namespace, err: TextIO) -> list[str]:
    refs: list[str] = []
    for number, ref in enumerate(args.refs, 1):
        slug, sep, task_id = ref.partition(":")
        if "=" in slug:  # VENDOR=KEY without its --api-key, most likely: not repeated
            raise UsageError(
                f"job #{number} is not a job reference (VENDOR:TASK_ID) but VENDOR=VALUE, not shown as it may "
                "hold a key: a key goes in --api-key VENDOR=KEY"
            )
        if sep and slug:  # the vendor in any case; a reference without one is refused by split_ref
            ref = f"{vendor_slug(slug, f'job #{number}')}:{task_id}"
        try:
            split_ref(ref)  # a bad reference is a usage error, before anything is sent
        except InvalidReferenceError as exc:  # which of many: as an unknown vendor's is named
            which = f"job #{number}" + (f" ({exc.vendor})" if exc.vendor else "")
            raise InvalidReferenceError(f"{which}: {exc.message}", vendor=exc.vendor) from exc
        refs.append(ref)
    unique = list(dict.fromkeys(refs))
    if len(unique) < len(refs) and not args.quiet:
        err.write(f"videojobs: {len(refs) - len(unique)} repeated job(s) asked once\n")
    return unique


def sandbox_setup(scale: float, request_timeout: float = 30.0, **options: Any) -> Setup:
    """A client of an embedded sandbox, both on one ``ScaledClock`` (``options``: the sandbox's)."""
    from .sandbox import Sandbox, ScaledClock

    sb = Sandbox(clock=ScaledClock(scale), **options)
    client = AsyncClient(**sb.client_kwargs(asynchronous=True), request_timeout=request_timeout)
    return Setup(client, sb, time_scale=scale)


def _check_flags(args: argparse.Namespace) -> None:
    """A flag that means nothing beside the others given is refused, not ignored: a key and a base
    URL would go nowhere under --sandbox (a user who meant the vendors would read the sandbox's
    jobs as theirs), a time scale nowhere without it, and wait's --overwrite nowhere without --dest."""
    if args.sandbox:
        given = [flag for flag, value in (("--api-key", args.api_key), ("--base-url", args.base_url)) if value]
        if given:
            keys = " (any key works there)" if args.api_key else ""  # a base URL's error says nothing of keys
            raise UsageError(
                f"{' and '.join(given)} cannot go with --sandbox: the sandbox stands in for the vendors{keys}; "
                "drop --sandbox to reach the vendors"
            )
    elif args.time_scale is not None:
        raise UsageError("--time-scale needs --sandbox: a vendor's jobs run at the vendor's own pace")
    if args.command == "wait" and args.overwrite and args.dest is None:
        raise UsageError("--overwrite needs --dest: without it wait saves nothing")


def _setup(args: argparse.Namespace, refs: Sequence[str]) -> Setup:
    _check_flags(args)
    if args.sandbox:
        return sandbox_setup(1.0 if args.time_scale is None else args.time_scale, args.request_timeout)
    api_keys = _pairs(args.api_key or [], "--api-key")
    base_urls = _pairs(args.base_url or [], "--base-url")
    slugs = list(dict.fromkeys(ref.partition(":")[0] for ref in refs))
    missing = [s for s in slugs if not api_keys.get(s) and not os.environ.get(env_name(s, "API_KEY"))]
    if missing:
        names = " and ".join(env_name(s, "API_KEY") for s in missing)
        flags = " ".join(f"--api-key {s}=KEY" for s in missing)
        raise UsageError(f"no API key for {', '.join(missing)}: set {names}, or pass {flags}")
    for slug in slugs:  # what the library would refuse at the first request, in the command's words
        given = slug in api_keys
        key = api_keys[slug] if given else os.environ[env_name(slug, "API_KEY")]
        check_key(key, f"--api-key {slug}=..." if given else env_name(slug, "API_KEY"), slug)
        url = base_urls.get(slug) or os.environ.get(env_name(slug, "BASE_URL"))
        if url and (problem := base_url_problem(url)) is not None:
            shown = shown_url(url)  # never a password in it, nor all of a key put there
            where = f"--base-url {slug}={shown}" if slug in base_urls else f"{env_name(slug, 'BASE_URL')}={shown}"
            raise UsageError(f"{where} {problem}", vendor=slug)
        environment_proxy_url(url or adapter_class(slug).default_base_url)  # the proxy it would go through
    return Setup(AsyncClient(api_keys=api_keys, base_urls=base_urls, request_timeout=args.request_timeout))


def _dumb_terminal() -> bool:
    """TERM=dumb (or unknown): a terminal that cannot move its cursor. rich draws no live view on
    one until the end, so a wait showed nothing for its whole length: plain lines instead."""
    return os.environ.get("TERM", "").lower() in ("dumb", "unknown")


def _utf8(stream: TextIO) -> bool:
    """The stream writes UTF-8. On another encoding a vendor's 処理中 goes out as ``\\u51e6...``:
    three times the cells rich measured, so its rows wrapped and the live view left a stale row
    on the screen at each frame. Such a terminal gets plain lines."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding in ("utf8", "utf8sig")


def _piped(stream: TextIO) -> bool:
    """The stream is a pipe or a socket (``| jq``, ``| tee``): its reader may print to the terminal
    the live view redraws on, and each frame's redraw erased the lines it printed there. A file
    (``> results.jsonl``, ``/dev/null``) or the terminal itself is no such stream."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # no descriptor: a StringIO, closed
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _display(args: argparse.Namespace, out: TextIO, err: TextIO) -> Display:
    if args.quiet:
        mode = "quiet"
    elif (
        err.isatty() and not args.plain and not args.verbose and not _dumb_terminal() and _utf8(err) and not _piped(out)
    ):
        mode = "live"
    else:
        mode = "plain"
    color = not args.no_color and "NO_COLOR" not in os.environ
    return Display(out, err, mode=mode, json_lines=args.json, color=color, command=args.command)


# --- commands -------------------------------------------------------------------------------------


async def _status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    refs = _refs(args, err)
    setup = _setup(args, refs)
    table = out.isatty() and not args.json
    results: list[JobStatus | VideoJobsError] = []
    notes: list[str] = []  # what a vendor got wrong (problems), on stderr
    async with setup.client as client:
        asked = [asyncio.ensure_future(_answer(client, ref)) for ref in refs]  # all at once
        try:
            for ref, answer in zip(refs, asked, strict=True):  # written in order, each as soon as it can be
                result = await answer
                results.append(result)
                if not table:
                    out.write(printable(result_json(result, ref) if args.json else result_line(result, ref)) + "\n")
                    out.flush()  # an interrupted run has written the answers it had
                if not args.json and not args.quiet:
                    notes.extend(note_lines(result, ref))
                    if not table:  # below the table, which it must not push down
                        err.write("".join(printable(line) + "\n" for line in notes))
                        notes.clear()
        finally:
            for answer in asked:
                answer.cancel()
    if table:
        _status_table(args, results, refs, out)
        err.write("".join(printable(line) + "\n" for line in notes))
    return exit_code(results, snapshot=True)


async def _answer(client: AsyncClient, ref: str) -> JobStatus | VideoJobsError:
    try:
        return await client.status(ref)
    except VideoJobsError as exc:
        return exc


def _status_table(args: argparse.Namespace, results: Sequence[Any], refs: Sequence[str], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def cell(text: str, style: str = "") -> Text:  # printable, and never read as markup
        return Text(printable(text), style=style)

    table = Table("job", "state", "progress", "video / error", box=None, pad_edge=False)
    for column in (table.columns[0], table.columns[3]):  # a long ref or signed URL folds over lines; never cut
        column.overflow, column.no_wrap = "fold", False
    for ref, result in zip(refs, results, strict=True):
        if isinstance(result, VideoJobsError):
            table.add_row(cell(ref), cell("error", "red"), cell(""), cell(error_text(result, "status")))
            continue
        pct = "-" if result.progress is None else f"{result.progress:.0%}"
        colour = STATE_STYLES.get(result.state, "")
        if result.state is State.SUCCEEDED and not result.has_video:
            colour = "yellow"
        # the progress has its own column: the last one says where the video is, or why there is none
        table.add_row(cell(ref), cell(state_words(result), colour), cell(pct), cell(detail(result, progress=False)))
    console = Console(file=out, no_color=args.no_color or "NO_COLOR" in os.environ, highlight=False, markup=False)
    console.print(table)


async def _wait_jobs(
    setup: Setup,
    refs: Sequence[str],
    display: Display,
    timeout: float | None,
    dest: str | None = None,
    on_update: Any = None,
    *,
    overwrite: bool = False,
    max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
) -> list[JobStatus | VideoJobsError]:
    """Wait for ``refs``; each result is shown (and flushed) as its job ends. ``timeout`` is real seconds."""

    def update(status: JobStatus) -> None:
        display.update(status)
        if on_update is not None:
            on_update(status)

    results: list[JobStatus | VideoJobsError] = []
    async with setup.client as client:
        with display.running(refs):
            async for result in client.wait_all(
                refs,
                timeout=setup.timeout(timeout),
                on_update=update,
                on_poll_error=display.poll_failed,
                policy=setup.policy,
                dest=dest,
                on_progress=display.saving,
                overwrite=overwrite,
                max_failed_polls=max_failed_polls,
            ):
                display.result(result, result.ref or "?")
                results.append(result)
    return results


async def _wait(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    refs = _refs(args, err)
    setup = _setup(args, refs)
    results = await _wait_jobs(
        setup,
        refs,
        _display(args, out, err),
        args.timeout,
        args.dest,
        overwrite=args.overwrite,
        max_failed_polls=args.max_failed_polls,
    )
    return exit_code(results)


async def _download(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    refs = _refs(args, err)
    setup = _setup(args, refs)
    display = _display(args, out, err)
    results: list[JobStatus | VideoJobsError] = []
    async with setup.client as client:
        with display.running(refs):
            async for result in client.download_all(
                refs,
                args.dest,
                overwrite=args.overwrite,
                on_progress=display.saving,
                timeout=args.timeout,  # real seconds: a download's deadline is, on any clock
            ):
                ref = result.ref or "?"
                display.ended(result, ref)
                for line in saved_lines(result, ref) if not args.json else [result_json(result, ref, "download")]:
                    display.emit(line)
                results.append(result)
    return exit_code(results, snapshot=True)


# --- demo ------------------------------------------------------------------------------------


@attrs.frozen
class DemoJob:
    """One job of the demo, and how the demo means it to end."""

    vendor: str
    options: dict[str, Any]  # the sandbox Script's fields: queue, run, outcome, stall, video, faults
    ends: str = "saved"  # saved | failed | canceled | no video | video id (Colossyan's: no file to fetch)

    def as_designed(self, result: JobStatus | VideoJobsError, last: JobStatus | None) -> bool:
        """Whether ``result`` (with ``last``, the job's last status) is the end the demo designed."""
        if isinstance(result, JobStatus) and self.ends in ("saved", "failed", "canceled"):
            state = {"saved": State.SUCCEEDED, "failed": State.FAILED, "canceled": State.CANCELED}[self.ends]
            return result.state is state and (self.ends != "saved" or len(result.downloads) >= 1)
        if self.ends in ("no video", "video id") and isinstance(result, DownloadError) and last is not None:
            # nothing to save: the answer download gives for such a job (wait_all(dest=) gives it too)
            has_id = bool(last.video_id) and not last.video_urls
            return last.state is State.SUCCEEDED and (has_id if self.ends == "video id" else not last.has_video)
        return False


DEMO_JOBS: tuple[DemoJob, ...] = (
    DemoJob("vozo", {"queue": 5, "run": 90}),
    DemoJob("vozo", {"queue": 3, "run": 60, "outcome": "failed"}, "failed"),
    DemoJob("vozo", {"queue": 8, "run": 40}),
    DemoJob("duomi", {"queue": 4, "run": 120, "stall": 25}),
    DemoJob("duomi", {"queue": 2, "run": 45, "faults": (("429", 3),)}),
    DemoJob("ezmodel", {"queue": 6, "run": 150}),
    DemoJob("ezmodel", {"queue": 5, "run": 80, "outcome": "failed"}, "failed"),
    DemoJob("colossyan", {"queue": 9, "run": 100}, "video id"),
    DemoJob("colossyan", {"queue": 4, "run": 60, "outcome": "canceled"}, "canceled"),
    DemoJob("jimmyai", {"queue": 10, "run": 170}),
    DemoJob("jimmyai", {"queue": 3, "run": 70, "faults": (("502", 1),)}),
    DemoJob("jimmyai", {"queue": 2, "run": 35, "video": False}, "no video"),
)

DEMO_TIME_SCALE = 30.0
"""The demo's default speed: its longest job (3 simulated minutes) plays in 6 s."""

_DEMO_ENDS = {"saved": "saved their videos", "failed": "failed", "canceled": "canceled",
              "no video": "without a video", "video id": "with only a video id"}  # fmt: skip


def demo_summary(
    jobs: Sequence[DemoJob], refs: Sequence[str], results: Mapping[str, Any], last: Mapping[str, JobStatus]
) -> tuple[list[str], int]:
    """The demo's last words, and its exit code: 0 when every job ended as designed (its failures
    are the show), else 124 if a job timed out, else 1; each job that did not is named."""
    wrong = [
        (job, ref) for job, ref in zip(jobs, refs, strict=True) if not job.as_designed(results[ref], last.get(ref))
    ]
    if not wrong:
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.ends] = counts.get(job.ends, 0) + 1
        ends = ", ".join(f"{n} {_DEMO_ENDS[end]}" for end, n in counts.items())
        return [f"Every job ended as designed ({ends}): the demo went as planned, exit 0."], EXIT_OK
    lines = [f"{len(wrong)} job(s) did not end as the demo designed them:"]
    for job, ref in wrong:
        result = results[ref]
        got = error_text(result, "demo") if isinstance(result, VideoJobsError) else state_words(result)
        lines.append(f"  {ref}: designed to end {job.ends}, ended {got}")
    timed_out = all(isinstance(results[ref], WaitTimeout) for _, ref in wrong)  # as wait: a failure outranks it
    return lines, EXIT_TIMEOUT if timed_out else EXIT_FAILED


DEMO_WIDTH = 79
"""The demo's own paragraphs are wrapped at this width: whole words on an 80-column terminal."""


def _paragraph(text: str) -> str:
    return textwrap.fill(text, DEMO_WIDTH, break_long_words=False, break_on_hyphens=False) + "\n"


async def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    scale = args.time_scale
    setup = sandbox_setup(scale)
    sb = setup.sandbox
    refs = [sb.create(job.vendor, **job.options) for job in DEMO_JOBS]
    longest = max(job.options.get("run", 0) + job.options.get("queue", 0) for job in DEMO_JOBS)
    display = _display(args, out, err)
    if not args.quiet:
        err.write(
            _paragraph(
                f"videojobs demo: {len(refs)} jobs at five vendors, simulated offline by the embedded sandbox at "
                f"{scale:g}x speed (a {longest / 60:.0f}-minute job plays in {longest / scale:.0f} s). Some fail "
                "on purpose, one is canceled, one hits 429s, one answers a 502, one ends without a video, and "
                "Colossyan hands out a video id, not a file. Exit 0 means every job ended as designed."
            )
        )
    started = time.monotonic()
    folder = args.dest or tempfile.mkdtemp(prefix="videojobs-demo-")
    last: dict[str, JobStatus] = {}
    results = await _wait_jobs(
        setup, refs, display, args.timeout, folder, on_update=lambda s: last.__setitem__(s.ref, s)
    )
    elapsed = time.monotonic() - started
    saved = [d for r in results if isinstance(r, JobStatus) for d in r.downloads]
    polls = sum(job.polls for job in sb.jobs.values())
    fixed = sum(int(job.script.total // 5) + 1 for job in sb.jobs.values())
    words, code = demo_summary(DEMO_JOBS, refs, {r.ref or "?": r for r in results}, last)
    if not args.quiet:
        size = sum(d.bytes for d in saved) / 2**20
        err.write(
            "\n"
            + _paragraph(
                f"{len(results)} jobs in {elapsed:.1f} s; {polls} status requests in all, where polling every 5 s "
                f"(the vendors' advice) would have made {fixed}."
            )
            + _paragraph(f"{len(saved)} videos saved in {printable(folder)} ({size:.1f} MiB, checked).")
        )
    if not args.quiet or code != EXIT_OK:
        err.write("".join(printable(line) + "\n" for line in [*_paragraph(words[0]).splitlines(), *words[1:]]))
    return code


# --- the parser --------------------------------------------------------------------------------


def environment_help() -> str:
    """The environment the command reads, naming every known vendor's key variable."""
    keys = ", ".join(env_name(vendor, "API_KEY") for vendor in vendors())
    key_help = ("\n" + " " * 22).join(textwrap.wrap(f"each vendor's key ({keys}), sent to that vendor only", 70))
    return f"""environment:
  <VENDOR>_API_KEY    {key_help}
  <VENDOR>_BASE_URL   a vendor's base URL (e.g. a proxy); --base-url wins
  HTTP(S)_PROXY, NO_PROXY   proxies, as usual
  NO_COLOR            no colours (as --no-color)"""


EXTRAS: tuple[tuple[str, str, str], ...] = (
    ("cli", "rich", "status, wait, download and demo (live view, tables)"),
    ("sandbox", "uvicorn", "videojobs sandbox (the sandbox served over HTTP)"),
)
"""The extras the command needs (pyproject.toml's optional-dependencies): extra, module, what for."""


def extras_help() -> str:
    """The ``install:`` section of the main help: each extra, what needs it, and whether it is here."""
    import importlib.util

    lines = ["install:"]
    for extra, module, used_by in EXTRAS:
        here = "installed" if importlib.util.find_spec(module) is not None else f"MISSING: no {module} here"
        lines.append(f"  pip install 'videojobs[{extra}]'".ljust(38) + f"{used_by} ({here})")
    return "\n".join(lines)


class _Help(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilogs' layout; options state their defaults in their own help."""


DEMO_EXIT_CODES = {
    "  0 ": "  0    every job ended as the demo designed it (its failed, canceled and video-less jobs are the show)",
    "  1 ": "  1    a job ended otherwise (each is named)",
    "  2 ": "  2    usage error (a bad option)",
    "  124 ": "  124  the demo's --timeout came first, and every job that ended otherwise was still waiting",
}
"""The demo's own meanings of wait's codes: what a job was designed to do is what counts (see
:func:`demo_summary`); wait's 1 for a failed job would be the demo's show."""


def _epilog(*examples: str, environment: bool = True, waits: bool = True, demo: bool = False) -> str:
    """``waits``: the command waits for jobs, so it may time out (124); ``status`` and ``download``
    never do (a download's --timeout is an error of that job, 1). ``demo``: the demo's meanings."""
    parts = ["examples:\n" + "\n".join(f"  {e}" for e in examples)]
    if environment:
        parts.append(environment_help())
    codes = EXIT_CODES_HELP.splitlines()
    if demo:
        codes = [next((v for k, v in DEMO_EXIT_CODES.items() if line.startswith(k)), line) for line in codes]
    parts.append("\n".join(codes if waits else [line for line in codes if not line.startswith("  124")]))
    return "\n\n".join(parts)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors quote what was typed as printable text: an argument
    may carry ESC or bidi characters (a pasted reference), and argparse repeats it as is."""

    def error(self, message: str) -> NoReturn:
        super().error(printable(message))


def _common() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--api-key", action="append", metavar="VENDOR=KEY",
        help="a vendor's key, sent to that vendor only; repeatable (default: $<VENDOR>_API_KEY)",
    )  # fmt: skip
    common.add_argument(
        "--base-url", action="append", metavar="VENDOR=URL",
        help="a vendor's base URL, e.g. a proxy; repeatable (default: the vendor's, or $<VENDOR>_BASE_URL)",
    )  # fmt: skip
    common.add_argument(
        "--request-timeout", type=duration, default=30.0, metavar="DURATION",
        help="time for one request, all of it (default: 30s)",
    )  # fmt: skip
    common.add_argument(
        "--sandbox", action="store_true", help="talk to an embedded sandbox instead of the vendors (offline)"
    )
    common.add_argument(
        "--time-scale", type=_positive, default=None, metavar="X",
        help="with --sandbox: play jobs X times faster (default: 1)",
    )  # fmt: skip
    _output_options(common)
    return common


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per job on stdout, instead of a line")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or notices on stderr")
    parser.add_argument("--plain", action="store_true", help="plain progress lines on stderr, even on a terminal")
    parser.add_argument("--no-color", action="store_true", help="no colours (also: NO_COLOR set)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="DEBUG logs on stderr (keys scrubbed); implies --plain"
    )


def _parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("videojobs")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        release = "unknown"
    parser = _Parser(
        prog="videojobs",
        description=f"Check and wait for AI video jobs at their vendors ({', '.join(vendors())}).\n"
        "A job is VENDOR:TASK_ID, e.g. vozo:task-123.",
        formatter_class=_Help,
        epilog=_epilog("videojobs wait vozo:task-123 duomi:abc --timeout 30m", "videojobs demo")
        + "\n\n"
        + extras_help(),
    )
    parser.add_argument("--version", action="version", version=f"videojobs {release}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "status", parents=[_common()], formatter_class=_Help, help="the status of jobs, now",
        description="Ask each vendor once for each job's status; one line per job on stdout (a table on a terminal).",
        epilog=_epilog(
            "videojobs status vozo:task-123 duomi:abc", "videojobs status --json vozo:task-123 | jq .state", waits=False
        ),
    )  # fmt: skip
    p.add_argument("refs", nargs="+", metavar="VENDOR:TASK_ID")

    p = sub.add_parser(
        "wait", parents=[_common()], formatter_class=_Help, help="wait for jobs to end, with live progress",
        description="Poll each job (with the adaptive policy) until it ends. Each job's result is printed on stdout "
        "as soon as it ends; progress goes to stderr: live bars on a terminal, plain lines otherwise.",
        epilog=_epilog(
            "videojobs wait vozo:task-123 duomi:abc --timeout 30m",
            "videojobs wait --json --quiet vozo:task-123 > results.jsonl",
        ),
    )  # fmt: skip
    p.add_argument("refs", nargs="+", metavar="VENDOR:TASK_ID")
    p.add_argument(
        "--timeout", type=duration, default=None, metavar="DURATION",
        help="give up after this long: 90, 90s, 30m, 1h (exit 124) (default: no limit)",
    )  # fmt: skip
    p.add_argument(
        "--dest", "-o", metavar="DIR", default=None,
        help="save each finished job's videos into DIR as it ends (default: only print the URLs)",
    )  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="with --dest: replace files that exist (default: refuse)")
    p.add_argument(
        "--max-failed-polls", type=lambda text: _whole(text, 1, MAX_WHOLE), default=DEFAULT_MAX_FAILED_POLLS, metavar="N",
        help=f"give a job up after N failed polls in a row (default: {DEFAULT_MAX_FAILED_POLLS})",
    )  # fmt: skip

    p = sub.add_parser(
        "download", parents=[_common()], formatter_class=_Help, help="save finished jobs' videos to a folder",
        description="Ask each job's status and save every video it has into the folder: resumable (a .part file), "
        "checked (length, not an error page) and never half-written under the final name. One line per saved file "
        "on stdout: the job, the path, its size and SHA-256. Byte progress bars on stderr on a terminal.",
        epilog=_epilog(
            "videojobs download vozo:task-123 -o videos/", "videojobs download --json duomi:abc -o out", waits=False
        ),
    )  # fmt: skip
    p.add_argument("refs", nargs="+", metavar="VENDOR:TASK_ID")
    p.add_argument("--dest", "-o", metavar="DIR", default=".", help="the folder to save into (default: .)")
    p.add_argument("--overwrite", action="store_true", help="replace files that exist (default: refuse)")
    p.add_argument(
        "--timeout", type=duration, default=None, metavar="DURATION",
        help="give up after this long, every file included: a save cut short is a NetworkError and exit 1 "
        "(its .part stays for the next run) (default: no limit)",
    )  # fmt: skip

    p = sub.add_parser(
        "demo", formatter_class=_Help, help="a dozen simulated jobs at five vendors, waited for live (offline)",
        description="Runs a dozen jobs on the embedded sandbox (no network, no key): some succeed, some fail, one is "
        "canceled, one is throttled, one ends without a video. Exits 0 when every job ends as designed.",
        epilog=_epilog("videojobs demo", "videojobs demo --time-scale 60 --plain", environment=False, demo=True),
    )  # fmt: skip
    p.add_argument(
        "--time-scale", type=_positive, default=DEMO_TIME_SCALE, metavar="X",
        help=f"play jobs X times faster (default: {DEMO_TIME_SCALE:g})",
    )  # fmt: skip
    p.add_argument(
        "--timeout", type=duration, default=60.0, metavar="DURATION", help="give up after this long (default: 60s)"
    )
    p.add_argument(
        "--dest", "-o", metavar="DIR", default=None, help="where the videos go (default: a new temporary folder)"
    )
    _output_options(p)

    p = sub.add_parser(
        "sandbox", formatter_class=_Help, help="serve the vendor sandbox over HTTP (uvicorn)",
        description="Serve every vendor's simulated status endpoint on one port, for tests and trials.",
        epilog="examples:\n  videojobs sandbox --port 8710\n  videojobs sandbox --limit duomi=20 --time-scale 10\n\n"
        "exit codes:\n  0    stopped (Ctrl-C)\n  1    could not start (e.g. the port is in use)\n  2    usage error\n"
        "  129  stopped by SIGHUP, after shutting down (it ends by the signal, as a shell shows it)\n"
        "  143  stopped by SIGTERM, the same way",
    )  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8710, help="port (default: 8710)")
    p.add_argument(
        "--time-scale", type=_positive, default=1.0, metavar="X", help="jobs run X times faster (default: 1)"
    )
    p.add_argument(
        "--api-key", default="sk-sandbox", metavar="KEY",
        help="the one key the sandbox accepts, from every vendor (default: sk-sandbox)",
    )  # fmt: skip
    p.add_argument(
        "--limit", action="append", metavar="VENDOR=RPS", help="throttle a vendor: 429 + Retry-After (repeatable)"
    )
    return parser


# --- entry point -----------------------------------------------------------------------------


def _require(module: str, extra: str) -> None:
    """Name the extra to install when an optional dependency is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(f"this command needs {module}: pip install 'videojobs[{extra}]'")


class PrintableFormatter(logging.Formatter):
    """Log records as printable lines: a vendor's text in a message cannot act on the terminal
    nor forge a log line of its own (a newline in it is shown as ``\\n``); a traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return "\n".join(printable(line) for line in super().formatException(ei).splitlines())

    def formatStack(self, stack_info: str) -> str:
        return "\n".join(printable(line) for line in super().formatStack(stack_info).splitlines())


@contextlib.contextmanager
def _logs(err: TextIO, verbose: bool) -> Iterator[None]:
    """Log records on stderr, scrubbed and printable, while a command runs.

    With ``-v``: DEBUG and up from videojobs and the HTTP libraries. Without: the library's
    warnings only (``videojobs: WARNING: ...``), which would otherwise reach stderr raw through
    :data:`logging.lastResort`. The handlers go away with the command (``main`` may run again).
    """
    from ._scrub import LOG_SCRUBBER

    handler = logging.StreamHandler(err)
    handler.addFilter(LOG_SCRUBBER)  # every record that reaches stderr, whatever logger made it
    names: tuple[str, ...]
    if verbose:
        handler.setFormatter(PrintableFormatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        names = ("videojobs", "httpx", "httpcore", "aiohttp")
    else:
        handler.setFormatter(PrintableFormatter("videojobs: %(levelname)s: %(message)s"))
        handler.setLevel(logging.WARNING)
        names = ("videojobs",)
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if verbose:
            logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def _tolerant(stream: TextIO | None) -> TextIO:
    """The process's own stdout or stderr, writing what its encoding cannot hold as ``\\u6f22``.

    On a terminal or pipe that is not UTF-8 (``LANG=en_US.ISO-8859-1``, ``PYTHONIOENCODING=ascii``),
    one character of a vendor's text (漢, é) would otherwise end the command with a traceback.
    A stream the process was started without (``>&-``: Python's is None) writes to nowhere, as
    asked; it was an AttributeError, and a closed stderr cost a wait its results.
    """
    if stream is None:
        return open(os.devnull, "w", encoding="utf-8")  # for the process's life, as sys.stdout
    if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
        with contextlib.suppress(OSError, ValueError):  # a closed or detached stream: leave it be
            stream.reconfigure(errors="backslashreplace")
    return stream


class _Noting(io.TextIOBase):
    """A stream that keeps the first error writing to it, for a writer that drops it (argparse)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self.error: OSError | None = None

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self._stream.flush()


class _Unfailing(io.TextIOBase):
    """The process's stderr, dropping what it cannot write (a full disk under ``2>>wait.log``, an
    EIO): progress and notices are lost, not the wait and its results on stdout."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        if not self.failed:
            try:
                self._stream.write(text)
            except OSError:  # BrokenPipeError too: whoever read stderr went away
                self.failed = True
        return len(text)

    def flush(self) -> None:
        if not self.failed:
            try:
                self._stream.flush()
            except OSError:
                self.failed = True

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._stream.errors


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``timeout``, a closed terminal or ssh session): unwound as Ctrl-C is, so
    the live view gives the terminal back its echo and cursor; the exit code is 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
"""What ends a command by cancelling it (:func:`_run_until_stopped`): Ctrl-C, whose handler
asyncio's own would be (it raises at a second Ctrl-C, where the loop stands), and the two whose
default action kills the process where it stands."""


@contextlib.contextmanager
def _on_stop_signals(stop: Callable[[int, Any], None]) -> Iterator[None]:
    """``stop`` handles :data:`STOP_SIGNALS` while the block runs (but one ignored on purpose);
    their handlers are put back after."""
    saved: list[tuple[int, Any]] = []
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is None:
            continue  # not on this platform (Windows has no SIGHUP)
        if signal.getsignal(number) is signal.SIG_IGN:
            continue  # ignored on purpose (nohup, trap '' HUP): it stays ignored
        try:
            saved.append((number, signal.signal(number, stop)))
        except ValueError:  # not the main thread: the default action stays
            break
    try:
        yield
    finally:
        for number, handler in saved:
            signal.signal(number, handler)


STOP_GRACE: Final = 5.0
"""Seconds the command has to unwind after a stop signal (its live view cleared, its
downloads' ``.part`` files noted); past them it ends at once, as a second signal ends it. Our
own unwinding takes milliseconds: this bounds what no test can, a loop that never wakes."""


def _terminal_state() -> Any:
    """stderr's terminal settings (what the live view changes), or None: not a terminal."""
    try:
        import termios

        return termios.tcgetattr(2) if os.isatty(2) else None
    except (ImportError, OSError, ValueError, AttributeError):  # no termios (Windows)
        return None


def _end_at_once(signum: int, terminal: Any) -> NoReturn:
    """End the process now, by a stop signal, from wherever it stands (a signal handler or the
    grace timer's thread), never raising into the loop: the terminal given back as it was before
    the command (echo, the cursor), the line a stop prints, and exit 128 + the signal."""
    if terminal is not None:
        with contextlib.suppress(Exception):  # a terminal gone (the window closed): nothing to give back
            import termios

            termios.tcsetattr(2, termios.TCSANOW, terminal)
            os.write(2, b"\x1b[?25h\n")
    said = "interrupted" if signum == signal.SIGINT else f"{signal.Signals(signum).name}: stopped"
    with contextlib.suppress(OSError):
        os.write(2, f"videojobs: {said}\n".encode())
    os._exit(128 + signum)


def _run_until_stopped(command: Coroutine[Any, Any, int], grace: float = STOP_GRACE) -> int:
    """``asyncio.run(command)``, where Ctrl-C, SIGTERM or SIGHUP ends the command.

    The handler cancels the command's task, as ``asyncio.Runner`` does for SIGINT, and the signal
    is raised as KeyboardInterrupt or :class:`Terminated` once the loop has unwound. It used to
    raise where the code stood, which could be inside ``with lock:`` between the acquire and the block (the embedded
    sandbox's lock, held for ever, and the loop's shutdown waited on it: a command that never
    exited after SIGHUP, seen under load). A cancellation lands only at an ``await``. A second
    signal, or ``grace`` seconds without the command ending, ends the process at once
    (:func:`_end_at_once`)."""
    received: list[int] = []
    terminal = _terminal_state()
    timers: list[threading.Timer] = []

    async def stoppable() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def stop(signum: int, frame: object) -> None:
            if received or task is None:  # a second signal (a closed terminal sends two SIGHUPs):
                _end_at_once(signum, terminal)  # raising here, inside the loop's own code, lost its wake-up
            received.append(signum)
            loop.call_soon_threadsafe(task.cancel)  # wakes the selector too
            timer = threading.Timer(grace, _end_at_once, (signum, terminal))
            timer.daemon = True
            timer.start()
            timers.append(timer)

        # only while the command runs: in asyncio.run's shutdown after it (the live view gone, the
        # terminal given back) a signal takes its default action, as before the command began
        with _on_stop_signals(stop):
            return await command

    try:
        code = asyncio.run(stoppable())
    except asyncio.CancelledError as exc:
        if received:
            raise _stopped_by(received[0]) from exc
        raise
    finally:
        for timer in timers:
            timer.cancel()
    if received:  # it came as the command ended: a shell still reports the signal
        raise _stopped_by(received[0])
    return code


def _stopped_by(signum: int) -> KeyboardInterrupt:
    """What a command stopped by ``signum`` ends in: Ctrl-C's KeyboardInterrupt, or :class:`Terminated`."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or _tolerant(sys.stdout)
    err = err or cast(TextIO, _Unfailing(_tolerant(sys.stderr)))
    try:
        parser = _parser()
        printed = _Noting(out)  # argparse drops an error writing its help: this keeps it
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(printed):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        if exc.code not in (0, None):
            return EXIT_USAGE
        try:
            printed.flush()
        except OSError as error:  # BrokenPipeError too (| head): told apart in _unwritten
            return _unwritten(error, out, err)
        return EXIT_OK if printed.error is None else _unwritten(printed.error, out, err)
    except KeyboardInterrupt:  # Ctrl-C as it starts (building the parser reads the vendors): no traceback
        err.write("videojobs: interrupted\n")
        return EXIT_INTERRUPTED
    try:
        if args.command == "sandbox":
            _require("uvicorn", "sandbox")
            from .sandbox.__main__ import parse_limits, serve

            try:
                limits = parse_limits(args.limit)
            except SystemExit as exc:  # its message names the bad --limit
                err.write(f"videojobs: {printable(str(exc))}\n")
                return EXIT_USAGE
            vendor, sep, _ = args.api_key.partition("=")
            if sep and vendor.lower() in vendors():  # the other commands' VENDOR=KEY (any case): it would be the key
                err.write(f"videojobs: sandbox --api-key takes the one KEY every vendor sends, not {vendor}=KEY\n")
                return EXIT_USAGE
            try:
                serve(args.host, args.port, args.time_scale, args.api_key, rate_limits=limits)
            except SystemExit as exc:  # uvicorn could not start (its log line says why): its 3 is not ours
                if exc.code in (0, None):
                    return EXIT_OK
                err.write("videojobs: the sandbox could not start\n")
                return EXIT_FAILED
            return EXIT_OK
        _require("rich", "cli")
        runner = {"status": _status, "wait": _wait, "demo": _demo, "download": _download}[args.command]
        with _logs(err, args.verbose):
            return _run_until_stopped(runner(args, out, err))
    except UsageError as exc:
        err.write(f"videojobs: {printable(exc.message)}\n")
        return EXIT_USAGE
    except VideoJobsError as exc:  # one no job's result carries: a line, not a traceback
        err.write(f"videojobs: {printable(f'{type(exc).__name__}: {exc}')}\n")
        return EXIT_FAILED
    except Terminated as exc:
        err.write(f"videojobs: {signal.Signals(exc.signum).name}: stopped\n")
        return 128 + exc.signum
    except KeyboardInterrupt:
        err.write("videojobs: interrupted\n")
        return EXIT_INTERRUPTED
    except OSError as exc:  # stdout (or stderr) refused a write: a full disk (> results.jsonl), EIO
        return _unwritten(exc, out, err)


def _unwritten(exc: OSError, out: TextIO, err: TextIO) -> int:
    """The exit of a command whose output could not be written: quiet when the reader went away
    (``| head``), else a line saying why; Python is kept from failing again to flush at exit."""
    if not isinstance(exc, BrokenPipeError):
        with contextlib.suppress(OSError, ValueError):
            err.write(f"videojobs: could not write the output: {printable(exc.strerror or str(exc))}\n")
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return EXIT_BROKEN_PIPE if isinstance(exc, BrokenPipeError) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
