"""The command line for scripts: streams, whole results, exit codes, help, durations, keys.

In-process runs (``main(argv, out, err)`` with string buffers: neither is a terminal) and real
processes in real pipes (``| head -1``, ``> file``) against the embedded sandbox or a loopback
server. The live view on a real terminal is in ``test_cli_terminal.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests import hostile
from tests.cases import EZ_COMPLETED, EZ_FAILED, VENDORS
from videojobs import Download, DownloadError, JobStatus, State, WaitTimeout
from videojobs._cli import duration, main
from videojobs._cli_output import Row, others_line, pick_rows
from videojobs._text import is_printable

FAST = ("--sandbox", "--time-scale", "400")
CLI = [sys.executable, "-m", "videojobs"]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --- streams: results on stdout, whole; the rest on stderr -------------------------------------------


def test_status_prints_one_whole_line_per_job_in_a_pipe() -> None:
    code, out, err = run("status", *FAST, "ezmodel:x-at_completed", "jimmyai:y-at_submitted")
    assert code == 0  # nothing failed; a job still queued is no failure for a snapshot
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("ezmodel:x-at_completed  succeeded (completed)  ")
    assert "https://videos.sandbox.invalid/ezmodel/x-at_completed.mp4 (expires " in lines[0]
    assert lines[1] == "jimmyai:y-at_submitted  queued (submitted)  0%"
    assert "\x1b[" not in out + err  # no colour codes into a pipe
    assert err == ""


def test_status_json_lines_and_exit_code() -> None:
    code, out, _ = run("status", *FAST, "--json", "duomi:a-q0-d60", "colossyan:b-at_generating", "vozo:c-e404")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1  # one job could not be read
    assert [r["ref"] for r in rows] == ["duomi:a-q0-d60", "colossyan:b-at_generating", "vozo:c-e404"]
    assert rows[0]["state"] == "running"
    assert rows[1]["vendor_state"] == "generating"
    assert rows[1]["video_id"].startswith("video-")
    assert rows[2]["exception"]["type"] == "NotFoundError"
    assert rows[2]["exception"]["status_code"] == 404
    assert rows[2]["state"] is None  # every outcome has the same keys: nothing was read of this job
    assert set(rows[2]) == set(rows[0])


@pytest.mark.parametrize(
    ("ref", "code", "words"),
    [
        ("duomi:f-at_error", 1, "failed (error)"),
        ("colossyan:c-at_deleted", 1, "canceled (deleted)"),
        ("jimmyai:n-at_completed-novideo", 1, "WARNING: the vendor says the job succeeded but returned no video"),
        ("vozo:ok-at_done", 0, "succeeded (done)"),
    ],
)
def test_status_exit_codes_follow_the_wait_rules(ref: str, code: int, words: str) -> None:
    got, out, _ = run("status", *FAST, ref)
    assert got == code
    assert words in out


def test_wait_streams_results_on_stdout_and_progress_on_stderr() -> None:
    code, out, err = run("wait", *FAST, "ezmodel:w-ok-q2-d40", "jimmyai:v-ok-q1-d30", "colossyan:z-ok-q1-d20")
    assert code == 0
    results = out.splitlines()
    assert len(results) == 3  # one line per job and nothing else
    by_ref = {line.split("  ")[0]: line for line in results}
    assert "https://videos.sandbox.invalid/ezmodel/w-ok-q2-d40.mp4 (expires " in by_ref["ezmodel:w-ok-q2-d40"]
    assert "video id video-" in by_ref["colossyan:z-ok-q1-d20"]
    assert "ezmodel:w-ok-q2-d40  running (processing)" in err  # a plain progress line per change
    assert "succeeded" in err


ODD = {**EZ_COMPLETED, "id": "n1", "progress": 250, "created_at": "yesterday"}  # two fields it cannot read


@pytest.mark.parametrize("command", ["status", "wait"])
def test_fields_the_vendor_got_wrong_are_noted_on_stderr_and_the_result_stays_one_line(command: str) -> None:
    with hostile.hostile(hostile.answer(body=json.dumps(ODD).encode())) as url:
        code, out, err = run(
            command, "--api-key", "ezmodel=sk-cli-notes-1", "--base-url", f"ezmodel={url}", "ezmodel:n1"
        )
        _, _, quiet = run(
            command, "--quiet", "--api-key", "ezmodel=sk-cli-notes-1", "--base-url", f"ezmodel={url}", "ezmodel:n1"
        )
    assert code == 0  # the job's state was read: it succeeded
    assert len(out.splitlines()) == 1
    assert out.startswith("ezmodel:n1  succeeded (completed)  https://")
    notes = [line.split("] ", 1)[-1] for line in err.splitlines() if "  note: " in line]  # wait stamps its lines
    assert notes == [
        "ezmodel:n1  note: progress: expected 0-100, got 250; left out",
        "ezmodel:n1  note: created_at: expected a number, got a string",
    ]
    assert quiet == ""


def test_an_unpaired_surrogate_in_an_answer_becomes_u_fffd_named_in_problems_and_json_stays_utf8() -> None:
    """``"message": "a\\ud800b"``: JSON's grammar takes it, no UTF-8 writer does. Kept as sent,
    ``--json`` wrote ``\\ud800`` back: jq refused the line and every job after it was lost."""
    body = json.dumps({**EZ_FAILED, "id": "s1", "error": {"message": "a\ud800b\udfff", "code": "x"}}).encode()
    assert b"\\ud800" in body
    with hostile.hostile(hostile.answer(body=body)) as url:
        code, out, _err = run(
            "status", "--json", "--api-key", "ezmodel=sk-cli-surr-1", "--base-url", f"ezmodel={url}", "ezmodel:s1"
        )
    assert code == 1  # the job failed, as the vendor said
    out.encode("utf-8")  # strict: no lone surrogate left to write
    assert "\\ud8" not in out
    assert "\\udf" not in out
    row = json.loads(out)
    assert row["error"]["message"] == "a\ufffdb\ufffd"
    assert any("2 unpaired surrogate(s)" in problem for problem in row["problems"]), row["problems"]


def test_quiet_leaves_stderr_empty() -> None:
    code, out, err = run("wait", *FAST, "--quiet", "vozo:a-ok-d20")
    assert code == 0
    assert out.startswith("vozo:a-ok-d20  succeeded (done)  https://")
    assert err == ""


def test_wait_exit_1_on_failure_or_missing_video() -> None:
    code, out, _ = run("wait", *FAST, "vozo:a-ok-d20", "duomi:b-fail-d20")
    assert code == 1
    assert "duomi:b-fail-d20  failed (error)  content moderation rejected the prompt" in out
    code, out, err = run("wait", *FAST, "jimmyai:c-ok-d20-novideo")
    assert code == 1
    assert "WARNING: the vendor says the job succeeded but returned no video" in out
    assert "warning: jimmyai:c-ok-d20-novideo ended without a video" in err  # at once, on stderr


def test_a_timeout_exits_124_with_every_job_on_stdout() -> None:
    code, out, _ = run("wait", "--sandbox", "--json", "--timeout", "300ms", "duomi:slow-q0-d600", "vozo:quick-at_done")
    assert code == 124
    rows = {json.loads(line)["ref"]: json.loads(line) for line in out.splitlines()}
    assert rows["duomi:slow-q0-d600"]["exception"]["type"] == "WaitTimeout"
    assert rows["duomi:slow-q0-d600"]["state"] == "running"  # the last status seen, in the same shape
    assert rows["vozo:quick-at_done"]["state"] == "succeeded"
    assert rows["vozo:quick-at_done"]["exception"] is None
    assert not rows["duomi:slow-q0-d600"]["exception"]["message"].startswith("duomi:")  # the vendor said once


@pytest.mark.parametrize("command", ["status", "wait", "download"])
def test_a_bad_base_url_is_a_configuration_error_with_exit_2(command: str) -> None:
    code, out, err = run(command, "--api-key", "vozo=sk-cli-config-1", "--base-url", "vozo=ftp://x", "vozo:a")
    assert code == 2  # as the help says: usage or configuration error, before anything is sent
    assert out == ""
    assert err == "videojobs: --base-url vozo='ftp://x' is not an absolute http(s) URL\n"  # the flag, not base_urls=


def test_a_base_url_with_a_password_is_refused_by_the_cli_with_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """It was a 42-line traceback (aiohttp's ValueError), exit 1."""
    monkeypatch.setenv("DUOMI_API_KEY", "sk-cli-config-3")
    monkeypatch.setenv("DUOMI_BASE_URL", "http://user:pw-s3cret@127.0.0.1:9/")
    code, out, err = run("status", "duomi:a")
    assert (code, out) == (2, "")
    assert err.startswith("videojobs: DUOMI_BASE_URL='http://...' holds a user name or password")
    assert "s3cret" not in err
    assert len(err.splitlines()) == 1


def test_a_bad_base_url_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUOMI_API_KEY", "sk-cli-config-2")
    monkeypatch.setenv("DUOMI_BASE_URL", "duomiapi.com")  # no scheme
    code, out, err = run("status", "duomi:a")
    assert (code, out) == (2, "")
    assert "DUOMI_BASE_URL='duomiapi.com' is not an absolute http(s) URL" in err


# --- configuration errors: exit 2, every problem at once, in the command's own words ------------------


@pytest.mark.parametrize(
    ("env", "argv", "words"),
    [
        (
            {"VOZO_API_KEY": "sk-cli-trailing-1 "},
            [],
            "the API key from VOZO_API_KEY contains whitespace at position 18",
        ),
        ({}, ["--api-key", "vozo=sk-cli-trailing-2 "], "the API key from --api-key vozo=... contains whitespace"),
        ({"VOZO_API_KEY": "sk-cli-\u200bzero-width"}, [], "contains a non-ASCII character (U+200B) at position 8"),
    ],
)
def test_an_unusable_key_exits_2_and_says_where_it_came_from(
    env: dict[str, str], argv: list[str], words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for command in ("status", "wait", "download"):
        code, out, err = run(command, *argv, "vozo:a")
        assert (code, out) == (2, "")
        assert words in err
        assert "sk-cli-trailing" not in err  # never the key
        assert "zero-width" not in err
        assert "api_keys" not in err  # the library's Python argument means nothing at a shell


def test_every_missing_key_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for vendor in ("VOZO", "DUOMI", "JIMMYAI"):
        monkeypatch.delenv(f"{vendor}_API_KEY", raising=False)
    monkeypatch.setenv("EZMODEL_API_KEY", "sk-cli-present-1")
    code, out, err = run("wait", "vozo:a", "ezmodel:b", "duomi:c", "vozo:d", "jimmyai:e")
    assert (code, out) == (2, "")
    assert err == (
        "videojobs: no API key for vozo, duomi, jimmyai: set VOZO_API_KEY and DUOMI_API_KEY and JIMMYAI_API_KEY, "
        "or pass --api-key vozo=KEY --api-key duomi=KEY --api-key jimmyai=KEY\n"
    )


def test_vendor_names_are_matched_in_any_case() -> None:
    code, out, _ = run("status", *FAST, "Vozo:a-at_done", "COLOSSYAN:b-at_generating")
    assert code == 0
    assert [line.split("  ")[0] for line in out.splitlines()] == ["vozo:a-at_done", "colossyan:b-at_generating"]
    seen: list[str] = []

    def record(request: hostile.Request, conn: Any) -> None:
        seen.append(request.headers.get("authorization", ""))
        hostile.answer()(request, conn)

    with hostile.hostile(record) as url:
        code, out, _ = run("status", "--json", "--api-key", "Vozo=sk-cli-case-1", "--base-url", f"VOZO={url}", "vozo:a")
    assert code == 0
    assert seen == ["Bearer sk-cli-case-1"]  # the key and the URL given as Vozo and VOZO reached vozo


@pytest.mark.parametrize(
    ("refs", "words"),
    [
        (["vozo:ok", "duomi:", "jimmyai:x"], "videojobs: job #2 (duomi): task id is empty\n"),
        (["vozo:ok", "duomi:.."], "videojobs: job #2 (duomi): task id is '..' (it would be normalized out"),
        (["nocolon"], "videojobs: job #1: 'nocolon' is not a job reference: expected '<vendor>:<task id>'"),
    ],
)
def test_a_bad_reference_among_many_is_named_by_its_number_and_vendor(refs: list[str], words: str) -> None:
    code, out, err = run("status", *FAST, *refs)
    assert (code, out) == (2, "")
    assert err.startswith(words)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["status", *FAST, "vozzo:a"], "unknown vendor 'vozzo' in job #1; did you mean vozo? known vendors: "),
        (["status", *FAST, "jimmy:a"], "did you mean jimmyai?"),
        (["status", *FAST, "Colosyan:a"], "did you mean colossyan?"),
        (
            ["status", "--api-key", "duomy=sk-cli-near-1", "duomi:a"],
            "unknown vendor (not shown: it may be part of a key) in --api-key #1; did you mean duomi?",
        ),
        (["status", *FAST, "runway:a"], f"unknown vendor 'runway' in job #1; known vendors: {', '.join(VENDORS)}"),
    ],
)
def test_an_unknown_vendor_gets_a_did_you_mean(argv: list[str], words: str) -> None:
    code, out, err = run(*argv)
    assert (code, out) == (2, "")
    assert words in err
    assert "sk-cli-near-1" not in err


