"""The command line, against the embedded sandbox: exit codes, JSON lines, plain output."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from videojobs._cli import main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


FAST = ("--sandbox", "--time-scale", "400")


def test_status_json_lines_and_exit_code() -> None:
    code, out = run("status", *FAST, "--json", "duomi:a-q0-d60", "colossyan:b-at_generating", "vozo:c-e404")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1  # one job could not be read
    assert [r["ref"] for r in rows] == ["duomi:a-q0-d60", "colossyan:b-at_generating", "vozo:c-e404"]
    assert rows[0]["state"] == "running"
    assert rows[0]["vendor_state"] == "running"
    assert rows[1]["vendor_state"] == "generating"
    assert rows[1]["video_id"].startswith("video-")
    assert rows[2]["error"]["type"] == "NotFoundError"
    assert rows[2]["error"]["status_code"] == 404


def test_status_table_when_not_a_terminal() -> None:
    code, out = run("status", *FAST, "ezmodel:x-at_completed", "jimmyai:y-at_submitted")
    assert code == 0
    assert "ezmodel:x-at_completed" in out
    assert "completed" in out
    assert "https://videos.sandbox.invalid/ezmodel/x-at_completed.mp4" in out
    assert "submitted" in out
    assert "\x1b[" not in out  # no colour codes into a pipe


def test_wait_all_succeeded_exits_0_and_prints_urls_and_expiry() -> None:
    code, out = run("wait", *FAST, "ezmodel:w-ok-q2-d40", "jimmyai:v-ok-q1-d30", "colossyan:z-ok-q1-d20")
    assert code == 0
    lines = out.splitlines()
    assert any("ezmodel:w-ok-q2-d40  running" in line for line in lines)  # plain line per change
    assert "ezmodel:w-ok-q2-d40: succeeded" in out
    assert "video: https://videos.sandbox.invalid/ezmodel/w-ok-q2-d40.mp4  (expires " in out
    assert "video: https://videos.sandbox.invalid/jimmyai/v-ok-q1-d30.mp4  (expires " in out
    assert "video id: video-" in out


def test_wait_exit_1_on_failure_or_missing_video() -> None:
    code, out = run("wait", *FAST, "vozo:a-ok-d20", "duomi:b-fail-d20")
    assert code == 1
    assert "duomi:b-fail-d20: failed" in out
    assert "failed: content moderation rejected the prompt" in out
    code, out = run("wait", *FAST, "jimmyai:c-ok-d20-novideo")
    assert code == 1
    assert "WARNING: the vendor says the job is done but returned no video" in out


def test_wait_exit_2_on_timeout_with_json() -> None:
    code, out = run("wait", "--sandbox", "--json", "--timeout", "0.3", "duomi:slow-q0-d600", "vozo:quick-at_done")
    assert code == 2
    rows = {json.loads(line)["ref"]: json.loads(line) for line in out.splitlines()}
    assert rows["duomi:slow-q0-d600"]["error"]["type"] == "WaitTimeout"
    assert rows["vozo:quick-at_done"]["state"] == "succeeded"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["status"], ""),
        (["status", *FAST, "vozo"], "expected '<vendor>:<task id>'"),
        (["status", *FAST, "runway:x"], "unknown vendor 'runway'"),
        (["wait", "vozo:x"], "set VOZO_API_KEY or pass --api-key vozo=KEY"),
        (["status", "--api-key", "nope=1", "vozo:x"], "--api-key #1 is not VENDOR=VALUE"),
        (["status", "--api-key", "sk-bare-secret", "vozo:x"], "a key goes to its own vendor only"),
        (["status", *FAST[:1], "--time-scale", "0", "vozo:x"], "--time-scale must be positive"),
    ],
)
def test_usage_errors_exit_2_with_a_message(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(*argv)
    assert code == 2
    assert words in capsys.readouterr().err


def test_api_key_flag_reaches_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"status": "done", "video_url": "https://x/v.mp4"})

    original = __import__("videojobs._cli", fromlist=["AsyncClient"]).AsyncClient

    def patched(**kwargs: object) -> object:
        return original(transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("videojobs._cli.AsyncClient", patched)
    code, out = run("status", "--json", "--api-key", "vozo=sk-cli-1", "vozo:t1")
    assert code == 0
    assert seen == ["Bearer sk-cli-1"]
    assert "sk-cli-1" not in out


def test_demo_runs_offline_and_summarizes() -> None:
    code, out = run("demo", "--time-scale", "300", "--plain")
    assert code == 0
    assert "Summary" in out
    for vendor in ("vozo", "duomi", "ezmodel", "colossyan", "jimmyai"):
        assert vendor in out
    assert "the vendor deleted the job" in out
    assert "done, but no video was returned" in out
    assert "12 jobs in" in out


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "videojobs._cli", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0
    assert "status" in result.stdout
    assert "wait" in result.stdout
    assert "demo" in result.stdout


@pytest.mark.parametrize(
    ("argv", "lines"),
    [
        (["wait", "--sandbox", "--time-scale", "60", "vozo:p1-q2-d60", "duomi:p2-q2-d90", "jimmyai:p3-q1-d30"], 1),
        (["demo", "--time-scale", "60"], 2),
    ],
    ids=["wait", "demo"],
)
def test_a_reader_that_goes_away_ends_the_command(argv: list[str], lines: int) -> None:
    """`videojobs wait ... | head -1` exits soon after head does, quietly, instead of hanging."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "videojobs._cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        for _ in range(lines):
            assert proc.stdout.readline()
        proc.stdout.close()  # what head does once it has its lines
        proc.wait(timeout=30)  # raises if it does not end
    finally:
        proc.kill()
        proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    assert "Traceback" not in err
