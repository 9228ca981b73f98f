"""What the ``videojobs`` command writes, and where.

- **stdout: results only**, one line (or one JSON object) per job, written as each job ends,
  never cut: a pipe or a file gets every URL whole. On a terminal, ``status`` draws a table
  whose long cells fold instead of being cut.
- **stderr: progress, warnings and errors.** Live progress bars when stderr is a terminal
  (rich), one plain line per change otherwise, nothing with ``--quiet``.
- One vocabulary: the normalized state (``succeeded``, ``failed``, ``canceled`` ...) with the
  vendor's own word beside it in parentheses, e.g. ``canceled (deleted)``.
- **Vendor text is never obeyed by the terminal.** Every line written, piped or not, passes
  through :func:`._text.printable` (controls, ESC, C1, bidi shown as ``\\x1b``, ``\\u202e``), and
  everything given to rich is a :class:`rich.text.Text`, never markup: ``[link=...]`` from a
  vendor is printed as those characters. ``--json`` is exact data: ``json.dumps`` escapes them.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import socket
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

import attrs

from ._adapter import NO_VIDEO
from ._exceptions import (
    APIError,
    DownloadError,
    NetworkError,
    RateLimitError,
    UsageError,
    VideoJobsError,
)
from ._status import DownloadProgress, JobStatus, State, WaitTimeout, outcome_dict
from ._text import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_TIMEOUT = 124  # as GNU timeout(1): the wait ran out of time
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that went away (| head)
EXIT_INTERRUPTED = 130  # 128 + SIGINT

EXIT_CODES_HELP = """exit codes:
  0    every job succeeded with a video (status: nothing failed; jobs may still run)
  1    a job failed, was canceled, ended without a video, could not be read, or its video could not be saved
  2    usage or configuration error (bad option, unknown vendor, missing key, bad base URL)
  124  a wait timed out (as GNU timeout), and no job failed
  130  interrupted (Ctrl-C); 143 and 129 for SIGTERM and SIGHUP (the terminal is given back as for Ctrl-C)
  141  the reader of stdout went away (| head)"""

LIVE_WIDE_COLUMNS = 100
"""From this terminal width the live view also shows each job's elapsed time and wider names;
below it (80 columns, the classic default) the bar keeps at least 20 columns."""

LIVE_SPARE_ROWS = 1
"""Terminal rows the live view leaves free below it: with a job per row, a terminal shorter than the
jobs shows the jobs that move and one line that counts the others (see :func:`pick_rows`)."""

FAILURE_NOTICE_EVERY = 5.0
"""Seconds between two 'N polls failed; retrying' notices for one vendor (a dead vendor under
a thousand jobs would otherwise print a thousand lines)."""


def state_words(status: JobStatus) -> str:
    """``succeeded (done)``: our word, and the vendor's beside it when it differs."""
    ours = status.state.value
    theirs = status.vendor_state
    return ours if not theirs or theirs.lower() == ours else f"{ours} ({theirs})"


def until(when: datetime, now: datetime | None = None) -> str:
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds <= 0:
        return f"expired {when:%Y-%m-%d %H:%M} UTC"
    if seconds >= 3600:
        return f"expires {when:%Y-%m-%d %H:%M} UTC, in {seconds / 3600:.0f} h"
    return f"expires in {max(1.0, seconds / 60):.0f} min"


def ended_without_video(status: JobStatus) -> bool:
    return status.state is State.SUCCEEDED and not status.has_video


def detail(status: JobStatus, *, progress: bool = True) -> str:
    """Where the video is, or why there is none, or how far the job is (unless ``progress`` is
    shown in a column of its own: then ``-``): whole, never cut."""
    if status.state is State.SUCCEEDED:
        if status.video_urls:
            expiry = f" ({until(status.expires_at)})" if status.expires_at else ""
            return " ".join(status.video_urls) + expiry
        if status.video_id:
            return f"video id {status.video_id} (this vendor returns an id, not a URL)"
        return "WARNING: the vendor says the job succeeded but returned no video"
    if status.error is not None:
        return status.error.message + (f" [{status.error.code}]" if status.error.code else "")
    if status.state is State.CANCELED:
        return "canceled by the vendor"
    return "-" if status.progress is None or not progress else f"{status.progress:.0%}"


