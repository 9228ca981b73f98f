"""`make update-spec`: a vendor changes its page; one command takes it through the pipeline."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from scripts import specs

ROOT = specs.ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what update-spec reads and writes, so the real tree is never touched."""
    for name in ("specs", "scripts", "generated"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _run(project: Path, vendor: str, page: Path, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, str(project / "scripts" / "update_spec.py"), vendor, str(page)],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=300,
    )


def test_vozo_adds_a_status_and_a_field(project: Path, tmp_path: Path) -> None:
    page = (ROOT / "specs/vozo/source.md").read_text(encoding="utf-8")
    page = page.replace("            - failed\n", "            - failed\n            - cancelled\n")
    page = page.replace(
        "    Error:\n",
        "        thumbnail_url:\n          description: A still of the video.\n          type: string\n    Error:\n",
    )
    new_page = tmp_path / "vozo-new.md"
    new_page.write_text(page, encoding="utf-8")

    result = _run(project, "vozo", new_page)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "+ field GET /v1/video_generation/{task_id} 200.thumbnail_url" in result.stdout
    assert "+ enum value GET /v1/video_generation/{task_id} 200.status = 'cancelled'" in result.stdout
    assert "'cancelled'" in result.stderr
    assert "does not map" in result.stderr
    # the pipeline ran: page copied, spec re-extracted, client regenerated with the new field and value
    assert (project / "specs/vozo/source.md").read_text(encoding="utf-8") == page
    assert "- cancelled" in (project / "specs/vozo/openapi.yaml").read_text(encoding="utf-8")
    model = (project / "generated/vozo_client/models/vozo_job_status.py").read_text(encoding="utf-8")
    assert "thumbnail_url" in model
    assert 'CANCELLED = "cancelled"' in (project / "generated/vozo_client/models/vozo_job_state.py").read_text()


def test_an_unchanged_page_changes_nothing(project: Path) -> None:
    result = _run(project, "colossyan", ROOT / "specs/colossyan/source.md")
    assert result.returncode == 0, result.stderr
    assert "nothing (servers, security, operations, fields, their types and enum values are the same)" in result.stdout
    assert "Every edit" not in result.stdout  # the same document: no edit to list
    assert "every documented status value is mapped" in result.stdout


def test_a_description_only_change_is_shown_not_called_nothing(project: Path, tmp_path: Path) -> None:
    """A page whose only change was a field's description (or a parameter's, an example) was
    reported as "nothing" changed: the summary reads what the overlay depends on, and said nothing
    of the rest. Every edit to the document is listed after it."""
    said = '"description":"The current status of the video generation job."'
    page = (ROOT / "specs/colossyan/source.md").read_text(encoding="utf-8")
    assert said in page
    new_page = tmp_path / "colossyan-new.md"
    new_page.write_text(page.replace(said, '"description":"Where the job stands."'), encoding="utf-8")
    result = _run(project, "colossyan", new_page)
    assert result.returncode == 0, result.stderr
    assert "nothing the overlay reads" in result.stdout
    where = '/paths/"/video-generation-jobs/{videoGenerationJobId}"/get/responses/200/content/"application/json"'
    assert f'replace {where}/schema/properties/status/description = "Where the job stands."' in result.stdout


def test_an_unquoted_date_in_a_new_example_is_its_text(project: Path, tmp_path: Path) -> None:
    """A vendor's new ``example: 2024-01-01`` was a date to YAML's loader, which no JSON writer
    takes: update-spec stopped with a TypeError and rolled back. It is the text, as in JSON."""
    page = (ROOT / "specs/vozo/source.md").read_text(encoding="utf-8")
    field = "        serverTs:\n"
    assert page.count(field) == 1
    new_page = tmp_path / "vozo-new.md"
    indent = " " * (len(field) - len(field.lstrip()) + 2)
    new_page.write_text(page.replace(field, f"{field}{indent}example: 2024-01-01\n"), encoding="utf-8")
    result = _run(project, "vozo", new_page)
    assert result.returncode == 0, result.stderr
    assert '/serverTs/example = "2024-01-01"' in result.stdout


