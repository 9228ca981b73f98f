"""The live view in a real pseudo-terminal (pexpect), rendered as a terminal would (pyte).

``videojobs demo`` runs in a pty of 80 and of 160 columns; its whole output is replayed into a
pyte screen in small pieces, and every intermediate frame is checked, then the last one.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.servers import as_a_terminal_starts_it

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

ROWS = 80  # the whole run fits: every result stays on the screen
BAR = re.compile(r"[━╸╺]")
DEMO_JOBS = 12


def _run_in_pty(columns: int, folder: Path) -> tuple[int, bytes]:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "videojobs", "demo", "--time-scale", "120", "--dest", str(folder)],
        dimensions=(ROWS, columns),
        env={"TERM": "xterm-256color", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        timeout=120,
        preexec_fn=as_a_terminal_starts_it,
    )
    data = child.read()
    child.close()
    return child.exitstatus, data


def _frames(data: bytes, columns: int, piece: int = 1024) -> list[list[str]]:
    screen = pyte.Screen(columns, ROWS)
    stream = pyte.ByteStream(screen)
    frames = []
    for start in range(0, len(data), piece):
        stream.feed(data[start : start + piece])
        frames.append([line.rstrip() for line in screen.display])
    return frames


def _bar_rows(frame: list[str]) -> list[str]:
    return [row for row in frame if BAR.search(row) and "%" in row]


@pytest.mark.parametrize("columns", [80, 160])
def test_the_live_view_is_stable_and_ends_in_one_vocabulary(columns: int, tmp_path: Path) -> None:
    code, data = _run_in_pty(columns, tmp_path)
    assert code == 0  # its failed, canceled and video-less jobs are the show: each ended as designed
    assert b"Traceback" not in data
    frames = _frames(data, columns)

    percent_columns = {row.index("%") for frame in frames for row in _bar_rows(frame)}
    assert len(percent_columns) == 1, f"bars moved between frames: % at columns {sorted(percent_columns)}"
    state_columns = {len(re.match(r"\S+\s+", row).group(0)) for frame in frames for row in _bar_rows(frame)}  # type: ignore[union-attr]
    assert len(state_columns) == 1, f"the state column moved: {sorted(state_columns)}"

    final = frames[-1]
    bars = _bar_rows(final)
    assert len(bars) == DEMO_JOBS
    text = "\n".join(bars)
    assert "waiting" not in text
    assert "running" not in text
    assert "queued" not in text
    assert text.count("not saved") == 2  # Colossyan's video id and the job without a video: no file, as download says
    assert "canceled (deleted)" in text  # our word, the vendor's beside it
    assert text.count("failed") == 2
    assert "~" not in text  # no ETA left on an ended job
    for row in bars:
        if "failed" in row or "canceled" in row:
            assert not row.rstrip().endswith("100%")

    results = [row for row in final if row.startswith(("vozo:", "duomi:", "ezmodel:", "colossyan:", "jimmyai:"))]
    joined = "".join(final)  # a result longer than the terminal wraps onto the next row, whole
    for url in re.findall(rb"https://videos\.sandbox\.invalid/\S+?\.mp4", data):
        assert url.decode() in joined
    assert "…" not in "\n".join(r for r in results if not BAR.search(r))  # results are never cut


# --- many jobs, a short terminal ---------------------------------------------------------------------

ENDED_WORDS = ("succeeded", "failed", "canceled", "not saved", "error", "timed out")
MOVING_WORDS = ("running", "queued", "waiting", "retrying", "saving")


def _spawn(argv: list[str], rows: int, columns: int) -> Any:
    return pexpect.spawn(
        sys.executable,
        ["-m", "videojobs", *argv],
        dimensions=(rows, columns),
        env={"TERM": "xterm-256color", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        timeout=60,
        preexec_fn=as_a_terminal_starts_it,
    )


def _complete_frames(data: bytes, columns: int, rows: int) -> list[list[str]]:
    """The screen just before each redraw of the live view (rich erases its last frame first): whole frames."""
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    frames, fed = [], 0
    for match in re.finditer(rb"\r\x1b\[2K", data):
        stream.feed(data[fed : match.start()])
        fed = match.start()
        frames.append([line.rstrip() for line in screen.display])
    stream.feed(data[fed:])
    frames.append([line.rstrip() for line in screen.display])
    return frames


def test_many_jobs_on_a_short_terminal_show_the_moving_ones_and_count_the_rest() -> None:
    rows, columns, jobs = 14, 80, 36
    refs = [f"{('vozo', 'duomi', 'ezmodel')[i % 3]}:many{i}-q{i % 4}-d{8 + (i * 7) % 30}" for i in range(jobs)]
    child = _spawn(["wait", "--sandbox", "--time-scale", "30", *refs], rows, columns)
    data = child.read()
    child.close()
    assert child.exitstatus == 0
    frames = _complete_frames(data, columns, rows)
    counted = 0
    for frame in frames:
        assert not any(row.strip() in ("...", "…") for row in frame)  # never rich's bare ellipsis
        bars = _bar_rows(frame)
        assert len(bars) <= rows - 2  # a row for the count, a row to spare
        others = [row for row in frame if row.startswith("+ ") and " more: " in row]
        if not others:
            continue
        counted += 1
        hidden = int(others[-1].split()[1])
        parts = others[-1].partition(" more: ")[2].split(", ")
        assert sum(int(part.split()[0]) for part in parts) == hidden  # counts by state, adding up
        if any(word in others[-1] for word in MOVING_WORDS):  # jobs still to come are hidden: no ended row shown
            states = [row.split(maxsplit=1)[1] for row in bars]
            assert not any(state.startswith(ENDED_WORDS) for state in states), "\n".join(frame)
    assert counted > 5
    final = _bar_rows(frames[-1])
    assert len(final) == rows - 2
    last = [row for row in frames[-1] if row][-1]
    assert last == f"+ {jobs - len(final)} more: {jobs - len(final)} succeeded"


# --- the status table on a narrow terminal ---------------------------------------------------------------


def test_a_narrow_status_table_folds_refs_and_shows_the_progress_once() -> None:
    long_ref = "colossyan:job-a-rather-long-reference-at_generating"
    child = _spawn(["status", "--sandbox", long_ref, "ezmodel:v-at_completed"], 20, 60)
    data = child.read()
    child.close()
    assert child.exitstatus == 0
    screen = pyte.Screen(60, 20)
    pyte.ByteStream(screen).feed(data)
    lines = [line.rstrip() for line in screen.display if line.strip()]
    text = "\n".join(lines)
    assert "…" not in text  # nothing cut
    assert long_ref in "".join(line.split(" ")[0] for line in lines)  # the ref folds over lines in its column
    assert text.count("42%") == 1  # the progress column only: the video column says there is no video yet
    column = lines[0].index("video / error")
    assert "https://videos.sandbox.invalid/ezmodel/v-at_completed.mp4" in "".join(line[column:] for line in lines)


# --- Ctrl-C --------------------------------------------------------------------------------------------


def test_ctrl_c_leaves_one_row_per_job_and_exits_130() -> None:
    refs = ["vozo:quick-q0-d1", "duomi:slow-q0-d600", "ezmodel:slow-q0-d600", "jimmyai:slow-q0-d600"]
    child = _spawn(["wait", "--sandbox", *refs], 30, 100)
    child.logfile_read = log = io.BytesIO()
    child.expect("vozo:quick-q0-d1  succeeded")  # a result above the bars: the view has been redrawn
    child.expect("\r\x1b\\[2K")  # and is being drawn again: the cursor sits at the end of a full row
    child.sendintr()
    child.read()
    child.close()
    data = log.getvalue()
    assert child.exitstatus == 130
    screen = pyte.Screen(100, 30)
    pyte.ByteStream(screen).feed(data)
    bars = _bar_rows([line.rstrip() for line in screen.display])
    assert sorted(row.split()[0] for row in bars) == sorted(refs)  # each job once: no stale copy of a row
    assert "videojobs: interrupted" in "\n".join(screen.display)
    assert b"^C" not in data  # the terminal did not echo it into the view
    assert b"\x03" not in data


def test_the_live_view_keeps_its_output_on_interrupt_and_restores_the_terminal() -> None:
    import os
    import termios

    from videojobs._cli_output import output_kept_on_interrupt

    leader, follower = os.openpty()
    try:
        with open(follower, "w", closefd=False) as tty:  # a pseudo-terminal
            before = termios.tcgetattr(follower)
            with output_kept_on_interrupt(tty):
                flags = termios.tcgetattr(follower)[3]
                assert flags & termios.NOFLSH  # SIGINT does not discard a frame half written
                assert not flags & termios.ECHO  # nor echo ^C where the cursor is (it would wrap a full row)
            assert termios.tcgetattr(follower) == before
        with output_kept_on_interrupt(io.StringIO()):  # not a terminal: nothing to do
            pass
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_or_sighup_gives_the_terminal_back_its_echo_and_cursor(signame: str) -> None:
    """``timeout 30m videojobs wait ...``, or a closed ssh session, killed the live view where it
    stood: the terminal kept typing blind (echo off) with no cursor. Both signals now unwind as
    Ctrl-C does, and the exit code is 128 + the signal, as a shell reports a killed command."""
    import signal
    import termios
    import time

    child = _spawn(["wait", "--sandbox", "duomi:slow-q0-d600", "vozo:a-q1-d30"], 30, 100)
    child.logfile_read = log = io.BytesIO()
    child.expect("duomi:slow-q0-d600")  # the live view is drawn: echo is off, the cursor hidden
    assert not termios.tcgetattr(child.child_fd)[3] & termios.ECHO
    time.sleep(0.2)
    child.kill(getattr(signal, signame))
    child.read()
    assert termios.tcgetattr(child.child_fd)[3] & termios.ECHO  # given back
    child.close()
    data = log.getvalue()
    assert child.exitstatus == 128 + getattr(signal, signame)
    assert data.count(b"\x1b[?25l") == data.count(b"\x1b[?25h") == 1  # the cursor hidden, then shown again
    assert f"videojobs: {signame}: stopped".encode() in data


def test_a_dumb_terminal_gets_plain_lines_as_jobs_change() -> None:
    """TERM=dumb: the live view drew nothing until the end (rich draws no live view there), so a
    wait showed no progress for its whole length. Plain lines come as jobs change instead."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "videojobs", "wait", "--sandbox", "--time-scale", "20", "vozo:a-q1-d20"],
        dimensions=(30, 100),
        env={"TERM": "dumb", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        timeout=60,
        preexec_fn=as_a_terminal_starts_it,
    )
    child.logfile_read = log = io.BytesIO()
    child.expect(r"\] vozo:a-q1-d20  queued")  # a plain progress line, before the job ends
    child.read()
    child.close()
    assert child.exitstatus == 0
    assert b"\x1b[" not in log.getvalue()  # no cursor movement, no colour