def cli_hint(exc: VideoJobsError, command: str) -> str:
    """What to do about ``exc``, in the command's own flags (the library's words name its Python
    arguments, which mean nothing at a shell): chosen by the error's kind, never by its text."""
    if not isinstance(exc, DownloadError):
        return ""
    if exc.name_taken and exc.errno == errno.EEXIST and command in ("download", "wait"):
        return "--overwrite replaces it"  # a file (or a link) has the name, and --overwrite was not given
    if exc.name_taken or exc.errno == errno.ENOTDIR:  # a folder, a FIFO at the name; a file where the folder goes
        return "it is kept: choose another --dest folder"
    return ""


def error_text(exc: VideoJobsError, command: str = "wait") -> str:
    """``NetworkError: could not reach ...``: without the vendor prefix (the ref says it), with
    the command's own hint when there is one (:func:`cli_hint`)."""
    hint = cli_hint(exc, command)
    return f"{type(exc).__name__}: {exc.message}" + (f" ({hint})" if hint else "")


def ended_words(exc: VideoJobsError) -> str:
    """How a job whose wait ended in ``exc`` is shown in its row: ``timed out``, ``not saved``
    (a DownloadError: the job may have ended well, its file is what is missing) or ``error``."""
    if isinstance(exc, WaitTimeout):
        return "timed out"
    return "not saved" if isinstance(exc, DownloadError) else "error"


def result_line(result: JobStatus | VideoJobsError, ref: str, command: str = "wait") -> str:
    if isinstance(result, VideoJobsError):
        last = result.last_status  # a job whose other videos were saved before this one failed
        saved = "".join(f"  saved {d.path}" for d in last.downloads) if last is not None else ""
        return f"{ref}  error  {error_text(result, command)}{saved}"
    saved = "".join(f"  saved {d.path}" for d in result.downloads)
    return f"{ref}  {state_words(result)}  {detail(result)}{saved}"


MAX_NOTES: Final = 3
"""A job's ``problems`` shown on stderr at most (then how many more): a vendor that gets every
field wrong must not bury the results; ``--json`` has them all."""


def note_lines(result: JobStatus | VideoJobsError, ref: str) -> list[str]:
    """What the answer held that could not be read (``problems``), a line each for stderr: the
    result line says the job's state; these say which of its fields became None and why. The
    missing video is said already (by the result line and its warning)."""
    if not isinstance(result, JobStatus):
        return []
    problems = [p for p in result.problems if p != NO_VIDEO]
    lines = [f"{ref}  note: {problem}" for problem in problems[:MAX_NOTES]]
    if len(problems) > MAX_NOTES:
        lines.append(f"{ref}  note: {len(problems) - MAX_NOTES} more (--json lists them)")
    return lines


def result_json(result: JobStatus | VideoJobsError, ref: str, command: str = "wait") -> str:
    """One JSON line of the shape every outcome has (``outcome_dict``: the job's fields and
    ``exception``), the same as the Celery callback's payload; plus the CLI's own ``hint``."""
    row = outcome_dict(ref, result)
    if isinstance(result, VideoJobsError) and (hint := cli_hint(result, command)):
        row["exception"]["hint"] = hint
    return json.dumps(row, default=str, ensure_ascii=True)  # controls, ESC and bidi as \\u escapes


def exit_code(results: Sequence[JobStatus | VideoJobsError], *, snapshot: bool = False) -> int:
    """0, 1, 2 or 124 by the rules in :data:`EXIT_CODES_HELP` (``snapshot``: ``status``'s rules).

    A job that could not even be asked for (a bad ``--base-url``: a ``UsageError``) is a
    configuration error, 2, whatever the other jobs did.
    """
    if any(isinstance(result, UsageError) for result in results):
        return EXIT_USAGE
    timed_out = False
    for result in results:
        if isinstance(result, WaitTimeout):
            timed_out = True
        elif (
            isinstance(result, VideoJobsError)
            or result.state in (State.FAILED, State.CANCELED)
            or ended_without_video(result)
        ):
            return EXIT_FAILED
        elif not snapshot and result.state is not State.SUCCEEDED:
            timed_out = True  # pragma: no cover - a wait returns only ended jobs
    return EXIT_TIMEOUT if timed_out else EXIT_OK


