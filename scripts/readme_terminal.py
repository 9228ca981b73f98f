"""Regenerate the README's terminal section from real runs: ``make readme-terminal``.

Each command runs as a real process against the embedded sandbox (``--sandbox``: no key, no
network), in a fresh folder (so ``videos/`` is a relative path, as shown); stdout and stderr are
shown as a terminal would interleave them only where they are both shown, and ``echo $?`` is the
real exit code. The live view is a real run of ``videojobs demo``, exactly as ``make demo`` runs
it, in a pseudo-terminal of 100 columns, rendered by pyte: its last frame.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CLI = [sys.executable, "-m", "videojobs"]
MARK = "<!-- terminal -->"

RUNS: list[tuple[str, list[str], str]] = [
    # (what the reader sees after "$ ", the argv, which streams to show: out, err, both)
    (
        "videojobs status --sandbox duomi:demo-1 colossyan:job-at_generating ezmodel:v-at_completed vozo:gone-e404",
        [
            "status",
            "--sandbox",
            "duomi:demo-1",
            "colossyan:job-at_generating",
            "ezmodel:v-at_completed",
            "vozo:gone-e404",
        ],
        "out",
    ),
    (
        "videojobs wait --sandbox --time-scale 30 ezmodel:a-q2-d60 colossyan:b-q1-d40 2>/dev/null",
        ["wait", "--sandbox", "--time-scale", "30", "ezmodel:a-q2-d60", "colossyan:b-q1-d40"],
        "out",
    ),
    (
        "videojobs wait --sandbox --time-scale 30 ezmodel:a-q2-d60 jimmyai:n-q1-d20-novideo > results.txt",
        ["wait", "--sandbox", "--time-scale", "30", "ezmodel:a-q2-d60", "jimmyai:n-q1-d20-novideo"],
        "err",
    ),
    (
        "videojobs wait --sandbox --json --timeout 2s duomi:slow-q0-d600 --quiet",
        ["wait", "--sandbox", "--json", "--timeout", "2s", "duomi:slow-q0-d600", "--quiet"],
        "out",
    ),
    (
        "videojobs wait --sandbox --time-scale 30 --dest videos/ vozo:v-q1-d20 colossyan:c-at_finished 2>/dev/null",
        [
            "wait",
            "--sandbox",
            "--time-scale",
            "30",
            "--dest",
            "videos/",
            "vozo:v-q1-d20",
            "colossyan:c-at_finished",
        ],
        "out",
    ),
    (
        "videojobs download --sandbox -o videos/ colossyan:c-at_finished 2>/dev/null     # the same answer",
        ["download", "--sandbox", "-o", "videos/", "colossyan:c-at_finished"],
        "out",
    ),
    (
        "videojobs status --sandbox Vozo:task-1 duomy:abc",
        ["status", "--sandbox", "Vozo:task-1", "duomy:abc"],
        "err",
    ),
    (
        "videojobs wait --sandbox --timeout 0 vozo:x",
        ["wait", "--sandbox", "--timeout", "0", "vozo:x"],
        "err",
    ),
]


def _run(argv: list[str], show: str, cwd: str) -> tuple[str, int]:
    result = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=300, check=False, cwd=cwd)
    text = {"out": result.stdout, "err": result.stderr, "both": result.stderr + result.stdout}[show]
    if show == "err":
        text = _abridge(text)
    return text.rstrip("\n"), result.returncode


def _abridge(text: str, keep: int = 8) -> str:
    lines = text.splitlines()
    if len(lines) <= keep:
        return text
    return "\n".join([*lines[: keep // 2], f"… ({len(lines) - keep} more lines)", *lines[-keep // 2 :]])


def _live_frame(columns: int = 100, rows: int = 80) -> str:
    import pexpect
    import pyte

    child = pexpect.spawn(
        sys.executable,
        ["-m", "videojobs", "demo"],  # as make demo runs it: its default speed, its own temporary folder
        dimensions=(rows, columns),
        env={"TERM": "xterm-256color", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        timeout=300,
    )
    data = child.read()
    child.close()
    if child.exitstatus != 0:
        raise SystemExit(f"videojobs demo exited {child.exitstatus}: it did not go as designed")
    screen = pyte.Screen(columns, rows)
    pyte.ByteStream(screen).feed(data)
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def section() -> str:
    parts = ["```console"]
    for shown, argv, streams in RUNS:
        with tempfile.TemporaryDirectory(prefix="videojobs-readme-") as cwd:
            text, code = _run(argv, streams, cwd)
        parts.append(f"$ {shown}")
        if text:
            parts.append(text)
        parts.append("$ echo $?")
        parts.append(str(code))
    parts.append("```")
    parts.append("")
    parts.append("`videojobs demo`, as `make demo` runs it, on a terminal of 100 columns: results above, the live")
    parts.append("view's last frame below (a real run in a pseudo-terminal, rendered). It exits 0: every job ended")
    parts.append("as the demo designed it, failures included.")
    parts.append("")
    parts.append("```")
    parts.append(_live_frame())
    parts.append("```")
    return "\n".join(parts)


def main() -> int:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(rf"{re.escape(MARK)}.*?(?=\n## |\n<!-- /terminal -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {MARK} marker")
    text = pattern.sub(lambda _m: f"{MARK}\n{section()}\n", text, count=1)
    README.write_text(text, encoding="utf-8")
    print("updated the terminal section of README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