def test_a_result_line_on_a_narrow_terminal_keeps_its_url_whole() -> None:
    """rich wrapped result lines at the terminal's width with a line break, so a URL (or a
    SHA-256) copied from the screen had one in it. The terminal wraps them now."""
    url = b"https://videos.sandbox.invalid/vozo/a-at_done.mp4"
    child = _spawn(["wait", "--sandbox", "vozo:a-at_done", "duomi:b-at_succeeded"], 30, 40)
    child.logfile_read = log = io.BytesIO()
    child.read()
    child.close()
    assert child.exitstatus == 0
    assert url in log.getvalue()
    screen = pyte.Screen(40, 30)
    pyte.ByteStream(screen).feed(log.getvalue())
    assert url.decode() in "".join(line.rstrip() if len(line.rstrip()) < 40 else line for line in screen.display)


def _whole_run(program: str, argv: list[str], **env: str) -> tuple[int, bytes]:
    """``program argv`` run to its end in a 30 x 100 pseudo-terminal (``env`` added): its exit
    status and all it wrote."""
    child = pexpect.spawn(
        program,
        argv,
        dimensions=(30, 100),
        env={"TERM": "xterm-256color", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env},
        timeout=60,
        preexec_fn=as_a_terminal_starts_it,
    )
    child.logfile_read = log = io.BytesIO()
    child.read()
    child.close()
    return child.exitstatus, log.getvalue()