# --- the same job, the same answer: download and wait --dest ----------------------------------------


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("colossyan:same-at_finished", "colossyan returns a video id (video-"),
        ("jimmyai:same-at_completed-novideo", "succeeded without a video (no URL, no id)"),
    ],
)
def test_download_and_wait_download_give_one_answer_for_a_job_without_a_file(
    ref: str, why: str, tmp_path: Path
) -> None:
    answers = []
    for argv in (["download", "-o", str(tmp_path)], ["wait", "--dest", str(tmp_path)]):
        code, out, _ = run(argv[0], *FAST, *argv[1:], ref)
        answers.append((code, out))
        assert why in out
    assert answers[0] == answers[1]  # the same line, the same exit code
    assert answers[0][0] == 1
    assert answers[0][1].startswith(f"{ref}  error  DownloadError: ")
    assert not any(tmp_path.iterdir())


def test_a_run_again_after_a_jobs_second_video_broke_off_saves_it_and_says_so(tmp_path: Path) -> None:
    """The first video saved, the second not: a second run refused the first name and stopped
    there; the second's file was never saved, and nothing said the first one was."""
    ref = "duomi:pair-at_succeeded"
    first = tmp_path / "duomi-pair-at_succeeded.mp4"
    first.write_bytes(b"saved by the run before")
    code, out, _ = run("download", *FAST, ref, "-o", str(tmp_path))
    assert code == 1
    saved, error = out.splitlines()
    assert saved.startswith(f"{ref}  saved  {tmp_path / 'duomi-pair-at_succeeded-1.mp4'}  ")
    assert error.startswith(f"{ref}  error  DownloadError: {first} exists")
    code, out, _ = run("download", *FAST, "--json", ref, "-o", str(tmp_path))  # both there now
    row = json.loads(out)
    assert code == 1
    assert row["state"] == "succeeded"  # the job's, from the error's last_status
    assert len(row["video_urls"]) == 2
    assert row["exception"]["type"] == "DownloadError"