def test_a_patch_that_no_longer_applies_fails_loudly(project: Path, tmp_path: Path) -> None:
    page = (ROOT / "specs/duomi/source.md").read_text(encoding="utf-8").replace("API文档/VEO", "Docs/VEO")
    new_page = tmp_path / "duomi-new.md"
    new_page.write_text(page, encoding="utf-8")
    result = _run(project, "duomi", new_page)
    assert result.returncode == 1
    assert "patch operation #1" in result.stderr
    assert "no longer applies" in result.stderr
    # all or nothing: the page and its spec were already written when the patch failed, and a
    # run after the patches were mended then reported no change to the API
    assert _tree(project / "specs/duomi") == _tree(ROOT / "specs/duomi")
    assert _tree(project / "generated/duomi_client") == _tree(ROOT / "generated/duomi_client")
    assert "nothing changed (specs/duomi and generated/duomi_client are as they were)" in result.stdout


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_a_page_that_is_not_json_leaves_the_spec_as_it_was(project: Path, tmp_path: Path) -> None:
    """A page whose JSON block does not parse: the extraction had already deleted openapi.json."""
    page = (ROOT / "specs/colossyan/source.md").read_text(encoding="utf-8").replace('"openapi"', '"openapi" :: ', 1)
    new_page = tmp_path / "colossyan-new.md"
    new_page.write_text(page, encoding="utf-8")
    result = _run(project, "colossyan", new_page)
    assert result.returncode == 1
    assert "colossyan:" in result.stderr
    assert _tree(project / "specs/colossyan") == _tree(ROOT / "specs/colossyan")


def test_a_page_is_kept_byte_for_byte(project: Path, tmp_path: Path) -> None:
    """As published, line endings too (a CRLF page was saved with LF)."""
    page = (ROOT / "specs/colossyan/source.md").read_bytes().replace(b"\n", b"\r\n")
    new_page = tmp_path / "colossyan-crlf.md"
    new_page.write_bytes(page)
    result = _run(project, "colossyan", new_page)
    assert result.returncode == 0, result.stderr
    assert (project / "specs/colossyan/source.md").read_bytes() == page


def test_a_page_without_openapi_is_a_clear_error(project: Path, tmp_path: Path) -> None:
    new_page = tmp_path / "empty.md"
    new_page.write_text("# Moved\n\nThis page moved.\n", encoding="utf-8")
    result = _run(project, "jimmyai", new_page)
    assert result.returncode == 1
    assert "jimmyai: the page holds no OpenAPI block" in result.stderr


def test_a_handwritten_spec_shows_the_page_diff_and_asks_for_a_hand_edit(project: Path, tmp_path: Path) -> None:
    """ezmodel's openapi.yaml is written by hand from its page. A changed page was saved, its
    diff shown, and the run passed (exit 0); a second run then showed "(no change)" and passed
    too, openapi.yaml never edited. Now nothing is saved until the spec is edited to match."""
    page = (ROOT / "specs/ezmodel/source.md").read_text(encoding="utf-8")
    page = page.replace(
        "| `failed` | Task failed |", "| `failed` | Task failed |\n| `cancelled` | Task cancelled by the user |"
    )
    new_page = tmp_path / "ezmodel-new.md"
    new_page.write_text(page, encoding="utf-8")
    for _ in range(2):  # the second run shows the same diff: the page was not saved
        result = _run(project, "ezmodel", new_page)
        assert result.returncode == 3, result.stdout + result.stderr
        assert "publishes no OpenAPI; openapi.yaml is written by hand" in result.stdout
        assert "+| `cancelled` | Task cancelled by the user |" in result.stdout
        assert "nothing saved. Edit specs/ezmodel/openapi.yaml to match, then run again with --spec-edited" in (
            result.stderr
        )
        assert _tree(project / "specs/ezmodel") == _tree(ROOT / "specs/ezmodel")
        assert _tree(project / "generated/ezmodel_client") == _tree(ROOT / "generated/ezmodel_client")

    spec = project / "specs/ezmodel/openapi.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("        - failed\n", "        - failed\n        - cancelled\n"),
        encoding="utf-8",
    )
    edited = subprocess.run(
        [sys.executable, str(project / "scripts/update_spec.py"), "ezmodel", str(new_page), "--spec-edited"],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=300,
    )
    assert edited.returncode == 1, edited.stdout + edited.stderr  # on to the pipeline: the new value is unmapped
    assert "openapi.yaml is written by hand, and edited to match the new page" in edited.stdout
    assert "+ enum value GET /v1/videos/{task_id} 200.status = 'cancelled'" in edited.stdout
    assert "now documents status value(s) 'cancelled' that the overlay does not map" in edited.stderr
    assert (project / "specs/ezmodel/source.md").read_text(encoding="utf-8") == page


