"""A vendor changed its page: take the new page through the whole pipeline.

    python scripts/update_spec.py VENDOR PAGE      (make update-spec VENDOR=vozo PAGE=~/vozo.md)

1. copies PAGE to specs/VENDOR/source.md;
2. re-extracts openapi.yaml/.json from it (a hand-written spec is left for a person to edit);
3. applies patches.json: an operation that no longer applies is an error naming it;
4. validates the patched document;
5. regenerates generated/VENDOR_client;
6. prints what changed in the vendor's API: operations, fields, enum values added and removed;
7. finds the job's status in the status answer as the sandbox does (by its words): a document
   where it finds none, or whose shape it cannot read, is refused;
8. fails (exit 1) when the status moved (a renamed field), or documents a value the overlay's
   adapter does not map (on any ``status``/``state`` field, and where 7 found it);
9. checks that the sandbox serves the new document;
10. fails (exit 1) when the overlay's adapter, with the regenerated client, cannot read the
    sandbox's answer for a documented state from the new document, or reads it with problems (a
    field it reads renamed, removed or retyped).

A vendor that publishes no OpenAPI (ezmodel: its openapi.yaml is written by hand from its page)
is stopped at step 1 when its page changed: the page's diff is shown, nothing is saved, and the
run exits 3. Edit openapi.yaml to match, then run again with --spec-edited (SPEC_EDITED=1 for
make): the page is saved and the rest of the pipeline runs.

Exit status: 0 done; 1 an error, or a refusal in 8; 2 a usage error; 3 a hand-written spec to
edit (above); 128 + N stopped by signal N.

A step that fails (a page that does not parse, a patch that no longer applies, the generator),
or a stop (Ctrl-C, SIGTERM, SIGHUP: exit 128 + the signal's number), leaves specs/VENDOR and
generated/VENDOR_client as they were; the refusals in 8 and 10 keep the update.
Nothing is committed: review with `git diff specs generated`, then commit both together.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import specs
from scripts.extract_spec import extract_to_disk
from scripts.generate import GENERATED, SPEC_FILE, generate_one, package_name, replace_tree, signals_held


def unmapped_states(vendor: str, doc: dict[str, object], found: Iterable[str] = ()) -> list[str]:
    """Status values the spec documents that the overlay's adapter has no entry for: on every
    ``status``/``state`` field of a success answer, and ``found`` (the status GET's state words,
    as the sandbox finds them, whatever the field's name)."""
    from videojobs import ConfigurationError
    from videojobs._registry import adapter_class

    try:
        table = adapter_class(vendor).states
    except ConfigurationError as exc:  # a sixth vendor's spec, before its adapter and registry line
        raise specs.SpecError(
            vendor,
            f"{exc.message}: write overlay/videojobs/vendors/{vendor}.py and its registry line (see _registry.py)",
        ) from exc
    return sorted((specs.status_values(doc) | set(found)) - set(table))  # type: ignore[arg-type]


STOP_SIGNALS: Final = tuple(s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)
"""Signals that stop a run the way Ctrl-C (SIGINT, Python's KeyboardInterrupt) does, through the
rollback: a CI runner's cancel or ``kill`` (SIGTERM), a closed terminal or SSH session (SIGHUP).
Their default action ended the process at once, the page saved and its client not regenerated,
and the next run then reported no change."""


class Stopped(BaseException):
    """The run was stopped by a signal (a BaseException, as KeyboardInterrupt: no step's
    ``except Exception`` takes it for a failure of its own)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """While inside, :data:`STOP_SIGNALS` raise :class:`Stopped` (the handlers are put back after)."""

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def update(vendor: str, page: Path, *, spec_edited: bool = False) -> int:
    """The pipeline, all or nothing: a step that fails, or a stop (Ctrl-C, SIGTERM, SIGHUP),
    leaves specs/ and generated/ as they were (a page saved and its client not regenerated would
    make a later run report no change). The refusal of an unmapped status value keeps the
    update, for the adapter to be brought level."""
    folder = specs.vendor_dir(vendor)
    client = GENERATED / package_name(vendor)
    _refuse_links(vendor, folder, client)
    with _stopped_by_signals(), tempfile.TemporaryDirectory(prefix=f"update-{vendor}-") as tmp:
        kept = Path(tmp)
        shutil.copytree(folder, kept / "spec", symlinks=True)
        if client.is_dir():
            shutil.copytree(client, kept / "client", symlinks=True)
        try:
            return _update(vendor, page, folder, spec_edited=spec_edited)
        except BaseException:
            with signals_held():  # a second stop waits for the rollback to finish
                replace_tree(kept / "spec", folder)
                if (kept / "client").is_dir():
                    replace_tree(kept / "client", client)
                else:  # a sixth vendor's first run: its package did not exist
                    shutil.rmtree(client, ignore_errors=True)
                print(f"{vendor}: nothing changed (specs/{vendor} and generated/{client.name} are as they were)")
            raise


HAND_EDIT_NEEDED: Final = 3
"""Exit status of a run stopped because a hand-written spec's page changed (see the help): not
1, so that a script can tell "edit openapi.yaml" from an error."""


def _refuse_links(vendor: str, folder: Path, client: Path) -> None:
    """The vendor's folder, what is in it and its client package are real files and folders: a
    symlinked source.md pointing outside the tree was written through (and not restored), and a
    symlinked package made the swap and the rollback fail with a traceback."""
    for path in (folder.parent, folder, *sorted(folder.iterdir()), client.parent, client):
        if path.is_symlink():
            raise specs.SpecError(
                vendor,
                f"{path} is a symbolic link (to {os.readlink(path)}): update-spec writes there, and restores it "
                "on failure, only as a real file or folder. Replace the link with what it points to.",
            )


MAX_PAGE_BYTES: Final = 10 * 1024 * 1024
"""The largest page taken, 10 MiB: every vendor's saved page is under 11 KB (ezmodel's, the
largest, 10,860 bytes); past this it is not a saved documentation page (``/dev/zero`` was read
until the process ran out of memory)."""


def read_page(vendor: str, page: Path) -> str:
    """The saved page's text: a regular file (a FIFO was waited on for ever, ``/dev/zero`` read
    without bound) of at most :data:`MAX_PAGE_BYTES`, in UTF-8."""
    try:
        fd = os.open(page, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO's open waits for a writer
    except OSError as exc:
        raise specs.SpecError(vendor, f"cannot read the page {page}: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise specs.SpecError(
                vendor, f"the page {page} is not a regular file (a folder, a pipe or a device): save the page to a file"
            )
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(MAX_PAGE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_PAGE_BYTES:
        raise specs.SpecError(
            vendor, f"the page {page} is larger than {MAX_PAGE_BYTES:,} bytes: not a saved documentation page"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise specs.SpecError(vendor, f"the page {page} is not UTF-8: {exc}") from exc


def _update(vendor: str, page: Path, folder: Path, *, spec_edited: bool) -> int:
    new_page = read_page(vendor, page)
    before = _last_generated(vendor)
    old_page = (folder / "source.md").read_bytes().decode("utf-8")
    handwritten = specs.is_handwritten(vendor)
    if spec_edited and not handwritten:
        raise specs.SpecError(vendor, "--spec-edited is for a vendor whose openapi.yaml is written by hand (ezmodel)")
    if handwritten and new_page != old_page and not spec_edited:
        # Not saved: the page's diff is the only record of what to edit, and a run after a saved
        # page showed "(no change)" and passed with openapi.yaml never edited.
        changed = list(
            difflib.unified_diff(
                old_page.splitlines(), new_page.splitlines(), "source.md (old)", "source.md (new)", lineterm=""
            )
        )
        print(f"{vendor}: publishes no OpenAPI; openapi.yaml is written by hand. How the page changed:")
        print("\n".join(changed) if changed else "  (line endings or invisible characters only)")
        print(
            f"\n{vendor}: nothing saved. Edit specs/{vendor}/openapi.yaml to match, then run again with "
            f"--spec-edited (make update-spec VENDOR={vendor} PAGE=... SPEC_EDITED=1).",
            file=sys.stderr,
        )
        return HAND_EDIT_NEEDED
    specs.write_file(folder / "source.md", new_page.encode("utf-8"))  # as published: its line endings too
    print(f"{vendor}: source.md <- {page}")

    if handwritten:
        edited = "" if new_page == old_page else ", and edited to match the new page (--spec-edited)"
        print(f"{vendor}: publishes no OpenAPI; openapi.yaml is written by hand{edited}")
    else:
        path = extract_to_disk(vendor)
        assert path is not None
        print(f"{vendor}: extracted {path.relative_to(specs.ROOT)}")

    after = specs.load_patched(vendor)  # raises, naming the operation, when a patch no longer applies
    specs.validate(vendor, after)
    try:
        specs.summarize(after)  # walked before anything is generated: a tree of $refs is refused here
    except ValueError as exc:
        raise specs.SpecError(vendor, f"the patched document cannot be read: {exc}") from exc
    print(f"{vendor}: patched document is valid OpenAPI")
    out = generate_one(vendor, GENERATED)
    print(f"{vendor}: regenerated {out.relative_to(specs.ROOT)}")

    changes = specs.describe_changes(before, after)
    edits = specs.document_edits(before, after)  # a description or a parameter is a change too: said, not hidden
    print(f"\nWhat changed in {vendor}'s API:")
    print(
        "\n".join(f"  {line}" for line in changes)
        if changes
        else "  nothing (servers, security, operations, fields, their types and enum values are the same)"
        if not edits
        else "  nothing the overlay reads (servers, security, operations, fields, their types and enum values)"
    )
    if edits:
        print(f"Every edit to {vendor}'s document, as JSON Patch operations:")
        print("\n".join(f"  {line}" for line in edits))

    where, words = state_enum(vendor, after)  # refused here: everything restored
    try:
        was, was_words = state_enum(vendor, before)
    except specs.SpecError:  # the last document had none (a sixth vendor's first run)
        was, was_words = None, ()
    if was is not None and where != was:  # renamed or moved: the adapter reads it where it was
        print(
            f"\nERROR: {vendor}'s job status is now at {'.'.join(where)!r} of the status answer, "
            f"not {'.'.join(was)!r} (renamed or moved?).\nThe adapter in overlay/videojobs/vendors/{vendor}.py "
            "reads it there: update it (and the sandbox), then run the tests.",
            file=sys.stderr,
        )
        return 1
    check_state_table(vendor, old_page, new_page, was_words or words, words, handwritten=handwritten)
    missing = unmapped_states(vendor, after, words)
    if missing:
        print(
            f"\nERROR: {vendor} now documents status value(s) {', '.join(map(repr, missing))} that the overlay does not map.\n"
            f"Add them to the `states` table in overlay/videojobs/vendors/{vendor}.py (and the sandbox), then run the tests.",
            file=sys.stderr,
        )
        return 1
    check_sandbox(vendor, out / "openapi.json")
    unread = unreadable_states(vendor, words)
    if unread:
        print(
            f"\nERROR: the overlay's adapter cannot read {vendor}'s new answers as it did (a field it reads renamed, "
            "removed or retyped?). The sandbox's answer, from the new document, for each state:\n"
            + "\n".join(f"  {line}" for line in unread)
            + f"\nUpdate overlay/videojobs/vendors/{vendor}.py (and the sandbox), then run the tests.",
            file=sys.stderr,
        )
        return 1
    print(
        f"\n{vendor}: every documented status value is mapped by the overlay, and its adapter reads the new answer "
        "of each. Review `git diff specs generated` and commit."
    )
    return 0


def check_state_table(
    vendor: str, old_page: str, new_page: str, was: Iterable[str], words: Iterable[str], *, handwritten: bool
) -> None:
    """Refuse (everything restored) a page whose table of states no longer says what the patched
    document does: the document of a vendor that gives its states in prose (JimmyAI) has them from
    a patch, which a new row, a renamed state or a table rewritten does not change. The table is
    the one the last page had, found by its header row (or by the states it lists); its states
    must be the document's. Refused, nothing is saved, so a run again refuses again until the
    patch (or the hand-written document) and the adapter say what the page says."""
    last = specs.page_state_table(old_page, list(was))
    table = specs.page_state_table(new_page, list(words), last)
    where = f"specs/{vendor}/openapi.yaml" if handwritten else f"the enum specs/{vendor}/patches.json writes"
    if table is None:
        if last is not None:
            raise specs.SpecError(
                vendor,
                f"the page's table of states (headed {last.header!r}, listing {', '.join(map(repr, sorted(last.words)))}) is "
                f"gone or lists under half of the document's states: compare its states with {where} by hand",
            )
        return
    added, dropped = sorted(table.words - set(words)), sorted(set(words) - table.words)
    if added or dropped:
        said = [f"lists {', '.join(map(repr, added))} that the document does not have"] if added else []
        said += [f"no longer lists {', '.join(map(repr, dropped))}"] if dropped else []
        raise specs.SpecError(
            vendor,
            f"the page's table of states (headed {table.header!r}) {' and '.join(said)}. Make {where} say what the "
            f"table says, and the `states` table in overlay/videojobs/vendors/{vendor}.py (and the sandbox), then "
            "run again (nothing was saved)",
        )


_READ_EACH_STATE: Final = """
import json, sys
sys.path.insert(0, sys.argv[1])  # the regenerated clients, before any installed copy
import videojobs
from videojobs.sandbox import Sandbox

