"""Recorded cassettes of every documented state and error of every vendor, replayed offline.

These are recordings *of the sandbox*, and say so: ``make record`` serves the sandbox with
uvicorn and runs this module with ``--record-mode=rewrite`` and ``VIDEOJOBS_RECORD_URL`` set;
each request is rewritten from the loopback port to ``http://sandbox.videojobs.invalid`` (the
vendors' paths, the sandbox's host) and scrubbed of keys. ``make test`` replays them with
``--record-mode=none --block-network``. Exchanges with the real vendors are recorded by
``make record-live`` into tests/cassettes/live/ (see tests/test_live.py).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import videojobs
from tests.cases import CASES, VENDORS
from tests.clocks import SimClock
from tests.spec_check import documented_states
from videojobs import Clock
from videojobs._policy import AdaptivePolicy
from videojobs.sandbox import Sandbox

RECORD_URL = os.environ.get("VIDEOJOBS_RECORD_URL")
RECORD_SCALE = float(os.environ.get("VIDEOJOBS_RECORD_SCALE", "20"))
CASSETTES = Path(__file__).parent / "cassettes" / "test_cassettes"
KEY = "sk-sandbox"
SECRET_HEADERS = {"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie", "set-cookie"}
_PLACE = Sandbox()  # only for routing paths to vendors


SANDBOX_ROOT = "http://sandbox.videojobs.invalid"
"""Where the recorded sandbox answered from (.invalid: a name that resolves nowhere)."""


def _sandbox_host(request: Any) -> Any:
    """Rewrite a recorded request from the loopback port to SANDBOX_ROOT, and scrub its secrets;
    the sandbox's own endpoints (the reset before each test) are not recorded."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(request.uri)
    if parts.path.startswith("/sandbox/"):
        return None
    request = copy.copy(request)
    root = urlsplit(SANDBOX_ROOT)
    request.uri = urlunsplit((root.scheme, root.netloc, parts.path, parts.query, ""))
    host = root.netloc
    headers = {k: ("REDACTED" if k.lower() in SECRET_HEADERS else v) for k, v in request.headers.items()}
    request.headers = {k: (host if k.lower() == "host" else v) for k, v in headers.items()}
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    response = copy.deepcopy(response)
    response["headers"] = {
        k: v for k, v in response["headers"].items() if k.lower() not in SECRET_HEADERS | {"date", "server"}
    }
    return response


@pytest.fixture(autouse=True)
def _fresh_sandbox() -> None:
    """Recording: each test starts on a sandbox afresh, its clock at the epoch, so the vendors'
    timestamps it records start there whichever tests ran before it (they moved by how long
    those took: minutes of sandbox time in a whole recording, for the last vendor's tests)."""
    if RECORD_URL:
        httpx.post(f"{RECORD_URL}/sandbox/reset", timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "before_record_request": _sandbox_host,
        "before_record_response": _scrub_response,
        "decode_compressed_response": True,
        "match_on": ("method", "scheme", "host", "port", "path", "query"),
    }


def _clock() -> Clock | None:
    """Replays have no clock to wait for (the recorded answers come back in order): a simulated one."""
    return None if RECORD_URL else SimClock()


def _urls() -> dict[str, str] | None:
    return _PLACE.base_urls(RECORD_URL or SANDBOX_ROOT)


def client(**kwargs: Any) -> videojobs.Client:
    kwargs.setdefault("api_keys", dict.fromkeys(VENDORS, KEY))
    kwargs.setdefault("transport", vcr_transport())
    return videojobs.Client(base_urls=_urls(), rate_limits=dict.fromkeys(VENDORS), clock=_clock(), **kwargs)


def vcr_transport() -> httpx.BaseTransport:
    """httpx's own transport: vcrpy records and replays at ``httpx.HTTPTransport.handle_request``,
    and the sync client's default transport (a deadline-bounded httpcore pool of ours) is not one.
    The request is the same either way (test_client checks the request line byte for byte); what
    a cassette tests is everything above the transport."""
    return httpx.HTTPTransport()


def aclient(**kwargs: Any) -> videojobs.AsyncClient:
    kwargs.setdefault("api_keys", dict.fromkeys(VENDORS, KEY))
    return videojobs.AsyncClient(base_urls=_urls(), rate_limits=dict.fromkeys(VENDORS), clock=_clock(), **kwargs)


POLICY = AdaptivePolicy().scaled(RECORD_SCALE)


@pytest.mark.vcr
@pytest.mark.parametrize("vendor", VENDORS)
def test_each_documented_state(vendor: str) -> None:
    documented = sorted(documented_states(vendor))
    with client() as c:
        for word in documented:
            status = c.status(f"{vendor}:rec-at_{word}")
            assert status.vendor_state == word
            expected = next(sc.state for sc in CASES[vendor].states if sc.vendor_state == word)
            assert status.state is videojobs.State(expected)
            assert isinstance(status.raw, CASES[vendor].model_class())
            if status.state is videojobs.State.SUCCEEDED:
                assert status.progress == 1.0
                assert status.has_video
            if status.state is videojobs.State.FAILED:
                assert status.error is not None