def test_a_sixth_vendors_failed_first_run_leaves_no_package_behind(project: Path) -> None:
    """Its spec folder but no adapter yet: the update fails naming what to write, and the client
    package the run generated is removed (it was left while the run said nothing changed)."""
    shutil.copytree(project / "specs/vozo", project / "specs/newv")
    config = project / "specs/newv/config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("vozo_client", "newv_client"), encoding="utf-8")
    result = _run(project, "newv", project / "specs/newv/source.md")
    assert result.returncode == 1
    assert "overlay/videojobs/vendors/newv.py" in result.stderr
    assert not (project / "generated/newv_client").exists()


def _vozo_page(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    page = (ROOT / "specs/vozo/source.md").read_text(encoding="utf-8")
    for old, new in edits:
        assert old in page
        page = page.replace(old, new)
    path = tmp_path / "vozo-new.md"
    path.write_text(page, encoding="utf-8")
    return path


def test_a_renamed_status_field_is_refused_with_its_new_value(project: Path, tmp_path: Path) -> None:
    """status renamed task_status, with a new value: the check read only fields named status or
    state, found none, and said every documented value was mapped (exit 0)."""
    page = _vozo_page(
        tmp_path,
        ("        - status\n", "        - task_status\n"),
        ("        status:\n", "        task_status:\n"),
        ("            - failed\n", "            - failed\n            - expired\n"),
    )
    result = _run(project, "vozo", page)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "vozo's job status is now at 'task_status' of the status answer, not 'status' (renamed or moved?)" in (
        result.stderr
    )
    again = _run(project, "vozo", page)  # the update was kept: a second run passed (its check read names)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "now documents status value(s) 'expired' that the overlay does not map" in again.stderr


def test_a_renamed_field_the_adapter_reads_is_refused(project: Path, tmp_path: Path) -> None:
    """video_url renamed output_url: every status value still mapped, and update-spec said "commit";
    every vozo status call after it failed (the adapter reads ``video_url``). The adapter now reads
    the sandbox's answer for each documented state from the regenerated client, and cannot."""
    page = _vozo_page(tmp_path, ("        video_url:\n", "        output_url:\n"))
    result = _run(project, "vozo", page)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "- field GET /v1/video_generation/{task_id} 200.video_url" in result.stdout
    assert "the overlay's adapter cannot read vozo's new answers as it did" in result.stderr
    for word in ("pending", "processing", "done", "failed"):  # each state, and what failed
        assert f"'{word}': MalformedResponseError" in result.stderr
    assert "has no attribute 'video_url'" in result.stderr
    assert "commit" not in result.stdout
    assert "output_url" in (project / "generated/vozo_client/models/vozo_job_status.py").read_text(encoding="utf-8")


def test_a_retyped_field_the_adapter_reads_is_refused(project: Path, tmp_path: Path) -> None:
    """duomi's progress documented as a string: the sandbox, the vendor's stand-in, sends a string
    (it sent a number whatever the type, and the update passed), which the adapter reads as a problem."""
    page = (ROOT / "specs/duomi/source.md").read_text(encoding="utf-8")
    old = "                  progress:\n                    type: integer\n"
    assert page.count(old) == 1
    path = tmp_path / "duomi-new.md"
    path.write_text(page.replace(old, old.replace("integer", "string")), encoding="utf-8")
    result = _run(project, "duomi", path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "~ field GET /v1/videos/tasks/{task_id} 200.progress type integer -> string" in result.stdout
    assert "'running': read with problems: progress: expected a number, got a string" in result.stderr


def test_a_new_optional_field_is_read_as_before(project: Path, tmp_path: Path) -> None:
    """The check above passes an update the adapter reads as before (each state, no problem)."""
    page = _vozo_page(
        tmp_path,
        ("        video_url:\n", "        thumbnail_url:\n          type: string\n        video_url:\n"),
    )
    result = _run(project, "vozo", page)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the overlay's adapter read the sandbox's answer for 4 state(s)" in result.stdout
    assert "its adapter reads the new answer of each" in result.stdout


def test_a_renamed_path_parameter_is_no_moved_status(project: Path, tmp_path: Path) -> None:
    """{videoGenerationJobId} renamed {jobId}: the status was keyed by the operation's text, and
    its location "gone"; the adapter passes the id by position, so nothing needs doing."""
    page = (ROOT / "specs/colossyan/source.md").read_text(encoding="utf-8")
    page = page.replace('{videoGenerationJobId}"', '{jobId}"').replace(
        '"name":"videoGenerationJobId"', '"name":"jobId"'
    )
    new_page = tmp_path / "colossyan-new.md"
    new_page.write_text(page, encoding="utf-8")
    result = _run(project, "colossyan", new_page)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every documented status value is mapped" in result.stdout


def test_a_document_the_sandbox_cannot_serve_changes_nothing(project: Path, tmp_path: Path) -> None:
    """A second GET with a task id passed every step (exit 0) and left a sandbox that would not
    start, for every vendor: the sandbox reads the new document before the run ends."""
    second = (
        "  /v1/video_generation/{task_id}/result:\n    get:\n      operationId: getResult\n      parameters:\n"
        "        - {name: task_id, in: path, schema: {type: string}, required: true}\n      responses:\n"
        "        '200':\n          description: ok\n          content:\n            application/json:\n"
        "              schema:\n                $ref: '#/components/schemas/JobStatus'\n"
    )
    page = _vozo_page(tmp_path, ("components:\n", second + "components:\n"))
    result = _run(project, "vozo", page)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "vozo: the sandbox cannot serve the new document: vozo: expected one GET path with a task id, found 2" in (
        result.stderr
    )
    assert _tree(project / "specs/vozo") == _tree(ROOT / "specs/vozo")
    assert _tree(project / "generated/vozo_client") == _tree(ROOT / "generated/vozo_client")


def _venv_with_a_generator(tmp_path: Path, script: str) -> str:
    """This interpreter's virtualenv again, but with ``script`` (sh) as its openapi-python-client:
    generate.py runs the tools beside ``sys.executable``. Returns the new venv's python."""
    base = Path(sys.prefix)
    if not (base / "pyvenv.cfg").is_file():
        pytest.skip("needs the tests to run in a virtualenv (make install)")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    shutil.copyfile(base / "pyvenv.cfg", venv / "pyvenv.cfg")
    (venv / "lib").symlink_to(base / "lib")
    (venv / "bin/python").symlink_to(sys.executable)
    (venv / "bin/ruff").symlink_to(base / "bin/ruff")
    tool = venv / "bin/openapi-python-client"
    tool.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    tool.chmod(0o755)
    return str(venv / "bin/python")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_run_stopped_by_a_signal_changes_nothing(project: Path, tmp_path: Path, signum: int) -> None:
    """SIGTERM (a CI runner's cancel) or SIGHUP (a closed terminal) while the client was being
    generated ended the run with the page and its spec saved and the client not regenerated (only
    Python exceptions rolled back): the next run then reported nothing changed. The generator
    here signals the run itself, so the signal lands at that very point, every time."""
    python = _venv_with_a_generator(
        tmp_path, f'kill -{signal.Signals(signum).name.removeprefix("SIG")} "$PPID"\nexit 1\n'
    )
    page = _vozo_page(tmp_path, ("            - failed\n", "            - failed\n            - cancelled\n"))
    result = _run(project, "vozo", page, python)
    assert result.returncode == 128 + signum, result.stdout + result.stderr
    assert f"vozo: stopped by {signal.Signals(signum).name}; nothing changed" in result.stderr
    assert "vozo: source.md <- " in result.stdout  # the page had been saved when the signal came
    assert _tree(project / "specs/vozo") == _tree(ROOT / "specs/vozo")
    assert _tree(project / "generated/vozo_client") == _tree(ROOT / "generated/vozo_client")
    assert sorted(p.name for p in (project / "generated").iterdir()) == sorted(
        p.name for p in (ROOT / "generated").iterdir() if p.name != "__pycache__"
    )


def test_a_signal_is_held_back_even_when_another_thread_takes_it() -> None:
    """With a thread running that does not block SIGTERM (a test process's servers), the kernel
    gave it the signal, and its handler ran in the main thread inside the held section: the
    swap test failed now and then, as pytest-randomly's order left such threads behind."""
    from scripts.generate import signals_held

    done = threading.Event()
    other = threading.Thread(target=done.wait, daemon=True)
    other.start()
    events: list[str] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: events.append("handled"))
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # bytecodes, at each of which a pending handler would run
                time.sleep(0)
            events.append("held section over")
    finally:
        signal.signal(signal.SIGTERM, previous)
        done.set()
    assert events == ["held section over", "handled"]


def test_a_signal_during_the_client_swap_finds_a_whole_client(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The swap was rmtree then move: a SIGTERM between them left generated/vozo_client missing
    (and the rollback's own rmtree then copytree had the same gap). Here a SIGTERM arrives right
    after each call that touches the package folder: the handler must find the old client or
    the new one, whole, and the stop must still come."""
    from scripts import generate

    class Stop(BaseException):
        pass

    target = project / "generated/vozo_client"
    (target / "stale.py").write_text("", encoding="utf-8")  # the old tree, told from the new one
    seen: list[set[str]] = []

    def handler(signum: int, frame: object) -> None:
        seen.append({p.name for p in target.iterdir()} if target.is_dir() else set())
        raise Stop

    def signalling(real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            out = real(*args, **kwargs)
            if not seen and any(Path(str(a)) == target for a in args):
                os.kill(os.getpid(), signal.SIGTERM)
            return out

        return call

    for module, name in ((shutil, "rmtree"), (shutil, "move"), (os, "rename"), (os, "replace")):
        monkeypatch.setattr(module, name, signalling(getattr(module, name)))
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with pytest.raises(Stop):
            generate.generate_one("vozo", project / "generated")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(seen) == 1
    assert {"client.py", "models", "openapi.json"} <= seen[0], seen
    assert "stale.py" not in seen[0]  # the swap was done when the signal was let through
    assert [p.name for p in (project / "generated").iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (
            ("  - url: https://api.vozo.ai\n", "  - url: http://api.vozo.ai\n"),
            "vozo: the first server 'http://api.vozo.ai' is not an absolute https:// URL",
        ),
        (("servers:\n  - url: https://api.vozo.ai\n", ""), "vozo: the document names no server"),
    ],
)
def test_a_first_server_that_is_not_https_is_refused(
    project: Path, tmp_path: Path, edit: tuple[str, str], words: str
) -> None:
    """A page whose server moved to http:// passed (the overlay's default base URL: the API key
    would go there in plaintext); one with no server failed with the sandbox's raw 'servers'."""
    result = _run(project, "vozo", _vozo_page(tmp_path, edit))
    assert result.returncode == 1, result.stdout + result.stderr
    assert words in result.stderr
    assert _tree(project / "specs/vozo") == _tree(ROOT / "specs/vozo")
    assert _tree(project / "generated/vozo_client") == _tree(ROOT / "generated/vozo_client")


def test_a_symlinked_page_or_client_is_refused_and_nothing_outside_is_written(project: Path, tmp_path: Path) -> None:
    """specs/vozo/source.md linked to a file outside the tree was written through (and not
    restored on failure); a linked generated/vozo_client made the swap and the rollback raise
    (a bare traceback). Each is refused, naming the link, before anything is written."""
    page = _vozo_page(tmp_path, ("            - failed\n", "            - failed\n            - cancelled\n"))
    outside = tmp_path / "outside.md"
    outside.write_bytes(b"not the vendor's page\n")
    source = project / "specs/vozo/source.md"
    source.unlink()
    source.symlink_to(outside)
    result = _run(project, "vozo", page)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"vozo: {source} is a symbolic link (to {outside})" in result.stderr
    assert outside.read_bytes() == b"not the vendor's page\n"
    assert source.is_symlink()

    source.unlink()
    shutil.copyfile(ROOT / "specs/vozo/source.md", source)
    client = project / "generated/vozo_client"
    elsewhere = tmp_path / "vozo_client"
    client.rename(elsewhere)
    client.symlink_to(elsewhere)
    result = _run(project, "vozo", page)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"vozo: {client} is a symbolic link (to {elsewhere})" in result.stderr
    assert "Traceback" not in result.stderr
    assert _tree(project / "specs/vozo") == _tree(ROOT / "specs/vozo")
    assert _tree(elsewhere) == _tree(ROOT / "generated/vozo_client")


def test_a_file_is_replaced_whole_never_written_through(tmp_path: Path) -> None:
    from scripts.specs import write_file

    target, outside = tmp_path / "source.md", tmp_path / "outside.md"
    outside.write_bytes(b"outside\n")
    target.symlink_to(outside)
    write_file(target, b"page\r\n")
    assert not target.is_symlink()
    assert target.read_bytes() == b"page\r\n"
    assert outside.read_bytes() == b"outside\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside.md", "source.md"]


def test_a_file_replaced_keeps_its_mode(tmp_path: Path) -> None:
    """mkstemp's 0600 went with the replace: a spec another user or CI stage could not read."""
    from scripts.specs import write_file

    target = tmp_path / "source.md"
    target.write_bytes(b"old\n")
    target.chmod(0o644)
    write_file(target, b"new\n")
    assert target.stat().st_mode & 0o777 == 0o644
    fresh = tmp_path / "openapi.yaml"
    write_file(fresh, b"x: 1\n")
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_client_copy_left_by_a_killed_run_is_named_and_cleared(tmp_path: Path) -> None:
    """A stop between the move beside the client and the swap (or a SIGKILL) left
    ``generated/.vozo_client-*``: check-generated called it a package without a spec, and
    regenerating did not clear it."""
    from scripts.generate import replace_tree, strays

    generated = tmp_path / "generated"
    (generated / "vozo_client").mkdir(parents=True)
    left = generated / ".vozo_client-abc123"
    (left / "new").mkdir(parents=True)
    assert strays(generated, ["vozo"]) == [
        "generated/.vozo_client-abc123 is what an interrupted run of make generate left: delete it (the next run does)"
    ]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "client.py").write_text("", encoding="utf-8")
    replace_tree(fresh, generated / "vozo_client")
    assert sorted(p.name for p in generated.iterdir()) == ["vozo_client"]
    assert (generated / "vozo_client" / "client.py").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_passes_a_page_path_with_a_space_as_one_argument(tmp_path: Path) -> None:
    """`make update-spec PAGE="~/saved pages/vozo.md"` split the path in two (PAGE unquoted)."""
    argv = tmp_path / "argv"
    argv.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n', encoding="utf-8")
    argv.chmod(0o755)
    stamp = tmp_path / "stamp"  # newer than pyproject.toml: `make install` is not run
    stamp.touch()
    page = tmp_path / "saved pages" / "vozo page.md"
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "update-spec", "VENDOR=vozo", f"PAGE={page}", f"PY={argv}", f"STAMP={stamp}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["vozo", str(page)]