def test_a_file_that_exists_names_the_commands_own_flags(tmp_path: Path) -> None:
    ref = "vozo:kept-at_done"
    assert run("download", *FAST, ref, "-o", str(tmp_path))[0] == 0
    code, out, _ = run("download", *FAST, ref, "-o", str(tmp_path))
    assert code == 1
    assert out.startswith(f"{ref}  error  DownloadError: {tmp_path / 'vozo-kept-at_done.mp4'} exists")
    assert "(--overwrite replaces it)" in out
    code, out, _ = run("wait", *FAST, "--json", "--dest", str(tmp_path), ref)
    assert code == 1
    error = json.loads(out)["exception"]
    assert error["hint"] == "--overwrite replaces it"  # wait --dest has --overwrite too
    assert run("wait", *FAST, "--dest", str(tmp_path), "--overwrite", ref)[0] == 0
    for text in (out, run("download", *FAST, ref, "-o", str(tmp_path))[1]):
        assert "overwrite=True" not in text  # the library's Python words stay in Python (a note on the exception)
    assert run("download", *FAST, ref, "-o", str(tmp_path), "--overwrite")[0] == 0


@pytest.mark.parametrize("there", ["folder", "fifo"])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["", "overwrite"])
def test_a_name_no_overwrite_could_replace_is_said_without_offering_overwrite(
    there: str, overwrite: list[str], tmp_path: Path
) -> None:
    """A folder or a FIFO at the video's name: the message said "overwrite= replaces files only;
    choose another dest" (Python's words), and the hint "--overwrite replaces it", with --overwrite
    given or not. Without it, it first said the name "exists", and --overwrite then gave the other."""
    if there == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    ref = "vozo:taken-at_done"
    name = tmp_path / "vozo-taken-at_done.mp4"
    name.mkdir() if there == "folder" else os.mkfifo(name)
    code, out, _ = run("download", *FAST, ref, "-o", str(tmp_path), *overwrite)
    kind = "a folder" if there == "folder" else "a device, a FIFO or a socket"
    assert code == 1
    assert (
        out == f"{ref}  error  DownloadError: {name} is {kind}, not a file (it is kept: choose another --dest folder)\n"
    )
    assert name.is_dir() if there == "folder" else stat.S_ISFIFO(os.lstat(name).st_mode)


def test_a_failure_outranks_a_timeout() -> None:
    code, _, _ = run("wait", "--sandbox", "--timeout", "0.3", "duomi:slow-q0-d600", "vozo:bad-at_failed")
    assert code == 1


def test_repeated_refs_are_waited_for_once() -> None:
    code, out, err = run("wait", *FAST, "vozo:a-ok-d20", "vozo:a-ok-d20")
    assert code == 0
    assert len(out.splitlines()) == 1
    assert "1 repeated job(s) asked once" in err


def test_an_unreachable_vendor_is_reported_while_waiting() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens there
        code, out, err = run(
            "wait", "--api-key", "vozo=sk-cli-unreachable", "--base-url", f"vozo={url}", "--timeout", "1s", "vozo:t1"
        )  # fmt: skip
    assert code == 124
    assert "vozo: 1 poll failed: connection refused; retrying" in err
    assert out.startswith("vozo:t1  error  WaitTimeout: ")
    assert "connection refused" not in out or "Cannot connect" in out  # the reason is on stderr