def reason(exc: VideoJobsError) -> str:
    """A short why for a failed poll: 'connection refused', 'HTTP 503', 'rate limited'."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "the host name does not resolve"
        seen = seen.__cause__ or seen.__context__
        if seen is exc:  # pragma: no cover - a cycle
            break
    if isinstance(exc, RateLimitError):
        return "rate limited (429)"
    if isinstance(exc, APIError) and exc.status_code:
        return f"HTTP {exc.status_code}"
    if isinstance(exc, NetworkError) and "no complete answer" in exc.message:
        return "no answer in time"
    text = exc.message
    if "refused" in text.lower() or "connect call failed" in text.lower():
        return "connection refused"
    return text if len(text) <= 80 else text[:77] + "..."


IDLE_PHASES = ("waiting", "queued")
"""Phases of a job that is not moving: the live view shows moving jobs first when rows are short."""

PHASES = (
    "succeeded", "no video", "not saved", "failed", "canceled", "error", "timed out", "saving", "retrying", "running"
)  # fmt: skip
"""The order in which the live view's summary line counts the jobs it does not show (then the idle ones)."""


@attrs.frozen
class Row:
    """What the live view knows of one job's row when it chooses which rows fit."""

    phase: str  # a word of PHASES or IDLE_PHASES
    ended: int | None = None  # the order the job ended in; None while it runs
    shown: bool = False  # whether the last frame showed it


def pick_rows(rows: Sequence[Row], room: int) -> tuple[list[int], dict[str, int]]:
    """The rows the live view shows in ``room`` lines, in their order, and the others counted by phase.

    Every row when all fit. Otherwise one line counts the others, and the rest go to the jobs
    that move (running, saving, retrying; the ones already shown first, so rows do not jump),
    then to the idle ones (queued, waiting), then to the jobs that ended last: an ended job's
    row leaves when a running one needs it (its result is printed above the view anyway).
    """
    if len(rows) <= room:
        return list(range(len(rows))), {}
    keep = max(0, room - 1)
    running = [i for i, row in enumerate(rows) if row.ended is None]
    running.sort(key=lambda i: (rows[i].phase in IDLE_PHASES, not rows[i].shown, i))
    chosen = running[:keep]
    if len(chosen) < keep:
        ended = [i for i, row in enumerate(rows) if row.ended is not None]
        ended.sort(key=lambda i: (not rows[i].shown, -(rows[i].ended or 0)))
        chosen += ended[: keep - len(chosen)]
    shown = set(chosen)
    counts = Counter(row.phase for i, row in enumerate(rows) if i not in shown)
    order = [*PHASES, *IDLE_PHASES, *sorted(set(counts) - {*PHASES, *IDLE_PHASES})]
    return sorted(chosen), {phase: counts[phase] for phase in order if counts[phase]}


def others_line(counts: Mapping[str, int]) -> str:
    """The live view's line for the jobs it does not show: ``+ 171 more: 150 succeeded, 21 queued``."""
    return f"+ {sum(counts.values())} more: " + ", ".join(f"{count} {phase}" for phase, count in counts.items())


def _same_terminal(out: TextIO, err: TextIO) -> bool:
    """stdout and stderr are one terminal (the live view's, on stderr): results then go above its
    bars; on a terminal of their own they are written there, not into the view's."""
    try:
        return out.isatty() and os.path.samestat(os.fstat(out.fileno()), os.fstat(err.fileno()))
    except (OSError, ValueError, AttributeError):
        return False


def time_left(first: tuple[float, float], last: tuple[float, float]) -> float | None:
    """Seconds a job has left at the pace its progress moved between two readings, ``(when,
    progress)`` each: the first this command saw, and the last. None before it has moved. (From
    the command's start instead, a job half done when the wait began read as done in as long
    again: ~0:00 at 59 %, and a stalled job kept its first guess.)"""
    (since, start), (now, progress) = first, last
    if not start < progress < 1 or now <= since:
        return None
    return (now - since) * (1 - progress) / (progress - start)


@contextmanager
def output_kept_on_interrupt(stream: TextIO) -> Iterator[None]:
    """While the live view is drawn on a terminal, Ctrl-C neither discards output nor echoes.

    Why Ctrl-C used to leave a copy of the first row: the terminal echoes ``^C`` where the
    cursor is, which is the end of the view's last row; that row fills the width, so the echo
    wraps onto a new line. rich's last frame then goes up as many lines as it drew, from a line
    lower, and is drawn a row below the one it erases, under a stale first row. The line
    discipline also discards the output not yet drawn when it sends SIGINT (unless NOFLSH): half
    a frame is lost, with the same effect. So echo is off (ECHO: typing cannot scribble on the view
    either) and NOFLSH is on while the view is drawn; both are restored after.
    """
    try:
        import termios

        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
    except (ImportError, AttributeError, OSError, ValueError):  # no termios (Windows), or no terminal
        yield
        return
    changed = list(saved)
    changed[3] = (changed[3] | termios.NOFLSH) & ~termios.ECHO
    try:
        termios.tcsetattr(fd, termios.TCSANOW, changed)
    except termios.error:
        yield
        return
    try:
        yield
    finally:
        with suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSANOW, saved)