def test_a_terminal_that_is_not_utf8_gets_plain_lines_not_a_view_that_smears() -> None:
    """PYTHONIOENCODING=ascii: a CJK task id went out as \\u6f22 escapes, three times the width rich
    measured, and every frame of the live view left a stale row behind. Plain lines instead."""
    code, data = _whole_run(
        sys.executable,
        ["-m", "videojobs", "wait", "--sandbox", "--time-scale", "20", "vozo:\u6f22\u5b57-q1-d20"],
        PYTHONIOENCODING="ascii",
    )
    assert code == 0
    assert b"\\u6f22\\u5b57" in data
    assert b"\x1b[?25l" not in data  # no live view (it hides the cursor)


def test_a_terminal_made_narrower_mid_wait_gets_the_narrow_layout() -> None:
    """The wide layout (ref 32, state 24, elapsed time) was chosen once, as the view started: a
    terminal narrowed from 120 to 60 columns mid-wait (a tmux split) then showed ``2…`` for 27% and
    no bar. The columns follow the width at each frame."""
    rows, wide, narrow = 30, 120, 60
    child = _spawn(["wait", "--sandbox", "--time-scale", "20", "vozo:resized-q0-d60"], rows, wide)
    child.logfile_read = log = io.BytesIO()
    child.expect(rb"running")  # the wide view is up, the job under way
    child.setwinsize(rows, narrow)  # SIGWINCH: the next frames are drawn for 60 columns
    resized = len(log.getvalue())
    child.read()
    child.close()
    assert child.exitstatus == 0
    # the last frame, drawn as the wait ended, seconds after the resize (earlier ones may have
    # been written at 120 columns before it and read after it: they wrap on a 60-column screen)
    last = _complete_frames(log.getvalue()[resized:], narrow, rows)[-1]
    (row,) = [row for row in last if row.startswith("vozo:resized") and BAR.search(row)]  # its bar, not its result
    assert re.search(r"\b100%", row), row  # the percentage whole, never cut to "1…"


def test_stdout_into_a_pipe_gets_plain_progress_that_leaves_the_readers_lines_be() -> None:
    """``videojobs wait ... | cat`` (``| jq``, ``| tee``) on a terminal: the reader prints the results
    to the terminal the live view redraws on, and each redraw erased them. Plain progress lines
    instead (a file, ``> results.jsonl``, keeps the live view: nobody else writes to the screen)."""
    refs = ["vozo:piped1-q1-d20", "duomi:piped2-q0-d10"]
    command = " ".join([sys.executable, "-m", "videojobs", "wait", "--sandbox", "--time-scale", "20", *refs, "| cat"])
    code, data = _whole_run("bash", ["-c", command])
    assert code == 0
    assert b"\x1b[?25l" not in data  # no live view (it hides the cursor)
    screen = pyte.Screen(100, 30)
    pyte.ByteStream(screen).feed(data)
    shown = "\n".join(screen.display)
    for ref in refs:
        assert f"{ref}  succeeded" in shown  # the reader's result lines stay on the screen