# --- usage, help, version, durations ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["status"], "the following arguments are required"),
        (["status", *FAST, "vozo"], "expected '<vendor>:<task id>'"),
        (["status", *FAST, "runway:x"], "unknown vendor 'runway'"),
        (["wait", "vozo:x"], "set VOZO_API_KEY, or pass --api-key vozo=KEY"),
        (["status", "--api-key", "nope=1", "vozo:x"], "unknown vendor (not shown: it may be part of a key) in --api"),
        (["status", "--api-key", "sk-bare-secret", "vozo:x"], "a key goes to its own vendor only"),
        (["status", "--sandbox", "--time-scale", "0", "vozo:x"], "'0' is not a number from 1e-06"),
        (["wait", *FAST, "--timeout", "-5", "vozo:x"], "'-5' is not a duration > 0"),
        (["wait", *FAST, "--timeout", "0", "vozo:x"], "'0' is not a duration > 0"),
        (["wait", *FAST, "--timeout", "nan", "vozo:x"], "'nan' is not a duration > 0"),
        (["wait", *FAST, "--timeout", "5 minutes", "vozo:x"], "is not a duration (90, 90s, 30m, 1h, 1h30m)"),
        (["demo", "--timeout", "0"], "'0' is not a duration > 0"),
        (["sandbox", "--limit", "duomi=fast"], "--limit takes VENDOR=REQUESTS_PER_SECOND"),
        (["sandbox", "--port", "70000"], "'70000' is not a whole number >= 0, <= 65535"),
        (
            ["wait", *FAST, "--max-failed-polls", "99999999999999999999", "vozo:x"],
            "argument --max-failed-polls: '999999'... (20 characters) is not a whole number >= 1, <= 9007199254740992",
        ),
        # a key pasted into a number's place is quoted only by its start, as a vendor's name is
        (["wait", *FAST, "--request-timeout", "sk-live-SECRETabcdef1234", "vozo:x"], "'sk-liv'... (24 characters)"),
        (["status", "duomi:a", "--\x1b]0;pwned\x07\u202e"], "unrecognized arguments: --\\x1b]0;pwned\\x07\\u202e"),
        (["st\x1b[2Jatus"], "invalid choice: 'st\\x1b[2Jatus'"),
        # a flag that would be ignored beside the others is refused (a key under --sandbox went nowhere)
        (["status", *FAST, "--api-key", "duomi=sk-bare-secret", "vozo:x"], "--api-key cannot go with --sandbox"),
        (
            ["status", *FAST, "--base-url", "vozo=ftp://x", "vozo:x"],
            "--base-url cannot go with --sandbox: the sandbox stands in for the vendors; drop",
        ),  # no word of keys
        (["status", "--time-scale", "30", "vozo:x"], "--time-scale needs --sandbox"),
        (["wait", *FAST, "--overwrite", "vozo:x-at_done"], "--overwrite needs --dest"),
    ],
)
def test_usage_errors_exit_2_on_stderr_only(argv: list[str], words: str) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert out == ""
    assert words in err
    assert "SECRET" not in err
    assert "sk-bare-secret" not in err
    assert is_printable(err.replace("\n", ""))  # what was typed is quoted as text, never as ESC or bidi