class Display:
    """Progress on stderr while jobs are waited for: live bars, plain lines, or nothing.

    Results go to stdout through :meth:`result`, whatever the mode: on a terminal that also
    shows the live bars, they are printed above the bars (rich keeps the bars below). On a
    terminal shorter than the jobs, the bars are those of the jobs that move, and one line
    counts the others by state (:func:`pick_rows`).
    """

    def __init__(
        self, out: TextIO, err: TextIO, *, mode: str, json_lines: bool, color: bool, command: str = "wait"
    ) -> None:
        if mode not in ("live", "plain", "quiet"):
            raise ValueError(mode)
        self.out, self.err, self.mode, self.json_lines, self.color = out, err, mode, json_lines, color
        self.command = command  # whose flags the hints name (cli_hint)
        self._phases: dict[str, str] = {}  # ref -> its row's phase (a word of PHASES or IDLE_PHASES)
        self._ended: dict[str, int] = {}  # ref -> the order its job ended in
        self._shown: set[str] = set()  # refs the last frame showed
        self.started = time.monotonic()
        self._progress: Any = None
        self._console: Any = None
        self._tasks: dict[str, Any] = {}
        self._first_progress: dict[str, tuple[float, float]] = {}  # ref -> (when, progress) first seen
        self._files: dict[Path, tuple[float, int]] = {}  # file being saved -> (when, bytes) its first bytes came
        self._said: set[Path] = set()  # files whose start a plain line announced
        self._failures: dict[str, tuple[int, float, str]] = {}  # vendor -> (failed polls, last notice, reason)

    # --- lifecycle -------------------------------------------------------------------------------

    @contextmanager
    def running(self, refs: Sequence[str]) -> Iterator[Display]:
        """Show a bar per job while inside (a job's bar shows its file's bytes while it is saved)."""
        if self.mode != "live":
            yield self
            return
        from rich.console import Console
        from rich.live import Live
        from rich.progress import BarColumn, TaskProgressColumn, TimeElapsedColumn
        from rich.table import Column

        self._console = console = Console(file=self.err, no_color=not self.color, highlight=False, markup=False)
        longest = max((len(printable(r)) for r in refs), default=24)
        field = _field_column()  # a task's fields are Text, shown as they are: never read as markup

        @functools.cache
        def layout(wide: bool) -> tuple[Any, ...]:
            """The columns for a terminal of at least LIVE_WIDE_COLUMNS (wide) or fewer."""
            columns: list[Any] = [
                field(
                    "ref", Column(width=min(32 if wide else 24, max(12, longest)), no_wrap=True, overflow="ellipsis")
                ),
                field("state", Column(width=24 if wide else 20, no_wrap=True)),
                BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=8)),
                TaskProgressColumn(table_column=Column(width=5, justify="right")),
            ]
            if wide:
                columns.append(TimeElapsedColumn(table_column=Column(width=8)))
            columns.append(field("eta", Column(width=8, no_wrap=True)))
            return tuple(columns)

        self._progress = _rows_progress()(self._pick, layout, console=console, expand=True)
        for ref in refs:
            self._tasks[ref] = self._progress.add_task("", total=None, ref=_text(ref), state=_text("waiting"), eta="")
            self._phases[ref] = "waiting"
        # one row per job (while the terminal has the rows), whose bar turns into its file's byte
        # bar while it is saved: the region's height changes only when a row gives way to another
        with output_kept_on_interrupt(self.err), Live(self._progress, console=console, refresh_per_second=8) as live:
            yield self
            live.refresh()

    def _pick(self, tasks: Sequence[Any], room: int) -> tuple[list[Any], str]:
        """The tasks the live view draws in ``room`` lines, and the line for the others (or "")."""
        refs = list(self._tasks)
        rows = [Row(self._phases[r], self._ended.get(r), r in self._shown) for r in refs]
        chosen, others = pick_rows(rows, room)
        self._shown = {refs[i] for i in chosen}
        by_id = {task.id: task for task in tasks}
        return [by_id[self._tasks[refs[i]]] for i in chosen], others_line(others) if others else ""

    def _phase(self, ref: str, phase: str, *, ended: bool = False) -> None:
        self._phases[ref] = phase
        if not ended:
            self._ended.pop(ref, None)  # a job that succeeded moves again while its files are saved
        elif ref not in self._ended:
            self._ended[ref] = max(self._ended.values(), default=-1) + 1

    # --- events ----------------------------------------------------------------------------------

    def update(self, status: JobStatus) -> None:
        self._failures.pop(status.vendor, None)
        if self.mode == "live":
            self._live_update(status)
        elif self.mode == "plain":
            self._line(
                f"{status.ref}  {state_words(status)}  {'' if status.progress is None else f'{status.progress:.0%}'}"
            )  # _line makes it printable
            if ended_without_video(status):
                self._line(f"warning: {status.ref} ended without a video")

    def poll_failed(self, exc: VideoJobsError, failed_in_a_row: int) -> None:
        vendor = exc.vendor or (exc.ref or "?").partition(":")[0]
        count, last, _ = self._failures.get(vendor, (0, -FAILURE_NOTICE_EVERY, ""))
        why = reason(exc)
        now = time.monotonic()
        count += 1
        self._failures[vendor] = (count, last, why)
        if self.mode == "live" and exc.ref in self._tasks:
            self._progress.update(
                self._tasks[exc.ref], state=_text(f"retrying, {failed_in_a_row} failed", "yellow"), eta=""
            )
            self._phase(exc.ref, "retrying")
        if now - last >= FAILURE_NOTICE_EVERY:
            self._failures[vendor] = (count, now, why)
            plural = "poll" if count == 1 else "polls"
            self._notice(f"{vendor}: {count} {plural} failed: {why}; retrying")

    def result(self, result: JobStatus | VideoJobsError, ref: str) -> None:
        """A job ended: its row says how, and its line is on stdout, now."""
        self.ended(result, ref)
        if self.json_lines:
            self.emit(result_json(result, ref, self.command))
        else:
            self.emit(result_line(result, ref, self.command))
            for line in note_lines(result, ref):
                self._notice(line)

    def ended(self, result: JobStatus | VideoJobsError, ref: str) -> None:
        """A job ended: its row (live) or a line on stderr (plain) says how; nothing on stdout."""
        if isinstance(result, JobStatus) and self.mode == "live" and result.downloads:
            self._live_update(result)  # the row was a byte bar while the files were saved
        if isinstance(result, VideoJobsError) and self.mode == "live" and self._progress and ref in self._tasks:
            label = ended_words(result)
            colour = "yellow" if isinstance(result, DownloadError) else "red"
            self._phase(ref, label, ended=True)  # before the row's words: a frame drawn between sees it ended
            self._progress.update(self._tasks[ref], state=_text(label, colour), eta="")
            self._progress.stop_task(self._tasks[ref])
        elif isinstance(result, VideoJobsError) and self.mode == "plain":
            self._line(f"{ref}  {ended_words(result)}")

    def emit(self, line: str) -> None:
        """One result line on stdout (above the bars when they share the terminal), whole and printable."""
        if self.mode == "live" and self._console is not None and _same_terminal(self.out, self.err):
            # above the bars; the terminal wraps it (soft): a URL or SHA-256 copied from the screen
            # has no line break in it (rich's own wrap wrote one at each row's end)
            self._console.print(_text(line), soft_wrap=True)
        else:
            self.out.write(printable(line) + "\n")
            self.out.flush()

    def saving(self, progress: DownloadProgress) -> None:
        """Bytes of a file arrived (``on_progress``): size, speed and ETA on the job's row."""
        key = progress.path
        started = self._files.setdefault(key, (time.monotonic(), progress.done))
        if self.mode == "live" and progress.ref in self._tasks:
            seconds = max(1e-6, time.monotonic() - started[0])
            speed = (progress.done - started[1]) / seconds
            total = progress.total
            size = f"{_size(progress.done)}/{_size(total)}" if total else _size(progress.done)
            eta = f"~{_clock((total - progress.done) / speed)}" if total and speed > 0 else ""
            fields: dict[str, Any] = {"state": _text(f"saving {size}"), "eta": f"{_size(speed)}/s {eta}".strip()}
            if total:
                fields.update(total=total, completed=progress.done)
            self._progress.update(self._tasks[progress.ref], **fields)
            self._phase(progress.ref, "saving")
        elif self.mode == "plain" and key not in self._said:
            self._said.add(key)
            size = "" if progress.total is None else f" ({_size(progress.total)})"
            resumed = f", resuming at {_size(progress.resumed_from)}" if progress.resumed_from else ""
            self._line(f"{progress.ref}  saving {key.name}{size}{resumed}")

    # --- drawing ---------------------------------------------------------------------------------

    def _live_update(self, status: JobStatus) -> None:
        task = self._tasks.get(status.ref)
        if task is None:
            return
        words = state_words(status)
        fields: dict[str, Any] = {"eta": ""}
        if status.state is State.SUCCEEDED and not status.has_video:
            fields["state"] = _text("succeeded, no video", "yellow")
            self._phase(status.ref, "no video", ended=True)
        else:
            fields["state"] = _text(words, STATE_STYLES.get(status.state, ""))
            self._phase(status.ref, status.state.value, ended=status.is_terminal)
        if status.progress is not None:
            fields.update(total=100, completed=round(status.progress * 100))
            now = time.monotonic()
            first = self._first_progress.setdefault(status.ref, (now, status.progress))
            left = None if status.is_terminal else time_left(first, (now, status.progress))
            if left is not None:
                fields["eta"] = f"~{_clock(left)}"
        elif status.is_terminal:
            fields.update(total=100, completed=100 if status.state is State.SUCCEEDED else 0)
        self._progress.update(task, **fields)
        if status.is_terminal:
            self._progress.stop_task(task)

    def _line(self, text: str) -> None:
        self.err.write(f"[{time.monotonic() - self.started:7.1f}s] {printable(text)}\n")
        self.err.flush()

    def _notice(self, text: str) -> None:
        if self.mode == "quiet":
            return
        if self.mode == "live" and self._console is not None:
            self._console.print(_text(text, "yellow"), overflow="fold")
        else:
            self._line(text)


