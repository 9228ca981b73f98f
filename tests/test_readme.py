"""Every README example runs as printed, offline.

Each ```python block of README.md runs in a fresh interpreter, in a temp folder, with no vendor
key in its environment and no socket at all: a ``sitecustomize`` on its ``PYTHONPATH`` installs
an audit hook (PEP 578) that refuses every ``socket.connect`` and name lookup, so an example can
only reach the embedded sandbox (which needs no socket). It must exit 0 and print each line that
a ``# -> `` comment in it promises. Every ``$ videojobs ... --sandbox`` line of a ```console
block runs the same way, through bash; it must exit with the code the README prints after it
(``$ echo $?``), else 0, and print every line the README shows under it (dates and times aside;
live timings and "…" elisions are not compared). A block that cannot run offline says so just
above it (``<!-- not run: why -->``); the Celery module's block must be ``examples/renders.py``
itself (``make celery-demo`` runs that file). Every example starts at once, in parallel, and the
tests read their results: about 6 s on an idle 2-core machine (about 5 s of CPU in all).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RENDERS = ROOT / "examples" / "renders.py"
TIMEOUT = 60.0  # seconds for one example (each takes about one; a loaded machine gets slack)
MAX_NOT_RUN = 2  # blocks marked <!-- not run: ... --> (few, and each says why)

GUARD = """
import socket, sys