@pytest.mark.vcr
@pytest.mark.anyio
@pytest.mark.parametrize("vendor", VENDORS)
async def test_wait_from_queued_to_done(vendor: str) -> None:
    seen: list[videojobs.JobStatus] = []
    async with aclient() as c:
        final = await c.wait(f"{vendor}:rec-wait-ok-q3-d40-stall4", on_update=seen.append, policy=POLICY)
    assert seen[0].state is videojobs.State.QUEUED
    assert final.state is videojobs.State.SUCCEEDED
    assert final is seen[-1]
    assert final.has_video
    running = [s.progress for s in seen if s.state is videojobs.State.RUNNING and s.progress is not None]
    assert running == sorted(running)
    if vendor != "vozo":
        assert running, "a vendor that reports progress showed some"
    assert {s.state for s in seen} >= {videojobs.State.QUEUED, videojobs.State.SUCCEEDED}


@pytest.mark.vcr
@pytest.mark.parametrize("vendor", VENDORS)
def test_failed_job(vendor: str) -> None:
    with client() as c:
        final = c.wait(f"{vendor}:rec-fail-q1-d20", policy=POLICY)
    assert final.state is videojobs.State.FAILED
    assert final.error is not None
    assert final.error.message
    assert not final.has_video  # a failed job has no video, even Colossyan's, whose videoId stays
    assert not final.video_urls


@pytest.mark.vcr
@pytest.mark.anyio
@pytest.mark.parametrize("vendor", VENDORS)
async def test_wrong_key_is_401(vendor: str) -> None:
    async with aclient(api_keys=dict.fromkeys(VENDORS, "sk-wrong-key-0000")) as c:
        with pytest.raises(videojobs.AuthenticationError) as info:
            await c.status(f"{vendor}:rec-any")
    assert info.value.vendor == vendor
    assert "sk-wrong-key-0000" not in str(info.value)


@pytest.mark.vcr
@pytest.mark.parametrize("vendor", VENDORS)
def test_unknown_task_is_404(vendor: str) -> None:
    with client() as c, pytest.raises(videojobs.NotFoundError) as info:
        c.status(f"{vendor}:rec-missing-e404")
    assert info.value.vendor == vendor
    if CASES[vendor].error_body is not None:
        assert info.value.message == "task not found"


@pytest.mark.vcr
@pytest.mark.anyio
@pytest.mark.parametrize("vendor", VENDORS)
async def test_429_then_success(vendor: str) -> None:
    async with aclient() as c:
        status = await c.status(f"{vendor}:rec-e429x1-at_{CASES[vendor].states[1].vendor_state}")
    assert status.state is videojobs.State(CASES[vendor].states[1].state)


@pytest.mark.vcr
@pytest.mark.parametrize("vendor", VENDORS)
def test_5xx_then_success(vendor: str) -> None:
    with client(max_retries=2) as c:
        status = c.status(f"{vendor}:rec-e502x1-e520x1-at_{CASES[vendor].states[0].vendor_state}")
    assert status.state is videojobs.State(CASES[vendor].states[0].state)


@pytest.mark.vcr
@pytest.mark.anyio
@pytest.mark.parametrize("vendor", VENDORS)
async def test_malformed_body(vendor: str) -> None:
    async with aclient() as c:
        with pytest.raises(videojobs.MalformedResponseError) as info:
            await c.status(f"{vendor}:rec-emalformed")
    assert info.value.raw
    assert info.value.status_code == 200


# --- the cassettes themselves -------------------------------------------------------------------


def _cassette_texts() -> Iterator[tuple[Path, str]]:
    for path in sorted(CASSETTES.glob("*.yaml")):
        yield path, path.read_text(encoding="utf-8")


@pytest.mark.skipif(RECORD_URL is not None, reason="checks what was recorded, after recording")
def test_every_vendor_has_its_cassettes() -> None:
    names = {p.stem for p, _ in _cassette_texts()}
    for vendor in VENDORS:
        mine = {n for n in names if n.endswith(f"[{vendor}]")}
        assert len(mine) >= 8, f"{vendor} has {len(mine)} cassettes"


@pytest.mark.skipif(RECORD_URL is not None, reason="checks what was recorded, after recording")
def test_cassettes_hold_no_key_and_say_they_are_the_sandbox() -> None:
    keyish = re.compile(r"(Bearer\s+\S+|sk-[A-Za-z0-9_-]{6,}|api[_-]?key\W+\S{6,})", re.IGNORECASE)
    hosts = {SANDBOX_ROOT.removeprefix("http://")}
    seen_hosts: set[str] = set()
    texts = list(_cassette_texts())
    assert texts
    for path, text in texts:
        match = keyish.search(text)
        assert match is None, f"{path.name} holds a key-like string: {match.group(0)!r}"
        seen_hosts |= set(re.findall(r"uri: https?://([^/]+)/", text))
        assert "127.0.0.1" not in text
        assert "localhost" not in text
    assert seen_hosts == hosts


def test_make_record_of_one_vendor_records_its_cassettes_and_no_other() -> None:
    """``make record VENDOR=slug`` picked its tests with ``-k slug``: any test whose name held the
    word (a vendor named inside another's name, or a test's) was recorded again too."""
    from scripts.record import collected, tests_of

    ids = collected()
    for vendor in VENDORS:
        picked = tests_of(vendor, ids)
        assert sorted(node.split("::", 1)[1] + ".yaml" for node in picked) == sorted(
            path.name for path in CASSETTES.glob(f"*[[]{vendor}[]].yaml")
        )
    assert tests_of("vozo", ["t.py::test_a[vozo]", "t.py::test_vozo_b[duomi]", "t.py::test_c[vozoplus]"]) == [
        "t.py::test_a[vozo]"
    ]
