"""Generate the typed clients from the vendored specs.

    python scripts/generate.py                  # every vendor, into generated/
    python scripts/generate.py --vendor vozo    # one vendor
    python scripts/generate.py --check          # regenerate into a temp dir; fail on drift

For each vendor: apply ``patches.json`` in memory, validate, run the pinned
openapi-python-client with ``--meta none``, the vendor's ``config.yaml`` and the
project's templates (``scripts/templates``) into an empty temporary folder, format
with the pinned ruff in isolated mode (so the project's own ruff settings cannot
change the output), add the spec (``openapi.json``) and the PEP 561 marker
(``py.typed``), then replace ``generated/<slug>_client`` whole. The generator's
``--overwrite`` leaves stale files behind, so nothing is generated in place.
"""

from __future__ import annotations

import argparse
import difflib
import filecmp
import functools
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import yaml

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import specs

GENERATED = specs.ROOT / "generated"
TEMPLATES = specs.ROOT / "scripts" / "templates"
BIN = Path(sys.executable).parent
SPEC_FILE = "openapi.json"
"""The patched spec, written into each generated package (shipped as package data)."""
PY_TYPED = ("py.typed", "# Marker file for PEP 561")
"""PEP 561's marker, so that type checkers read an installed client's annotations. The generator
writes it (with this text) only with ``--meta``; with ``--meta none`` this script writes it."""
UPSTREAM_INCLUDED = ("endpoint_module.py.jinja", "client.py.jinja")


def _tool(name: str) -> str:
    """The pinned tool installed beside this interpreter (never another one on PATH)."""
    path = BIN / name
    if not path.exists():
        raise SystemExit(f"error: {name} is not installed in {BIN}; run `make install`")
    return str(path)


def package_name(vendor: str) -> str:
    return f"{vendor}_client"


GENERATED_EXTRAS: frozenset[str] = frozenset({"__pycache__"})
"""What may sit in generated/ beside the vendors' packages: the interpreter's own caches."""


TOOL_FAILURE_LINES: Final = 40  # what a terminal shows of the generator's output; its warnings fit