vendor, words, said = sys.argv[2], sys.argv[3:], []
with videojobs.Client(**Sandbox().client_kwargs()) as client:
    for word in words:
        try:
            status = client.status(f"{vendor}:update-spec-at_{word}")
        except videojobs.VideoJobsError as exc:  # with its cause: the adapter's own error names the field
            cause = f" ({type(exc.__cause__).__name__}: {exc.__cause__})" if exc.__cause__ is not None else ""
            said.append(f"{word!r}: {type(exc).__name__}: {exc}{cause}")
            continue
        if status.problems:
            said.append(f"{word!r}: read with problems: {'; '.join(status.problems)}")
print(json.dumps(said))
"""


def unreadable_states(vendor: str, words: Iterable[str]) -> list[str]:
    """What the overlay's adapter made of the sandbox's answer for each of the status answer's
    documented states, rendered from the new document and read through the regenerated client:
    a line for each state it could not read, or read with problems (none: all read cleanly). In
    a fresh interpreter, which imports the regenerated client (this one may hold the old).
    A field the adapter reads, renamed or retyped, passed every other step (its status values all
    mapped) and failed every status call to the vendor after the update was committed."""
    import json

    ids = [word for word in words if "-" not in word]  # a sandbox task id's tokens are split at "-"
    try:
        run = subprocess.run(
            [sys.executable, "-c", _READ_EACH_STATE, str(GENERATED), vendor, *ids],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        said = json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 and run.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise specs.SpecError(vendor, f"the adapter's reading of the new answers could not be checked: {exc}") from exc
    if not isinstance(said, list):
        tail = (run.stderr.strip().splitlines() or ["(nothing said)"])[-1]
        raise specs.SpecError(vendor, f"the adapter's reading of the new answers could not be checked: {tail}")
    print(f"{vendor}: the overlay's adapter read the sandbox's answer for {len(ids)} state(s)")
    return [str(line) for line in said]


def _last_generated(vendor: str) -> dict[str, object]:
    """The document the vendor's client was last generated from (what the API was): the spec on
    disk may be newer, as a hand-written one edited before this run (--spec-edited) is, and then
    showed no change. The spec on disk when there is no client yet (a sixth vendor's first run)."""
    import json

    shipped = GENERATED / package_name(vendor) / SPEC_FILE
    try:
        doc = json.loads(shipped.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return specs.load_patched(vendor)
    return doc if isinstance(doc, dict) else specs.load_patched(vendor)


def state_enum(vendor: str, doc: dict[str, object]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Where the job's status is in the status answer, and its words, found as the sandbox finds
    them (by its words, not its field's name: a ``status`` renamed ``task_status`` is found, and
    so are its new values, on this run and every run after). A document with no such place, or
    the sandbox cannot read the shape of, is refused (a step that fails restores everything)."""
    from videojobs.sandbox import _spec

    try:
        return _spec.state_enum(vendor, doc)  # type: ignore[arg-type]
    except (_spec.SpecError, LookupError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise specs.SpecError(vendor, f"the sandbox cannot serve the new document: {exc}") from exc


def check_sandbox(vendor: str, document: Path) -> None:
    """The sandbox serves the vendor from this document (a step that fails leaves everything as
    it was): a second GET with a task id, or a state enum under a ``oneOf``, passed every other
    step and left a sandbox that would not start, for every vendor."""
    import json

    from videojobs.sandbox import _spec

    try:
        _spec.read(vendor, json.loads(document.read_text(encoding="utf-8")))
    except (_spec.SpecError, LookupError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise specs.SpecError(vendor, f"the sandbox cannot serve the new document: {exc}") from exc
    print(f"{vendor}: the sandbox serves the new document")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vendor")
    parser.add_argument("page", type=Path)
    parser.add_argument(
        "--spec-edited",
        action="store_true",
        help="a hand-written spec (ezmodel) has been edited to match PAGE: save the page and carry on",
    )
    args = parser.parse_args(argv)
    try:
        # ~ expanded here: make quotes PAGE (a path with a space), so its shell does not
        return update(args.vendor, args.page.expanduser(), spec_edited=args.spec_edited)
    except specs.SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Stopped as exc:
        print(f"error: {args.vendor}: stopped by {exc}; nothing changed", file=sys.stderr)
        return 128 + exc.signum  # as a shell reports a process a signal ended
    except KeyboardInterrupt:  # rolled back as a Stopped is: said so, without a traceback
        print(f"error: {args.vendor}: stopped by Ctrl-C; nothing changed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