STATE_STYLES: dict[State, str] = {State.SUCCEEDED: "green", State.FAILED: "red", State.CANCELED: "yellow"}
"""The colour of an ended job's state, in the live view and the ``status`` table."""


def _text(text: str, style: str = "") -> Any:
    """A rich ``Text`` of printable ``text``: rich shows it as it is, and never reads it as markup."""
    from rich.text import Text

    return Text(printable(text), style=style)


def _rows_progress() -> Any:
    """rich's ``Progress`` drawing the rows a picker chooses for the terminal's height, and a line
    for the others (rich alone draws the first rows that fit and a bare ``...``)."""
    from rich.progress import Progress, Task
    from rich.text import Text

    class RowsProgress(Progress):
        def __init__(self, pick: Any, layout: Any, *, console: Any, **options: Any) -> None:
            self.pick, self.layout, self.screen = pick, layout, console  # before rich's __init__, which draws once
            super().__init__(*layout(console.width >= LIVE_WIDE_COLUMNS), console=console, **options)

        def get_renderables(self) -> Any:
            size = self.screen.size  # read at every frame: a resize counts, in both directions
            self.columns = self.layout(size.width >= LIVE_WIDE_COLUMNS)  # fewer cells for fewer columns
            room = max(1, size.height - LIVE_SPARE_ROWS)
            tasks: list[Task] = self.tasks
            shown, others = self.pick(tasks, room)
            yield self.make_tasks_table(shown)
            if others:
                yield Text(others, style="dim", no_wrap=True, overflow="ellipsis")

    return RowsProgress


def _field_column() -> Any:
    """A live-view column class showing one field of a task (a ``Text``) as it is.

    rich's ``TextColumn`` formats its template and then reads the result as markup, so a vendor's
    ``[link=...]`` in a field would become a hyperlink and ``[/bogus]`` an exception.
    """
    from rich.progress import ProgressColumn, Task
    from rich.table import Column
    from rich.text import Text

    class FieldColumn(ProgressColumn):
        def __init__(self, name: str, table_column: Column) -> None:
            super().__init__(table_column=table_column)
            self.name = name

        def render(self, task: Task) -> Text:
            value = task.fields.get(self.name, "")
            return value if isinstance(value, Text) else Text(printable(str(value)))

    return FieldColumn


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def saved_lines(result: JobStatus | VideoJobsError, ref: str) -> list[str]:
    """``download``'s stdout: a line per saved file (path, size, checksum), or the error."""
    if isinstance(result, VideoJobsError):  # the job's videos saved before this error first
        last = result.last_status
        return [
            *(saved_lines(last, ref) if last is not None else []),
            f"{ref}  error  {error_text(result, 'download')}",
        ]
    return [f"{ref}  saved  {d.path}  {d.bytes} bytes  sha256:{d.sha256}" for d in result.downloads]


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"