def tool_failure(output: str) -> str:
    """What the generator said when it failed, for a person: of a Python traceback (a document it
    could not take, such as an enum with ``done`` and ``DONE``), what follows its last frame, the
    exception and its message; of anything longer, its last TOOL_FAILURE_LINES lines."""
    lines = output.rstrip().splitlines()
    starts = [at for at, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if starts:  # Python's own or rich's boxed one: the exception is what follows its last frame
        end, in_frame = starts[-1] + 1, False
        for at in range(end, len(lines)):
            line = lines[at]
            if line.startswith("  File ") or (in_frame and line.startswith("    ")):
                end, in_frame = at + 1, True  # a frame, its source line and its carets
            elif line.startswith("\u2570"):  # the box's foot
                end, in_frame = at + 1, False
            else:
                in_frame = False
        if lines[end:]:
            lines = [*lines[: starts[0]], *lines[end:], "(the generator's traceback left out)"]
    if len(lines) > TOOL_FAILURE_LINES:
        lines = [f"({len(lines) - TOOL_FAILURE_LINES} lines left out)", *lines[-TOOL_FAILURE_LINES:]]
    return "\n".join(lines)


def generate_one(vendor: str, out_root: Path, *, specs_root: Path = specs.SPECS) -> Path:
    """Generate ``<out_root>/<slug>_client`` from ``<specs_root>/<slug>`` from scratch; return its path."""
    doc = specs.load_patched(vendor, specs_root)
    specs.validate(vendor, doc)
    specs.check_required(vendor, doc)
    config = yaml.safe_load((specs.vendor_dir(vendor, specs_root) / "config.yaml").read_text(encoding="utf-8")) or {}
    if config.get("package_name_override") != package_name(vendor):
        raise specs.SpecError(vendor, f"config.yaml must set package_name_override: {package_name(vendor)}")
    ruff = _tool("ruff")
    config["post_hooks"] = [
        f"{ruff} check --isolated --no-cache --fix-only --extend-select=I --quiet .",
        f"{ruff} format --isolated --no-cache --quiet .",
    ]
    target = out_root / package_name(vendor)
    with tempfile.TemporaryDirectory(prefix=f"gen-{vendor}-") as tmp:
        work = Path(tmp)
        (work / "openapi.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
        (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
        out = work / "out"
        templates = _templates(work / "templates")
        cmd = [
            _tool("openapi-python-client"),
            "generate",
            "--path", str(work / "openapi.json"),
            "--config", str(work / "config.yaml"),
            "--custom-template-path", str(templates),
            "--meta", "none",
            "--fail-on-warning",
            "--output-path", str(out),
        ]  # fmt: skip
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out.is_dir():
            raise specs.SpecError(vendor, f"openapi-python-client failed:\n{tool_failure(proc.stdout + proc.stderr)}")
        for cache in out.rglob("__pycache__"):
            shutil.rmtree(cache)
        # The spec travels with its client: the overlay reads the server from it and the
        # sandbox renders the vendor from it (paths, enums, examples), both at run time.
        (out / SPEC_FILE).write_text(
            json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
        )
        name, text = PY_TYPED
        (out / name).write_text(text, encoding="utf-8")
        _check_ascii_paths(vendor, out)
        replace_tree(out, target)
    return target


HELD_SIGNALS: Final = frozenset(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)
"""What stops a run: Ctrl-C, a CI runner's cancel or ``kill`` (SIGTERM), a closed terminal or SSH
session (SIGHUP). Held back while a folder is swapped, and delivered once it is in place."""


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold back :data:`HELD_SIGNALS`: each one that comes is noted, and raised again on leaving,
    to the handler that was there before. Not a signal mask: ``pthread_sigmask`` holds a signal
    back from the calling thread only, and the kernel gives a process's signal to any thread that
    does not block it (a test process's server threads), whose flag then ran the Python handler
    in the main thread between the two renames all the same. Python runs every handler in the
    main thread, so one of ours there holds it back whichever thread took it. Outside the main
    thread no handler can be set: nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = {held: signal.signal(held, lambda signum, frame: came.append(signum)) for held in HELD_SIGNALS}
    try:
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)
        for signum in dict.fromkeys(came):  # each once, in the order they came
            signal.raise_signal(signum)


def replace_tree(source: Path, target: Path) -> None:
    """Put the folder ``source`` at ``target``, in place of what is there, consuming ``source``.

    The new tree is first moved beside the target (onto its file system: a copy when ``source``
    is in the temp folder), then two renames swap them with the stopping signals held: a stop
    finds the old tree or the new one, never none (``rmtree`` then ``move`` left
    ``generated/<slug>_client`` missing to a SIGTERM between them) nor half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for left in target.parent.glob(f".{target.name}-*"):  # a run killed mid-swap (SIGKILL) left it
        shutil.rmtree(left, ignore_errors=True)
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with signals_held():  # the move too: a stop then skipped the cleanup and left a client copy here
            shutil.move(str(source), str(aside / "new"))
            had = target.exists() or target.is_symlink()
            if had:
                os.rename(target, aside / "old")
            try:
                os.rename(aside / "new", target)
            except OSError:
                if had:
                    os.rename(aside / "old", target)
                raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _templates(folder: Path) -> Path:
    """The project's templates, beside ``upstream/`` copies of the generator's own that they include.

    The project's templates never fork the generator's: ``endpoint_module.py.jinja`` and
    ``client.py.jinja`` include the pinned generator's template of the same name and append
    to it, so a generator upgrade needs no re-copying (``make check-generated`` shows its effect).
    """
    import openapi_python_client

    upstream = Path(openapi_python_client.__file__).parent / "templates"
    shutil.copytree(TEMPLATES, folder)
    (folder / "upstream").mkdir()
    for name in UPSTREAM_INCLUDED:
        shutil.copyfile(upstream / name, folder / "upstream" / name)
    return folder


def _check_ascii_paths(vendor: str, root: Path) -> None:
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if not rel.isascii():
            raise specs.SpecError(vendor, f"generated a non-ASCII module path {rel!r}: patch the tag or name")


def _files(root: Path) -> set[str]:
    """Every file and folder under ``root`` (a folder as ``name/``): an empty folder is drift too
    (the wheel takes what is there). The interpreter's ``__pycache__`` folders are not: git and
    the wheel leave them out."""
    found = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" in path.relative_to(root).parts:
            continue
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                found.add(rel + "/")
        else:
            found.add(rel)
    return found


def strays(generated: Path, vendors: list[str]) -> list[str]:
    """What sits in ``generated/`` besides the vendors' packages (a package with no spec behind
    it, a stray module): the wheel ships the folder whole, and a stray ``sitecustomize.py`` there
    would even run at every start of the interpreter."""
    known = {package_name(v) for v in vendors} | GENERATED_EXTRAS
    packages = tuple(f".{name}-" for name in known)
    return [
        f"generated/{p.name} is what an interrupted run of make generate left: delete it (the next run does)"
        if p.name.startswith(packages)
        else f"generated/{p.name} has no spec in specs/ (only <slug>_client packages belong there)"
        for p in sorted(generated.iterdir())
        if p.name not in known
    ]


EXECUTABLE_BITS: Final = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
"""The part of a file's mode that git keeps (a blob is 100644 or 100755) and a wheel's RECORD
installs: a generated file made executable by hand is drift. The rest of the mode follows the
umask of whoever checked out or regenerated, so it is not compared."""


@functools.cache
def _modes_kept() -> bool:
    """Whether this checkout keeps files' executable bits: not where git itself says it cannot
    (``core.fileMode=false``: WSL's /mnt/c, shared folders, exFAT, where every file reads 0777
    and check-generated could never pass)."""
    try:
        said = subprocess.run(
            ["git", "-C", str(specs.ROOT), "config", "--get", "core.fileMode"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):  # no git: the files' own modes are all there is
        return True
    return said.lower() != "false"


def diff_trees(committed: Path, fresh: Path, label: str) -> list[str]:
    """Drift lines from the committed tree to a fresh one (empty when identical).

    Bytes decide: a file whose bytes differ is drift, always. Its diff is made from the bytes
    split on ``\n`` alone (Python's ``splitlines`` also splits on ``\r``, ``\x0b``, ``\x1c``,
    ``\x85``, ``\u2028``... and hid a ``\x1c`` that turned a comment and the next line into one
    line for the interpreter), with invisible characters shown escaped; when even that shows
    nothing, a line says so. An executable bit that differs is drift too."""
    lines: list[str] = []
    old, new = _files(committed), _files(fresh)
    for rel in sorted(old | new):
        a, b = committed / rel, fresh / rel
        where = f"{label}/{rel}"
        if rel not in new:
            lines.append(f"stale file, not generated any more: {where}")
        elif rel not in old:
            lines.append(f"generated but not committed: {where}")
        elif rel.endswith("/") or a.is_symlink() or b.is_symlink():
            lines.append(f"differs (not a regular file): {where}")
        else:
            if not filecmp.cmp(a, b, shallow=False):
                lines += _diff_bytes(a.read_bytes(), b.read_bytes(), where)
            was, now = a.stat().st_mode & EXECUTABLE_BITS, b.stat().st_mode & EXECUTABLE_BITS
            if bool(was) != bool(now) and _modes_kept():
                lines.append(
                    f"mode differs: {where} is {'' if was else 'not '}executable (committed), "
                    f"{'' if now else 'not '}executable (regenerated)"
                )
    return lines


def _diff_bytes(old: bytes, new: bytes, where: str) -> list[str]:
    """Diff lines for two files whose bytes differ: never empty."""
    try:
        old_lines, new_lines = _lines(old.decode("utf-8")), _lines(new.decode("utf-8"))
    except UnicodeDecodeError:
        return [f"differs (not as text): {where}"]
    diff = list(
        difflib.unified_diff(old_lines, new_lines, f"{where} (committed)", f"{where} (regenerated)", lineterm="")
    )
    return diff or [f"differs in line endings or invisible characters (bytes differ, text does not): {where}"]


def _lines(text: str) -> list[str]:
    """Lines split on ``\n`` only, each shown with its invisible characters escaped (``\r``,
    ``\x1c``, ``\u2028``), and a last line with no ``\n`` marked as such."""
    parts = text.split("\n")
    last = parts.pop()  # after the final \n: empty when the file ends with one
    shown = [_visible(line) for line in parts]
    if last:
        shown.append(_visible(last) + "  (no newline at end of file)")
    return shown


def _visible(line: str) -> str:
    return "".join(ch if ch.isprintable() or ch == "\t" else ascii(ch)[1:-1] for ch in line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vendor", action="append", help="only this vendor (repeatable)")
    parser.add_argument("--check", action="store_true", help="fail, printing the diff, if generated/ would change")
    args = parser.parse_args(argv)
    chosen = args.vendor or specs.vendors()
    try:
        if not args.check:
            for vendor in chosen:
                path = generate_one(vendor, GENERATED)
                print(f"{vendor}: generated {path.relative_to(specs.ROOT)}")
            return 0
        drift: list[str] = []
        with tempfile.TemporaryDirectory(prefix="gen-check-") as tmp:
            for vendor in chosen:
                fresh = generate_one(vendor, Path(tmp))
                committed = GENERATED / package_name(vendor)
                if not committed.is_dir():
                    drift.append(f"{vendor}: generated/{package_name(vendor)} is missing")
                    continue
                drift += diff_trees(committed, fresh, f"generated/{package_name(vendor)}")
        drift += strays(GENERATED, specs.vendors())
    except specs.SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if drift:
        print("\n".join(drift))
        print("\ngenerated/ differs from what the specs generate: run `make generate` and commit.", file=sys.stderr)
        return 1
    print(f"generated/ matches the specs ({', '.join(chosen)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