def test_a_job_argument_that_is_not_utf8_is_a_usage_error() -> None:
    code, out, err = run("status", "--sandbox", os.fsdecode(b"vozo:ab\xff"))  # as argv holds a stray byte
    assert (code, out) == (2, "")
    assert "lone surrogate" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--api-key", "sk-proj-Abc123xyz=Def456", "ezmodel:t"],  # a key holding "=", its vendor forgotten
        ["status", "--api-key", "c2stcHJvai1BYmMxMjN4eXo==", "ezmodel:t"],  # base64, padded
        ["status", "ezmodel:t", "ezmodel=sk-proj-Abc123xyz"],  # --api-key itself forgotten
        ["status", "ezmodel=sk-proj-Abc123xyz:Def456"],  # a key holding ":"
    ],
)
def test_a_key_given_in_the_wrong_place_is_not_repeated(argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert (code, out) == (2, "")
    assert "a key" in err
    assert "Abc123" not in err
    assert "c2stcHJv" not in err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("500ms", 0.5), ("2.5", 2.5)],
)
def test_durations_read_like_kubectl(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5x", "1m1h", "-1s", "inf", "0s", "1e300", "300000h"])
def test_a_bad_duration_is_refused(text: str) -> None:
    """Past 1e9 s too, in the command's words (the library's said '... or None')."""
    with pytest.raises(argparse.ArgumentTypeError, match=r"is not a duration|is longer than any a call takes"):
        duration(text)


def test_version_and_python_dash_m() -> None:
    from importlib.metadata import version

    result = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"videojobs {version('videojobs')}"


@pytest.mark.parametrize("command", ["status", "wait", "download", "demo", "sandbox"])
def test_every_subcommand_helps_with_defaults_examples_and_exit_codes(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "examples:" in out
    assert out.count(f"videojobs {command}") >= 2  # two examples
    assert "exit codes:" in out
    assert "(default: " in out
    if command in ("status", "wait", "download"):
        assert "VOZO_API_KEY" in out  # the environment it reads
    codes = out[out.index("exit codes:") :]
    # a command that waits may time out; status and download never exit 124 (a download's --timeout is 1)
    assert ("\n  124  " in codes) == (command in ("wait", "demo"))


def test_the_demos_help_gives_the_exit_codes_it_has() -> None:
    """``demo --help`` said "Exits like wait", with wait's codes: 1 for a failed or canceled job.
    The demo exits 0 when its failures are the ones it designed (see the tests below)."""
    _, out, _ = run("demo", "--help")
    codes = out[out.index("exit codes:") :]
    assert "\n  0    every job ended as the demo designed it" in codes
    assert "\n  1    a job ended otherwise" in codes
    assert "failed, was canceled" not in codes
    assert "missing key" not in codes
    assert "Exits like wait" not in out


def test_verbose_logs_on_stderr_without_the_key() -> None:
    key = "sk-cli-VERBOSE-7"

    with hostile.hostile(hostile.echo_authorization()) as url:
        code, out, err = run("status", "-v", "--api-key", f"vozo={key}", "--base-url", f"vozo={url}", "vozo:t1")
    assert "DEBUG" in err
    assert key not in out + err
    assert code in (0, 1)


def test_the_key_reaches_its_vendor_and_no_output() -> None:
    seen: list[str] = []

    def record(request: hostile.Request, conn: Any) -> None:
        seen.append(request.headers.get("authorization", ""))
        hostile.answer()(request, conn)

    with hostile.hostile(record) as url:
        code, out, err = run("status", "--json", "--api-key", "vozo=sk-cli-1", "--base-url", f"vozo={url}", "vozo:t1")
    assert code == 0
    assert seen == ["Bearer sk-cli-1"]
    assert "sk-cli-1" not in out + err


def test_demo_runs_offline_summarizes_and_saves_the_videos(tmp_path: Path) -> None:
    code, out, err = run("demo", "--time-scale", "300", "--plain", "--dest", str(tmp_path))
    assert code == 0  # its failed, canceled and video-less jobs are the show: each ended as designed
    lines = out.splitlines()
    assert len(lines) == 12
    assert any("canceled (deleted)" in line for line in lines)
    assert any("DownloadError: task sbx12-q2-d35-novideo succeeded without a video" in line for line in lines)
    assert any("colossyan returns a video id" in line for line in lines)  # what download says for it
    words = " ".join(err.split())  # its paragraphs are wrapped at 79 columns
    assert "Every job ended as designed (7 saved their videos, 2 failed, 1 with only a video id" in words
    for vendor in ("vozo", "duomi", "ezmodel", "colossyan", "jimmyai"):
        assert any(line.startswith(f"{vendor}:") for line in lines)
    assert "12 jobs in" in err
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert len(saved) == 9  # 7 jobs with video URLs, two of them Duomi's (two URLs each); no .part left
    assert all(name.endswith(".mp4") for name in saved)
    assert f"9 videos saved in {tmp_path}" in words


# --- real processes in real pipes ------------------------------------------------------------------

WAIT = ["wait", "--sandbox", "--time-scale", "150", "vozo:p1-q2-d60", "duomi:p2-q2-d90", "jimmyai:p3-q1-d30"]
PIPED = {
    "status": (["status", *FAST, "vozo:a-at_done", "duomi:b-at_succeeded"], 0),
    "wait": (WAIT, 0),
    "demo": (["demo", "--time-scale", "300", "--dest", "{tmp}"], 0),
    "download": (["download", "--sandbox", "vozo:d1-at_done", "duomi:d2-at_succeeded", "-o", "{tmp}"], 0),
}


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "80", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("command", sorted(PIPED))
def test_every_subcommand_into_head_ends_quietly(command: str, tmp_path: Path) -> None:
    """`videojobs ... | head -1`: one line out, then a quiet end (141, as a shell reports SIGPIPE)."""
    argv = [a.replace("{tmp}", str(tmp_path / "videos")) for a in PIPED[command][0]]
    script = " ".join(f"'{a}'" for a in [*CLI, *argv]) + ' 2>err.txt | head -1; echo "${PIPESTATUS[0]}" > rc.txt'
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    err = (tmp_path / "err.txt").read_text()
    rc = int((tmp_path / "rc.txt").read_text())
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in err
    assert rc in (PIPED[command][1], 141)  # 141 when it still had lines to write


@pytest.mark.parametrize("command", sorted(PIPED))
def test_every_subcommand_into_a_file_keeps_results_whole(command: str, tmp_path: Path) -> None:
    argv, code = PIPED[command]
    argv = [a.replace("{tmp}", str(tmp_path / "videos")) for a in argv]
    with (tmp_path / "out.txt").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        result = subprocess.run([*CLI, *argv], stdout=out, stderr=err, env=_env(), timeout=120, check=False)
    assert result.returncode == code
    lines = (tmp_path / "out.txt").read_text().splitlines()
    jobs = [a for a in argv if ":" in a and not a.startswith("/")]
    files = {"download": 3}  # Duomi's job has two videos: a line per saved file
    assert len(lines) == files.get(command, len(jobs) if jobs else 12)
    for line in lines:
        assert "…" not in line
        assert "..." not in line
        ref, state = line.split("  ")[:2]
        assert ":" in ref
        assert state.split(" ")[0] in ("succeeded", "failed", "canceled", "running", "queued", "error", "saved")
    err = (tmp_path / "err.txt").read_text()
    if command == "status":
        assert err == ""
    elif command == "download":  # plain lines: each file as it starts
        assert "saving vozo-d1-at_done.mp4" in err
    else:  # plain progress lines, since stderr is no terminal
        assert re.search(r"^\[\s*\d+\.\ds\] \w+:\S+  (queued|running)", err, re.M), err[:500]


# --- the live view's rows when the terminal is short -------------------------------------------------


def _rows(*phases: str, ended: tuple[int, ...] = (), shown: tuple[int, ...] = ()) -> list[Row]:
    order = {index: n for n, index in enumerate(ended)}
    return [Row(phase, order.get(i), i in shown) for i, phase in enumerate(phases)]


def test_every_row_is_shown_when_they_fit() -> None:
    rows = _rows("succeeded", "running", "queued")
    assert pick_rows(rows, 3) == ([0, 1, 2], {})


def test_moving_jobs_come_first_and_the_rest_are_counted_by_state() -> None:
    rows = _rows("succeeded", "queued", "running", "failed", "saving", "queued", "running", ended=(0, 3))
    shown, others = pick_rows(rows, 4)
    assert shown == [2, 4, 6]  # 3 rows for the moving jobs (running, saving), in their order; 1 for the line
    assert others == {"succeeded": 1, "failed": 1, "queued": 2}
    assert others_line(others) == "+ 4 more: 1 succeeded, 1 failed, 2 queued"


def test_ended_jobs_fill_the_rows_the_running_ones_leave_latest_first() -> None:
    rows = _rows("succeeded", "failed", "running", "canceled", ended=(0, 1, 3))
    assert pick_rows(rows, 3) == ([2, 3], {"succeeded": 1, "failed": 1})  # canceled ended last
    rows = _rows("succeeded", "failed", "running", "canceled", ended=(0, 1, 3), shown=(0,))
    assert pick_rows(rows, 3) == ([0, 2], {"failed": 1, "canceled": 1})  # a row already shown stays: no jumping


def test_a_row_already_shown_keeps_its_place_among_the_moving() -> None:
    rows = _rows("running", "running", "running", "running", shown=(3,))
    assert pick_rows(rows, 3) == ([0, 3], {"running": 2})


def test_a_terminal_of_one_row_shows_only_the_count() -> None:
    assert pick_rows(_rows("running", "queued"), 1) == ([], {"running": 1, "queued": 1})


# --- the demo's verdict -----------------------------------------------------------------------------------


def _demo_results(tmp_path: Path) -> tuple[list[str], dict[str, Any], dict[str, JobStatus]]:
    from videojobs._cli import DEMO_JOBS

    refs = [f"{job.vendor}:v{i}" for i, job in enumerate(DEMO_JOBS)]
    results: dict[str, Any] = {}
    last: dict[str, JobStatus] = {}
    for ref, job in zip(refs, DEMO_JOBS, strict=True):
        vendor, _, task = ref.partition(":")
        state = {"failed": State.FAILED, "canceled": State.CANCELED}.get(job.ends, State.SUCCEEDED)
        status = JobStatus(vendor=vendor, task_id=task, state=state, video_id="vid" if job.ends == "video id" else None)
        last[ref] = status
        if job.ends == "saved":
            saved = Download(path=tmp_path / task, bytes=1, sha256="0" * 64, content_type=None, url_host="h.invalid")
            results[ref] = attrs.evolve(status, video_urls=("https://h.invalid/v",), downloads=(saved,))
        elif job.ends in ("no video", "video id"):
            results[ref] = DownloadError("nothing to fetch", vendor=vendor)
        else:
            results[ref] = status
    return refs, results, last


def test_the_demo_exits_0_when_every_job_ends_as_designed(tmp_path: Path) -> None:
    from videojobs._cli import DEMO_JOBS, demo_summary

    refs, results, last = _demo_results(tmp_path)
    words, code = demo_summary(DEMO_JOBS, refs, results, last)
    assert code == 0
    assert words[0].startswith("Every job ended as designed (7 saved their videos, 2 failed")


def test_the_demo_names_a_job_that_did_not_end_as_designed(tmp_path: Path) -> None:
    from videojobs._cli import DEMO_JOBS, demo_summary

    refs, results, last = _demo_results(tmp_path)
    results[refs[0]] = attrs.evolve(results[refs[0]], state=State.FAILED, downloads=())  # meant to succeed
    words, code = demo_summary(DEMO_JOBS, refs, results, last)
    assert code == 1
    assert words[1] == f"  {refs[0]}: designed to end saved, ended failed"
    refs, results, last = _demo_results(tmp_path)
    results[refs[5]] = WaitTimeout("did not finish within 60 s", last_status=None, vendor="ezmodel")
    assert demo_summary(DEMO_JOBS, refs, results, last)[1] == 124  # only a timeout: as wait


# --- a minimal install: the extras the command needs are named ----------------------------------------

BLOCKER = (
    "import sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None  # import fails with ImportError, find_spec answers None: as if not installed\n"
    "from videojobs._cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def _without(modules: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, modules, *argv], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_minimal_install_help_names_the_cli_extra() -> None:
    result = _without("rich,uvicorn", "--help")
    assert result.returncode == 0
    assert "pip install 'videojobs[cli]'" in result.stdout
    assert "MISSING: no rich here" in result.stdout
    assert "pip install 'videojobs[sandbox]'" in result.stdout
    assert "(installed)" in _without("", "--help").stdout


@pytest.mark.parametrize(
    ("modules", "argv", "extra"),
    [
        ("rich", ["status", "--sandbox", "vozo:a-at_done"], "videojobs[cli]"),
        ("rich", ["demo"], "videojobs[cli]"),
        ("uvicorn", ["sandbox", "--port", "0"], "videojobs[sandbox]"),
    ],
)
def test_a_missing_extra_is_a_usage_error_that_names_it(modules: str, argv: list[str], extra: str) -> None:
    result = _without(modules, *argv)
    assert result.returncode == 2  # as the help says: a usage error, not a crash
    assert result.stdout == ""
    assert f"pip install '{extra}'" in result.stderr
    assert "Traceback" not in result.stderr


# --- an interrupted run keeps what had ended ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["wait", "status"])
def test_an_interrupted_json_run_has_written_the_jobs_that_ended(command: str, tmp_path: Path) -> None:
    jobs = ["vozo:done-at_done", "duomi:slow-q0-d600", "ezmodel:late-q0-d600"]
    argv = [*CLI, command, "--sandbox", "--json", *jobs]
    if command == "status":  # the slow vendor answers after 5 s (the sandbox's "slow" fault): Ctrl-C first
        argv[-2] = "duomi:slow-q0-d600-eslow"
    out = tmp_path / "out.jsonl"
    with out.open("w") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE, env=_env())
        try:
            for _ in range(600):  # until the first result is written (bounded: 60 s)
                if out.read_text().endswith("\n"):
                    break
                try:
                    proc.wait(0.1)
                except subprocess.TimeoutExpired:
                    continue
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 130
    assert b"videojobs: interrupted" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]  # whole lines only
    assert rows[0]["ref"] == "vozo:done-at_done"
    assert rows[0]["state"] == "succeeded"


def test_a_sandbox_that_cannot_start_exits_1_saying_so() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = run("sandbox", "--port", str(taken.getsockname()[1]))
    assert code == 1  # uvicorn's own exit code (3) is not one of the CLI's
    assert "address already in use" in err or "the sandbox could not start" in err
    assert err.rstrip().endswith("videojobs: the sandbox could not start")


def test_the_sandbox_commands_help_lists_every_exit_code_it_has() -> None:
    """``videojobs sandbox --help`` listed 0 and 2; a port in use exits 1; SIGHUP and SIGTERM end it
    by the signal (:func:`test_the_sandbox_ends_as_its_help_says_on_sigterm`)."""
    code, out, _ = run("sandbox", "--help")
    assert code == 0
    codes = out.split("exit codes:", 1)[1].split("\n")
    codes = [line.split()[0] for line in codes if line.strip()]
    assert [c for c in codes if c.isdigit()] == ["0", "1", "2", "129", "143"]


@pytest.mark.parametrize(
    "argv",
    [[sys.executable, "-m", "videojobs", "sandbox"], [sys.executable, "-m", "videojobs.sandbox"]],
    ids=["videojobs sandbox", "python -m videojobs.sandbox"],
)
def test_a_limit_for_a_vendor_the_sandbox_lacks_is_a_usage_error(argv: list[str]) -> None:
    """Not a server that throttles nobody. In a process of its own with a timeout: were the limit
    taken, the server would run until stopped."""
    done = subprocess.run([*argv, "--limit", "nosuch=3", "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "--limit names no vendor of this sandbox: 'nosuch'" in done.stderr


def test_python_m_videojobs_sandbox_offers_the_options_of_videojobs_sandbox() -> None:
    """The same help, defaults and names (the sandbox keeps its own copy: it imports nothing of
    the client's); it had none of the help."""
    from videojobs.sandbox.__main__ import build_parser

    code, out, _ = run("sandbox", "--help")
    assert code == 0
    cli_help = " ".join(out.split())
    own = build_parser()
    shared = [a for a in own._actions if a.option_strings and a.dest not in ("help", "epoch")]
    assert [a.dest for a in shared] == ["host", "port", "time_scale", "api_key", "limit"]
    for action in shared:
        assert action.help, action.dest
        shown = f"{action.option_strings[0]} {action.metavar or action.dest.upper()} {action.help}"
        assert shown in cli_help, shown
    assert own.parse_args([]).__dict__ == {"host": "127.0.0.1", "port": 8710, "time_scale": 1.0,
                                           "api_key": "sk-sandbox", "epoch": None, "limit": None}  # fmt: skip


def test_python_m_videojobs_sandbox_without_uvicorn_is_a_usage_error() -> None:
    """Exit 2 naming the extra, as ``videojobs sandbox`` says it (it was 1)."""
    code = (
        "import runpy, sys; sys.modules['uvicorn'] = None; runpy.run_module('videojobs.sandbox', run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", code, "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "needs uvicorn: pip install 'videojobs[sandbox]'" in done.stderr


def test_a_time_scale_past_a_million_is_a_usage_error() -> None:
    """``status --sandbox --time-scale 1e20`` printed a bare IndexError (the client's clock no
    longer moved by a second); the sandbox's own bound, exit 2."""
    code, out, err = run("status", "--sandbox", "--time-scale", "1e20", "vozo:x-at_done")
    assert code == 2
    assert "is not a number from 1e-06 to 1e+06" in err
    assert out == ""


@pytest.mark.parametrize(
    ("redirect", "code", "stdout_has_result"),
    [
        (">&-", 0, False),  # stdout closed: results to nowhere, as asked (it was an AttributeError)
        ("2>&-", 0, True),  # stderr closed: the results still come (they were lost, exit 1)
        ("> /dev/full", 1, False),  # a full disk under > results.txt: one line says so (a traceback)
        ("2> /dev/full", 0, True),  # a full disk under 2> wait.log: progress lost, not the results
    ],
)
def test_a_closed_or_full_output_stream_is_said_in_a_line_not_a_traceback(
    redirect: str, code: int, stdout_has_result: bool, tmp_path: Path
) -> None:
    if redirect.endswith("/dev/full") and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    out = tmp_path / "out.txt"
    command = " ".join([*CLI, "wait", *FAST, "vozo:a-at_done"])
    if not redirect.startswith(">"):
        command += f" > {out}"
    done = subprocess.run(["bash", "-c", f"{command} {redirect}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    if stdout_has_result:
        assert out.read_text().startswith("vozo:a-at_done  succeeded")
    if redirect == "> /dev/full":
        assert "videojobs: could not write the output: No space left on device" in done.stderr


def test_the_sandbox_shows_a_host_it_cannot_listen_on_as_text() -> None:
    """``videojobs sandbox --host $'\\e]0;H\\a'`` retitled the terminal: its error (and its banner)
    printed the host as given, where the CLI shows whatever a user typed as text."""
    done = subprocess.run(
        [*CLI, "sandbox", "--host", "\x1b]0;H\x07", "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "could not listen on \\x1b]0;H\\x07:0" in done.stderr
    assert "\x1b" not in done.stderr + done.stdout


def test_the_sandbox_refuses_another_commands_vendor_key_form() -> None:
    """``videojobs sandbox --api-key vozo=sk-x`` (every other command's form) made ``vozo=sk-x`` the
    key it accepts, quietly: no client sending ``sk-x`` got in. A usage error, the key not shown."""
    for vendor in ("vozo", "VOZO"):  # the other commands take any case
        code, out, err = run("sandbox", "--api-key", f"{vendor}=sk-secret-x", "--port", "0")
        assert code == 2
        assert err == f"videojobs: sandbox --api-key takes the one KEY every vendor sends, not {vendor}=KEY\n"
        assert "sk-secret-x" not in out + err


def test_the_sandbox_ends_as_its_help_says_on_sigterm() -> None:
    """Its help listed 0, 1 and 2; SIGTERM shuts it down and ends it by the signal (a shell's 143)."""
    _, help_text, _ = run("sandbox", "--help")
    assert "143  stopped by SIGTERM" in help_text
    proc = subprocess.Popen([*CLI, "sandbox", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("videojobs sandbox on http://127.0.0.1:")  # listening
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM


CTRL_C_WHILE_LOADING = """
import importlib.abc, sys

class CtrlC(importlib.abc.MetaPathFinder):  # the Ctrl-C lands while the CLI's modules load
    def find_spec(self, name, path, target=None):
        if name == "asyncio":
            raise KeyboardInterrupt
        return None

sys.modules.pop("asyncio", None)
sys.meta_path.insert(0, CtrlC())
from videojobs.__main__ import run
sys.exit(run())
"""


def test_ctrl_c_while_the_command_loads_is_an_interruption_not_a_traceback() -> None:
    """The ``videojobs`` command imports its CLI under a guard: a Ctrl-C in its first 0.1 s (loading
    asyncio and the client) printed a traceback of whichever import it landed in."""
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_WHILE_LOADING, "wait", "vozo:x"], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "videojobs: interrupted\n")


def test_the_command_is_the_guarded_entry_point() -> None:
    """pyproject's ``videojobs`` script and ``python -m videojobs`` both start at ``__main__.run``."""
    import tomllib

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["videojobs"] == "videojobs.__main__:run"
    from videojobs import __main__ as entry
    from videojobs._cli_output import EXIT_INTERRUPTED

    assert entry.EXIT_INTERRUPTED == EXIT_INTERRUPTED


@pytest.mark.parametrize("unbuffered", ["1", ""], ids=["unbuffered", "buffered"])
@pytest.mark.parametrize("asked", [["--help"], ["--version"], ["wait", "--help"]], ids=" ".join)
def test_help_that_cannot_be_written_says_so(asked: list[str], unbuffered: str) -> None:
    """``videojobs --help > /dev/full`` exited 0 with nothing written: argparse drops the error of
    its write (an unbuffered stdout fails there), and a buffered one failed flushing at exit, after
    main had returned."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    command = " ".join([*CLI, *asked, "> /dev/full"])
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1, done.stderr
    assert done.stderr == "videojobs: could not write the output: No space left on device\n"


def test_download_says_what_its_timeout_ends_in(tmp_path: Path) -> None:
    """Its help promised exit 124 (wait's); a save cut short by --timeout is a NetworkError, exit 1."""
    code, out, err = run("download", *FAST, "-o", str(tmp_path), "--timeout", "1ms", "vozo:s-at_done-fslow")
    assert code == 1
    assert "NetworkError" in out + err
    _, help_text, _ = run("download", "--help")
    option = help_text.split("  --timeout DURATION", 1)[1].split("\n  -", 1)[0].split("\n\n", 1)[0]  # its own text
    assert "124" not in option
    assert "exit 1" in " ".join(option.split())


def test_a_signal_ignored_on_purpose_stays_ignored() -> None:
    """``nohup videojobs wait ...`` (SIGHUP ignored) died at the hang-up, exit 129, once the CLI
    took SIGHUP and SIGTERM as Ctrl-C: an ignored signal is left alone."""
    import signal

    from videojobs._cli import _on_stop_signals

    saved = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with _on_stop_signals(lambda signum, frame: None):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, saved)


def test_a_stop_signal_cancels_the_command_at_an_await_not_where_the_code_stands() -> None:
    """SIGHUP under load left ``videojobs wait`` running for good: the handler raised where the
    code stood, once inside ``with lock:`` between the acquire and the block, so the lock stayed
    held and the loop's shutdown waited on it. The signal now cancels the command's task: the code
    it arrived in runs on to the next ``await``, every ``finally`` runs, and the command ends as
    :class:`Terminated` (exit 128 + the signal)."""
    import asyncio
    import os
    import signal
    import threading

    from videojobs._cli import Terminated, _run_until_stopped

    lock = threading.Lock()
    reached: list[str] = []

    async def command() -> int:
        try:
            with lock:
                os.kill(os.getpid(), signal.SIGTERM)  # its handler runs here, in this thread
                reached.append("the rest of the block")
            await asyncio.sleep(60)
            reached.append("past the await")
        finally:
            reached.append("finally")
        return 0

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as stopped:
        _run_until_stopped(command())
    assert stopped.value.signum == signal.SIGTERM
    assert reached == ["the rest of the block", "finally"]
    assert not lock.locked()
    assert signal.getsignal(signal.SIGTERM) is before  # the handler put back


_STOPPED_TWICE = r"""
import asyncio, os, signal, sys
from videojobs._cli import _run_until_stopped

async def command() -> int:
    signum = getattr(signal, sys.argv[2])
    if sys.argv[1] == "twice":  # a closed terminal: two SIGHUPs a few milliseconds apart
        os.kill(os.getpid(), signum)  # its handler runs here: the task is to be cancelled
        os.kill(os.getpid(), signum)  # and this one, inside the same step of the loop
    else:  # once, to a command that will not unwind (a cancellation swallowed, a loop stuck)
        os.kill(os.getpid(), signum)
        for _ in range(100):
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                pass
    await asyncio.sleep(60)
    return 0

_run_until_stopped(command(), grace=0.5)
print("not reached")
"""


@pytest.mark.parametrize("how", ["twice", "stuck"])
@pytest.mark.parametrize(("signame", "said"), [("SIGHUP", "SIGHUP: stopped"), ("SIGINT", "interrupted")])
def test_a_second_stop_signal_or_a_stuck_unwinding_ends_the_command_at_once(how: str, signame: str, said: str) -> None:
    """Closing a terminal sends two SIGHUPs a few milliseconds apart: the second raised where the
    code stood, once inside the loop's own ``call_soon``, and its lost wake-up left the command
    running for good after the window was gone (2-6 closes in 100); asyncio's own second Ctrl-C
    raises the same way. A second signal, or a command still unwinding past its grace, now ends
    the process: the line a stop prints, exit 128 + the signal."""
    argv = [sys.executable, "-c", _STOPPED_TWICE, how, signame]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (128 + getattr(signal, signame), ""), done
    assert done.stderr == f"videojobs: {said}\n"


def test_the_live_eta_reads_the_pace_the_job_moved_at_while_watched() -> None:
    """A job at 50 % when the wait began, at 59 % ten seconds later: about 46 s left (it read
    ~0:00, from the command's start as if the job had begun with it); none before it moves."""
    from videojobs._cli_output import time_left

    assert time_left((100.0, 0.50), (110.0, 0.59)) == pytest.approx(10 * 0.41 / 0.09)
    assert time_left((100.0, 0.50), (110.0, 0.50)) is None  # stalled: no guess
    assert time_left((100.0, 0.50), (100.0, 0.50)) is None  # the first reading
    assert time_left((100.0, 0.0), (110.0, 1.0)) is None  # done


def test_the_demos_summary_gives_the_demos_own_hint() -> None:
    """A second demo into the same folder was told "--overwrite replaces it", which demo lacks."""
    import errno

    from videojobs import DownloadError
    from videojobs._cli import DemoJob, demo_summary

    exists = DownloadError("demo/x.mp4 exists", vendor="vozo", errno=errno.EEXIST, name_taken=True)
    lines, _ = demo_summary([DemoJob("vozo", {})], ["vozo:x"], {"vozo:x": exists}, {})
    assert "choose another --dest folder" in lines[-1]
    assert "--overwrite" not in lines[-1]


def test_download_timeout_is_real_seconds_on_a_sped_up_sandbox(tmp_path: Path) -> None:
    """--timeout 1 on a sandbox 1,000 times faster gave the download 1,000 real seconds: the
    CLI put it on the client's clock, where a download's deadline is real time. A subprocess
    with a timeout of its own: were it scaled again, the run would outlast it."""
    done = subprocess.run(
        [sys.executable, "-m", "videojobs", "download", "--sandbox", "--time-scale", "1000", "--timeout", "1",
         "-o", str(tmp_path), "duomi:big-at_succeeded-sz400m-fslow"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "NetworkError" in done.stdout + done.stderr


def test_the_sandbox_command_takes_the_sandboxs_own_time_scale_bounds() -> None:
    """--time-scale 1e-7 passed the command's check and the sandbox refused it: a traceback."""
    code, _, err = run("sandbox", "--port", "0", "--time-scale", "1e-7")
    assert code == 2
    assert "'1e-7' is not a number from 1e-06 to 1e+06" in err
