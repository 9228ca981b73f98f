"""The live view in a real pseudo-terminal (pexpect), rendered as a terminal would (pyte).

``videojobs demo`` runs in a pty of 80 and of 160 columns; its whole output is replayed into a
pyte screen in small pieces, and every intermediate frame is checked, then the last one.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

ROWS = 80  # the whole run fits: every result stays on the screen
BAR = re.compile(r"[━╸╺]")
DEMO_JOBS = 12


def _run_in_pty(columns: int, folder: Path) -> tuple[int, bytes]:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "videojobs", "demo", "--time-scale", "60", "--download", str(folder)],
        dimensions=(ROWS, columns),
        env={"TERM": "xterm-256color", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        timeout=120,
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