def test_a_page_path_may_start_with_a_tilde(project: Path, tmp_path: Path) -> None:
    """make quotes PAGE, so its shell no longer expands ~: the script does."""
    shutil.copyfile(ROOT / "specs/colossyan/source.md", tmp_path / "colossyan.md")
    result = subprocess.run(
        [sys.executable, str(project / "scripts/update_spec.py"), "colossyan", "~/colossyan.md"],
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"colossyan: source.md <- {tmp_path / 'colossyan.md'}" in result.stdout


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "too-large"])
def test_a_page_that_is_not_a_saved_file_is_refused(project: Path, tmp_path: Path, kind: str) -> None:
    """A FIFO as the page was waited on for ever, /dev/zero read until memory ran out."""
    page = tmp_path / "page.md"
    if kind == "fifo":
        os.mkfifo(page)
    elif kind == "device":
        page = Path(os.devnull)
    elif kind == "folder":
        page.mkdir()
    else:
        with page.open("wb") as sparse:  # a hole: no disk written
            sparse.truncate(10 * 1024 * 1024 + 1)
    result = subprocess.run(
        [sys.executable, str(project / "scripts/update_spec.py"), "vozo", str(page)],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=60,  # the FIFO: a run that waits on it fails here rather than hanging the suite
    )
    assert result.returncode == 1, result.stdout + result.stderr
    words = "is larger than 10,485,760 bytes" if kind == "too-large" else "is not a regular file"
    assert f"error: vozo: the page {page} {words}" in result.stderr
    assert _tree(project / "specs/vozo") == _tree(ROOT / "specs/vozo")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("a new row", "lists 'cancelled' that the document does not have"),
        ("a state renamed", "no longer lists 'completed'"),
        ("the table rewritten", "no longer lists"),
    ],
)
def test_a_state_the_pages_table_changes_is_refused_though_the_document_gives_them_in_prose(
    project: Path, tmp_path: Path, change: str, said: str
) -> None:
    # JimmyAI's document has status as a bare string; a patch writes the page's table into an enum.
    # A change to that table changes no field of the document: it must not pass as "no change".
    page = (ROOT / "specs/jimmyai/source.md").read_text(encoding="utf-8")
    row = "| `failed`                           |"
    assert row in page
    if change == "a new row":
        end = page.index("\n", page.index(row)) + 1
        page = page[:end] + "| `cancelled` | **已取消**。 | `0` | 用户取消。 |\n" + page[end:]
    elif change == "a state renamed":
        page = page.replace("| `completed`   ", "| `succeeded`   ")
    else:  # every state upper-cased: the table is found by its header row, not by its states
        for word in ("queued", "pending", "submitted", "processing", "completed", "failed"):
            page = page.replace(f"| `{word}`", f"| `{word.upper()}`").replace(f"/ `{word}`", f"/ `{word.upper()}`")
    assert page != (ROOT / "specs/jimmyai/source.md").read_text(encoding="utf-8")
    new_page = tmp_path / "jimmyai-new.md"
    new_page.write_text(page, encoding="utf-8")

    result = _run(project, "jimmyai", new_page)

    assert result.returncode == 1, result.stdout + result.stderr
    assert said in result.stderr
    assert "specs/jimmyai/patches.json" in result.stderr
    assert "overlay/videojobs/vendors/jimmyai.py" in result.stderr
    # nothing saved: a run again compares the same two pages and refuses again
    assert (project / "specs/jimmyai/source.md").read_bytes() == (ROOT / "specs/jimmyai/source.md").read_bytes()


