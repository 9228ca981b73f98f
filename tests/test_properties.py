"""Property tests: whatever a vendor sends, the answer is a JobStatus or a typed error."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import videojobs
from tests.cases import CASES, VENDORS
from tests.conftest import KEYS

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
ODD_VALUES = st.sampled_from(
    [
        None,
        0,
        -1,
        2**63,
        1e308,
        -1e308,
        True,
        "",
        "x" * 10_000,
        [],
        {},
        [1, "a"],
        {"nested": {"deep": [1]}},
        "100",
        99.5,
    ]
)


def _client(body: bytes) -> videojobs.Client:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    return videojobs.Client(api_keys=KEYS, transport=transport, max_retries=0)


def _allowed(vendor: str, body: Any, exc: Exception) -> bool:
    """What a bad body may raise: MalformedResponseError; for JimmyAI also an envelope's APIError."""
    if isinstance(exc, videojobs.MalformedResponseError):
        return exc.raw is not None and exc.vendor == vendor
    envelope = vendor == "jimmyai" and isinstance(body, dict) and str(body.get("code")) != "20000"
    return envelope and isinstance(exc, videojobs.APIError) and exc.vendor == vendor


def _fetch(vendor: str, body: Any) -> videojobs.JobStatus | None:
    raw = json.dumps(body, allow_nan=False).encode()
    try:
        with _client(raw) as client:
            status = client.status(f"{vendor}:t-1")
    except videojobs.VideoJobsError as exc:
        assert _allowed(vendor, body, exc), f"{type(exc).__name__}: {exc}"  # noqa: PT017 - either outcome is allowed
        return None
    assert isinstance(status, videojobs.JobStatus)
    assert status.progress is None or 0.0 <= status.progress <= 1.0
    assert all(isinstance(u, str) for u in status.video_urls)
    return status


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(vendor=st.sampled_from(VENDORS), body=JSON)
def test_arbitrary_json_never_escapes_the_hierarchy(vendor: str, body: Any) -> None:
    _fetch(vendor, body)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def mutated_bodies(draw: st.DrawFn) -> tuple[str, Any]:
    vendor = draw(st.sampled_from(VENDORS))
    body = copy.deepcopy(draw(st.sampled_from([sc.body for sc in CASES[vendor].states])))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["drop", "null", "retype", "enlarge"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "null":
            parent[path[-1]] = None
        elif action == "retype":
            parent[path[-1]] = draw(ODD_VALUES)
        else:
            value = parent[path[-1]]
            parent[path[-1]] = (
                value * 500 if isinstance(value, (str, list)) else (10**30 if isinstance(value, int) else value)
            )
    return vendor, body


@FAST
@given(mutated_bodies())
def test_mutated_documented_bodies_are_a_status_or_malformed(item: tuple[str, Any]) -> None:
    _fetch(*item)


@st.composite
def valid_bodies(draw: st.DrawFn) -> tuple[str, Any, str]:
    vendor = draw(st.sampled_from(VENDORS))
    case = draw(st.sampled_from(CASES[vendor].states))
    body = copy.deepcopy(case.body)
    percent = draw(st.integers(0, 100))
    url = (
        "https://cdn.example.com/" + draw(st.text(alphabet="abcdefghij0123456789-_", min_size=1, max_size=20)) + ".mp4"
    )
    if vendor in ("duomi", "ezmodel"):
        body["progress"] = percent
    if vendor == "jimmyai":
        body["data"]["progress"] = percent
    if vendor == "colossyan":
        body["progress"] = draw(st.floats(0, 1000))
        body["maximumProgress"] = draw(st.floats(1, 1000))
    if vendor == "vozo" and case.state == "succeeded":
        body["video_url"] = url
    return vendor, body, case.state


@FAST
@given(valid_bodies())
def test_valid_bodies_map_to_the_tables_state(item: tuple[str, Any, str]) -> None:
    vendor, body, state = item
    status = _fetch(vendor, body)
    assert status is not None
    assert status.state is videojobs.State(state)
    if status.state is videojobs.State.SUCCEEDED:
        assert status.progress == 1.0


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_huge_body_is_handled(vendor: str) -> None:
    body = copy.deepcopy(CASES[vendor].states[0].body)
    body["padding"] = "x" * 2_000_000
    status = _fetch(vendor, body)
    assert status is not None
    assert status.vendor == vendor
