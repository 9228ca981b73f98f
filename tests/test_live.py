"""Real exchanges with the vendors: recorded by someone with a real key, replayed by everyone.

    make record-live VENDOR=duomi TASK=8cb280b3-442e   # needs DUOMI_API_KEY (and the network)

records one status call to the vendor's real server into ``tests/cassettes/live/`` with
pytest-recording (``--record-mode=once``): the Authorization header is filtered out and the key
scrubbed from the answer. ``make test`` replays every cassette in that folder with the network
blocked, so an answer a vendor really gave stays a test. (Until someone records one, there is
nothing to replay: no vendor is reachable from where this project is developed, and the replay
test is reported as skipped with that reason; tests/cassettes/live/README.md says the same.)
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

import videojobs

ROOT = Path(__file__).resolve().parent.parent
LIVE = Path(os.environ.get("VIDEOJOBS_LIVE_DIR") or ROOT / "tests" / "cassettes" / "live")
RECORDING = os.environ.get("VIDEOJOBS_LIVE")  # "<vendor>:<task id>" while make record-live runs
REPLAY_KEY = "sk-replay-not-a-key"
_VENDOR = (RECORDING or "").partition(":")[0]
# read now: the suite's autouse fixture clears <SLUG>_API_KEY and <SLUG>_BASE_URL for each test
RECORD_KEY = os.environ.get(f"{_VENDOR.upper()}_API_KEY", "") if RECORDING else ""
BASE_URL = os.environ.get(f"{_VENDOR.upper()}_BASE_URL") if RECORDING else None


def _name(ref: str) -> str:
    vendor, _, task = ref.partition(":")
    return f"{vendor}--{quote(task, safe='')}"


def _refs() -> list[Any]:
    """The recorded exchanges to replay; until there is one, a single skipped case that says so
    (an empty parameter set would be skipped too, but saying only "got empty parameter set")."""
    if RECORDING:
        return [RECORDING]
    found = sorted(LIVE.glob("*--*.yaml")) if LIVE.is_dir() else []
    if not found:
        where = LIVE.relative_to(ROOT) if LIVE.is_relative_to(ROOT) else LIVE
        reason = f"no live cassette in {where} yet: make record-live VENDOR=<slug> TASK=<task id> records one"
        return [pytest.param(None, id="no-live-cassette", marks=pytest.mark.skip(reason=reason))]
    return [f"{p.stem.partition('--')[0]}:{unquote(p.stem.partition('--')[2])}" for p in found]


def _key(vendor: str) -> str:
    return RECORD_KEY if RECORDING else REPLAY_KEY


def _scrub(response: dict[str, Any]) -> dict[str, Any]:
    """The answer as the cassette keeps it: the key, in every form the library's scrubber knows
    (a vendor may echo it percent-encoded, JSON-escaped, in base64, in a header), redacted from
    the body and every header, and the headers that vary or identify dropped."""
    from videojobs._scrub import Scrubber

    response = copy.deepcopy(response)
    scrubber = Scrubber([_key((RECORDING or "").partition(":")[0])])
    body = response.get("body", {}).get("string", b"")
    if isinstance(body, bytes):
        response["body"]["string"] = scrubber.scrub_bytes(body)
    elif isinstance(body, str):
        response["body"]["string"] = scrubber.scrub(body)
    skip = {"set-cookie", "authorization", "date", "server"}
    response["headers"] = {
        scrubber.scrub(k): [scrubber.scrub(v) for v in (values if isinstance(values, list) else [values])]
        for k, values in response["headers"].items()
        if k.lower() not in skip
    }
    return response


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "filter_headers": ["authorization", "cookie"],
        "before_record_response": _scrub,
        "decode_compressed_response": True,
        "match_on": ("method", "path", "query"),
    }


@pytest.fixture
def vcr_cassette_dir() -> str:
    return str(LIVE)


@pytest.fixture
def default_cassette_name(ref: str) -> str:
    return _name(ref)


@pytest.mark.vcr
@pytest.mark.parametrize("ref", _refs())
def test_a_real_exchange_reads_as_a_status_or_a_typed_error(ref: str) -> None:
    vendor = ref.partition(":")[0]
    if RECORDING and not RECORD_KEY:
        pytest.fail(f"set {vendor.upper()}_API_KEY to record a live exchange with {vendor}")
    base_urls = {vendor: BASE_URL} if BASE_URL else None
    # httpx's own transport, which vcrpy hooks (see tests/test_cassettes.vcr_transport)
    transport = httpx.HTTPTransport()
    with videojobs.Client(
        api_keys={vendor: _key(vendor)}, base_urls=base_urls, max_retries=0, transport=transport
    ) as client:
        try:
            result: object = client.status(ref)
        except videojobs.VideoJobsError as exc:
            result = exc
    assert isinstance(result, (videojobs.JobStatus, videojobs.APIError, videojobs.MalformedResponseError)), result
    text = (LIVE / f"{_name(ref)}.yaml").read_text(encoding="utf-8") if not RECORDING else ""
    assert not re.search(r"Bearer\s+\S+", text), "a live cassette holds an Authorization header"


@pytest.mark.network
def test_record_live_records_a_scrubbed_exchange_that_replays_offline(tmp_path: Path) -> None:
    """The make record-live path, against the sandbox on a loopback port standing in for a vendor."""
    import subprocess
    import sys

    from tests.servers import serve
    from videojobs.sandbox import Sandbox

    secret = "sk-live-SECRET-7f3a"
    with serve(Sandbox(api_key=secret)) as (sb, url):
        env = {
            **os.environ,
            "VIDEOJOBS_LIVE": "duomi:live-q1-d30",
            "VIDEOJOBS_LIVE_DIR": str(tmp_path),
            "DUOMI_API_KEY": secret,
            "DUOMI_BASE_URL": sb.base_urls(url)["duomi"],
        }
        cmd = [sys.executable, "-m", "pytest", "tests/test_live.py", "-k", "real_exchange", "--record-mode=once",
               "-p", "no:randomly", "-q"]  # fmt: skip
        recorded = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert recorded.returncode == 0, recorded.stdout[-2000:]
    (cassette,) = tmp_path.glob("*.yaml")
    assert secret not in cassette.read_text(encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "VIDEOJOBS_LIVE"}
    env.update(VIDEOJOBS_LIVE_DIR=str(tmp_path), DUOMI_BASE_URL=sb.base_urls(url)["duomi"])
    cmd = [sys.executable, "-m", "pytest", "tests/test_live.py", "-k", "real_exchange", "--record-mode=none",
           "--block-network", "-p", "no:randomly", "-q"]  # fmt: skip
    replayed = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert replayed.returncode == 0, replayed.stdout[-2000:]
    assert "1 passed" in replayed.stdout


def test_a_recorded_answer_keeps_no_echo_of_the_key() -> None:
    """What ``make record-live`` writes: a vendor that echoes the key, JSON-escaped in the body
    and as is in a header, leaves neither in the cassette (REPLAY_KEY stands for the real key)."""
    escaped = REPLAY_KEY.replace("-", "\\u002d")  # as a JSON encoder that escapes '-' writes it
    response = {
        "status": {"code": 401, "message": "Unauthorized"},
        "headers": {"WWW-Authenticate": [f'Bearer error="{REPLAY_KEY}"'], "Date": ["today"]},
        "body": {"string": f'{{"error": {{"message": "invalid token {escaped}"}}}}'.encode()},
    }
    kept = _scrub(response)
    assert REPLAY_KEY not in str(kept)
    assert kept["headers"] == {"WWW-Authenticate": ['Bearer error="[REDACTED]"']}
    assert kept["body"]["string"] == b'{"error": {"message": "invalid token [REDACTED]"}}'