def _no_network(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto"):
        raise OSError(f"README examples run offline: {event}{args[1:]!r} refused")

sys.addaudithook(_no_network)
"""


class Block(NamedTuple):
    lang: str
    code: str
    line: int  # where the block starts in README.md
    marker: str  # the HTML comment just above it, or ""


def blocks(text: str) -> Iterator[Block]:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = re.match(r"^```(\w*)\s*$", lines[i])
        if not match:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i] != "```":
            i += 1
        above = next((line for line in reversed(lines[:start]) if line.strip()), "")
        marker = above.strip() if above.strip().startswith("<!--") else ""
        yield Block(match.group(1), "\n".join(lines[start + 1 : i]) + "\n", start + 1, marker)
        i += 1


class Command(NamedTuple):
    line: str
    exit_code: int
    shown: tuple[str, ...]  # the output lines the README prints under it


TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?(\+00:00)?")


def comparable(line: str) -> str:
    """A printed line without what changes from run to run: dates and times."""
    return TIME.sub("<time>", line.rstrip())


def sandbox_commands(block: Block) -> Iterator[Command]:
    """The ``$ videojobs ... --sandbox ...`` lines, each with the exit code printed after it."""
    lines = block.code.splitlines()
    for n, line in enumerate(lines):
        if not (line.startswith("$ videojobs ") and " --sandbox" in line):
            continue
        command = line[2:].split("   #")[0].strip()
        rest = lines[n + 1 :]
        after = [i for i, later in enumerate(rest) if later.startswith("$ ")]
        code = 0
        if after and rest[after[0]].strip() == "$ echo $?":
            code = int(rest[after[0] + 1])
        printed = rest[: after[0]] if after else rest
        # "… (7 more lines)" and live timings ("[    0.3s] ...") are not the same twice
        shown = tuple(x for x in printed if not x.startswith(("…", "[ ", "...")))
        yield Command(command, code, shown)


TEXT = README.read_text(encoding="utf-8")
ALL = list(blocks(TEXT))
PYTHON = [b for b in ALL if b.lang == "python" and not b.marker.startswith(("<!-- not run", "<!-- examples/"))]
COMMANDS = [c for b in ALL if b.lang == "console" for c in sandbox_commands(b)]


def offline_env(guard: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(
        PYTHONPATH=f"{guard}{os.pathsep}{ROOT}",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        NO_COLOR="1",
    )
    for name in ("COLUMNS", "LINES"):  # argparse wraps its usage at 80 columns, as printed
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Start every example at once, in a folder of its own; collect (exit code, output) by id."""
    guard = tmp_path_factory.mktemp("guard")
    (guard / "sitecustomize.py").write_text(GUARD)
    env = offline_env(guard)
    procs: dict[str, subprocess.Popen[str]] = {}
    for block in PYTHON:
        folder = tmp_path_factory.mktemp("python")
        (folder / "example.py").write_text(block.code)
        procs[f"python@{block.line}"] = subprocess.Popen(
            [sys.executable, "example.py"], cwd=folder, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
    for command in COMMANDS:
        folder = tmp_path_factory.mktemp("console")
        procs[command.line] = subprocess.Popen(
            ["bash", "-c", command.line], cwd=folder, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
    done = {}
    try:
        for key, proc in procs.items():
            out, _ = proc.communicate(timeout=TIMEOUT)
            done[key] = (proc.returncode, out)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done


def test_the_readme_has_examples_to_run() -> None:
    assert len(PYTHON) >= 3, [b.line for b in PYTHON]
    assert len(COMMANDS) >= 8, COMMANDS
    not_run = [b for b in ALL if b.marker.startswith("<!-- not run")]
    assert len(not_run) <= MAX_NOT_RUN, [(b.line, b.marker) for b in not_run]
    assert all(re.match(r"<!-- not run: \S.* -->$", b.marker) for b in not_run)  # each says why


@pytest.mark.parametrize("block", PYTHON, ids=[f"line{b.line}" for b in PYTHON])
def test_python_example_runs_offline(block: Block, results: dict[str, tuple[int, str]]) -> None:
    code, out = results[f"python@{block.line}"]
    assert code == 0, f"README.md line {block.line} exited {code}:\n{out}"
    assert "Traceback" not in out, out
    assert out.strip(), "an example shows what it did"
    printed = [line.rstrip() for line in out.splitlines()]
    for expected in re.findall(r"# -> (.+)$", block.code, flags=re.MULTILINE):  # what the README says it prints
        assert expected.rstrip() in printed, f"README.md line {block.line} says it prints {expected!r}:\n{out}"


@pytest.mark.parametrize("command", COMMANDS, ids=[c.line for c in COMMANDS])
def test_sandbox_command_exits_as_printed(command: Command, results: dict[str, tuple[int, str]]) -> None:
    code, out = results[command.line]
    assert code == command.exit_code, f"$ {command.line}\nexited {code}, README says {command.exit_code}:\n{out}"
    assert "Traceback" not in out, out
    printed = {comparable(line) for line in out.splitlines()}
    missing = [line for line in command.shown if comparable(line) not in printed]
    assert not missing, f"$ {command.line}\nthe README prints lines it did not:\n{missing}\nit printed:\n{out}"


def test_celery_block_is_the_example_module() -> None:
    (block,) = [b for b in ALL if b.marker == "<!-- examples/renders.py -->"]
    source = RENDERS.read_text(encoding="utf-8")
    assert block.lang == "python"
    assert source.endswith(block.code), "README's Celery block differs from examples/renders.py"
    assert "track(" in block.code


def test_importing_the_celery_example_tracks_nothing(tmp_path: Path) -> None:
    """A worker imports the module: that must start no job and touch no Redis (none listens here)."""
    pytest.importorskip("celery")
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    env = {**offline_env(guard), "REDIS_URL": "redis://127.0.0.1:9/0"}
    probe = "import renders; print(sorted(t for t in renders.app.tasks if not t.startswith('celery.')))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=RENDERS.parent, env=env, text=True, capture_output=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    assert "renders.video_ready" in done.stdout
    assert "videojobs.poll" in done.stdout


def test_the_readmes_error_tree_names_every_public_error() -> None:
    import videojobs
    import videojobs.celery

    text = README.read_text(encoding="utf-8")
    tree = text[text.index("\nVideoJobsError\n") : text.index("```", text.index("\nVideoJobsError\n"))]
    errors = {
        name
        for module in (videojobs, videojobs.celery)
        for name in module.__all__
        if isinstance(cls := getattr(module, name), type) and issubclass(cls, videojobs.VideoJobsError)
    }
    celery = {name for name in errors if name in videojobs.celery.__all__}
    assert celery  # the oracle is not empty
    for name in sorted(errors - celery):
        assert re.search(rf"\b{name}\b", tree), f"{name} is not in the README's error tree"
    for name in sorted(celery):
        assert f"`{name}`" in text, f"{name} (videojobs.celery) is not in the README"
