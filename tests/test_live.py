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
    (a vendor may echo it percent-encoded, JSON-escaped, in base64, in a header, its start or
    upper-cased: :meth:`Scrubber.scrub_all`), redacted from the body, the status line's reason
    and every header, and the headers that vary or identify dropped. A body still compressed
    (vcrpy decodes only a Content-Encoding of exactly ``gzip`` or ``deflate``; the library reads
    ``x-gzip``, ``GZIP`` and ``identity, gzip`` too) is decoded first, as the library decodes it:
    scrubbed compressed, an echo inside it was kept."""
    from videojobs._exchange import BodyReader
    from videojobs._scrub import Scrubber

    response = copy.deepcopy(response)
    scrubber = Scrubber([_key((RECORDING or "").partition(":")[0])])
    headers = {k: v if isinstance(v, list) else [v] for k, v in response.get("headers", {}).items()}
    coding = ", ".join(v for k, values in headers.items() if k.lower() == "content-encoding" for v in values)
    body = response.get("body", {}).get("string", b"")
    if isinstance(body, str):
        body = body.encode("utf-8")
    if coding and body:
        reader = BodyReader(coding, len(body) * 1100 + (1 << 20), _VENDOR or "live")  # a recording's own bound
        reader.feed(body)
        body = reader.finish()
    headers = {k: v for k, v in headers.items() if k.lower() != "content-encoding" or not coding}
    scrubbed = scrubber.scrub_all(body.decode("latin-1")).encode("latin-1")  # a character a byte: any body
    response["body"] = {"string": scrubbed}
    if isinstance(response.get("status"), dict) and isinstance(response["status"].get("message"), str):
        response["status"]["message"] = scrubber.scrub_all(response["status"]["message"])
    skip = {"set-cookie", "authorization", "date", "server"}
    response["headers"] = {
        scrubber.scrub_all(k): [scrubber.scrub_all(str(v)) for v in values]
        for k, values in headers.items()
        if k.lower() not in skip
    }
    return response


def _kept_echo(text: str, key: str) -> bool:
    """Whether a written cassette still holds the key in a form the library's scrubber knows."""
    from videojobs._scrub import Scrubber

    return Scrubber([key]).scrub_all(text) != text


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


@pytest.mark.skipif(not RECORDING, reason="runs after make record-live's recording, on the cassette it wrote")
def test_a_real_exchange_recorded_keeps_no_echo_of_the_key() -> None:
    """The last word on a recording before it can be committed (the cassette is written when the
    test above ends): the file holds the key in no form the library's scrubber knows, or it is
    removed and the recording fails."""
    cassette = LIVE / f"{_name(RECORDING or '')}.yaml"
    text = cassette.read_text(encoding="utf-8")
    if _kept_echo(text, RECORD_KEY):
        cassette.unlink()
        pytest.fail(f"the recorded answer still held the key in some form: {cassette} was not kept")
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


def test_a_recorded_answer_keeps_no_echo_in_its_reason_a_compressed_body_or_a_piece() -> None:
    """What a review's hostile vendor got into a cassette: the key in the status line's reason,
    in a body compressed as ``x-gzip`` (vcrpy decodes only an exact ``gzip``; the library reads
    it, and the cassette kept it compressed, the key inside), upper-cased in a header, and its
    start quoted in another."""
    import gzip

    body = gzip.compress(f'{{"message": "invalid token {REPLAY_KEY}"}}'.encode())
    response = {
        "status": {"code": 401, "message": f"Invalid API key {REPLAY_KEY}"},
        "headers": {
            "Content-Encoding": ["x-gzip"],
            "X-Echo": [REPLAY_KEY.upper()],
            "WWW-Authenticate": [f'Bearer error="bad key {REPLAY_KEY[:12]}..."'],
        },
        "body": {"string": body},
    }
    kept = _scrub(response)
    shown = str(kept)
    for form in (REPLAY_KEY, REPLAY_KEY.upper(), REPLAY_KEY[:12]):
        assert form not in shown
    assert kept["status"]["message"] == "Invalid API key [REDACTED]"
    assert kept["body"]["string"] == b'{"message": "invalid token [REDACTED]"}'  # decoded, then scrubbed
    assert "Content-Encoding" not in kept["headers"]  # the body kept is the decoded one
    assert not _kept_echo(shown, REPLAY_KEY)
    assert _kept_echo(f"x {REPLAY_KEY[:10].upper()} y", REPLAY_KEY)  # the guard sees what scrub_all sees


@pytest.mark.network
def test_record_live_keeps_no_echo_of_the_key_from_a_hostile_vendor(tmp_path: Path) -> None:
    """make record-live against a vendor that echoes the key in its reason, an ``x-gzip`` body and
    its headers (a loopback server): the cassette written holds it in no form the scrubber knows."""
    import gzip
    import socket
    import subprocess
    import sys

    from tests import hostile

    secret = "sk-live-SECRET-hostile-7f3a"

    def echo(request: hostile.Request, conn: socket.socket) -> None:
        data = gzip.compress(f'{{"code": 401, "message": "invalid token {secret}"}}'.encode())
        head = (
            f"HTTP/1.1 401 Invalid API key {secret}\r\nContent-Length: {len(data)}\r\nContent-Encoding: x-gzip\r\n"
            f"Content-Type: application/json\r\nX-Echo: {secret.upper()}\r\nX-Piece: bad key {secret[:14]}...\r\n\r\n"
        )
        conn.sendall(head.encode() + data)

    with hostile.hostile(echo) as url:
        env = {**os.environ, "VIDEOJOBS_LIVE": "duomi:live-1", "VIDEOJOBS_LIVE_DIR": str(tmp_path),
               "DUOMI_API_KEY": secret, "DUOMI_BASE_URL": url}  # fmt: skip
        cmd = [sys.executable, "-m", "pytest", "tests/test_live.py", "-k", "real_exchange", "--record-mode=once",
               "-p", "no:randomly", "-q"]  # fmt: skip
        recorded = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert recorded.returncode == 0, recorded.stdout[-2000:]
    assert "2 passed" in recorded.stdout  # the exchange, and the check of what it wrote
    (cassette,) = tmp_path.glob("*.yaml")
    text = cassette.read_text(encoding="utf-8")
    for form in (secret, secret.upper(), secret[:14]):
        assert form not in text
    assert not _kept_echo(text, secret)