def test_the_pages_state_table_is_found_only_where_it_lists_the_documents_states() -> None:
    jimmy = (ROOT / "specs/jimmyai/source.md").read_text(encoding="utf-8")
    words = ["queued", "pending", "submitted", "processing", "completed", "failed"]
    table = specs.page_state_table(jimmy, words)
    assert table is not None
    assert table.words == set(words)
    assert specs.page_state_table(jimmy, [], table) == table  # by its header, whatever it lists
    # of two tables headed alike (an error codes' table first), the one sharing the last one's states
    codes = "| 值 | 说明 |\n|---|---|\n| `E001` | bad |\n\n"
    states = "| 值 | 说明 |\n|---|---|\n| `done` | ok |\n| `failed` | no |\n"
    last = specs.page_state_table(codes + states, ["done", "failed"])
    assert last is not None
    assert last.words == {"done", "failed"}
    again = specs.page_state_table(codes + states, [], last)
    assert again is not None
    assert again.words == {"done", "failed"}
    # a table in a code block, or one naming few of the states, is not the states' table
    fenced = "```\n| `done` |\n|---|\n| `failed` |\n```\n| a | b |\n|---|---|\n| `x` | `failed` |\n"
    assert specs.page_state_table(fenced, ["done", "failed", "running"]) is None
    heading = "Either | or\n---\n`done` | a\n`failed` | b\n"  # a setext heading holding a pipe: no table
    assert specs.page_state_table(heading, ["done", "failed"]) is None
    # a GFM table without outer pipes; a note in the first column is not a state
    bare = "state | meaning\n--- | ---\n`done` (see `error_message`) | ok\n`failed` | no\n"
    found = specs.page_state_table(bare, ["done", "failed"])
    assert found is not None
    assert found.words == {"done", "failed"}
    assert found.header == "state | meaning"
    for vendor in ("vozo", "duomi", "colossyan"):  # their documents have the enum; their pages no such table
        page = (ROOT / f"specs/{vendor}/source.md").read_text(encoding="utf-8")
        (own,) = specs.status_enums(specs.load_patched(vendor)).values()
        assert specs.page_state_table(page, sorted(own)) is None, vendor


def test_a_document_the_generator_cannot_take_is_refused_with_its_error_not_its_traceback(
    project: Path, tmp_path: Path
) -> None:
    page = (ROOT / "specs/vozo/source.md").read_text(encoding="utf-8")
    page = page.replace(
        "            - failed\n", "            - failed\n            - FAILED\n"
    )  # one Python name twice
    new_page = tmp_path / "vozo-new.md"
    new_page.write_text(page, encoding="utf-8")

    result = _run(project, "vozo", new_page)

    assert result.returncode == 1
    assert "Duplicate key FAILED" in result.stderr
    assert "traceback left out" in result.stderr
    assert "\u2502" not in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) < 10, result.stderr
    assert "nothing changed (specs/vozo and generated/vozo_client are as they were)" in result.stdout


def test_the_generators_failure_is_shown_as_its_exception_or_its_last_lines() -> None:
    from scripts.generate import TOOL_FAILURE_LINES, tool_failure

    plain = (
        "Warning: x\nTraceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n    f()\nKeyError: 'y'\n"
    )
    assert tool_failure(plain) == "Warning: x\nKeyError: 'y'\n(the generator's traceback left out)"
    pydantic = (  # a message whose last lines are indented
        'Traceback (most recent call last):\n  File "a.py", line 1, in <module>\n    f()\n    ^^^\n'
        "pydantic_core.ValidationError: 1 validation error for Config\nclass_overrides\n  Input should be a dict"
    )
    assert tool_failure(pydantic).splitlines() == [
        "pydantic_core.ValidationError: 1 validation error for Config",
        "class_overrides",
        "  Input should be a dict",
        "(the generator's traceback left out)",
    ]
    long = "\n".join(f"warning {n}" for n in range(100))
    shown = tool_failure(long).splitlines()
    assert shown[0] == f"({100 - TOOL_FAILURE_LINES} lines left out)"
    assert shown[-1] == "warning 99"
    assert len(shown) == TOOL_FAILURE_LINES + 1
