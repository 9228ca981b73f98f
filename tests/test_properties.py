"""Property tests: whatever a vendor sends, the answer is a JobStatus or a typed error.

The answers come from an oracle this project did not write: hypothesis-jsonschema draws them
from each vendor's own response schema (as published and as patched), then from the same
schemas with every ``required`` dropped, then with one field at an extreme (huge numbers, long
strings, deep nesting). Every strategy is derandomized: the same examples on every run.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

import videojobs
from tests.cases import CASES, VENDORS, field_name, for_task, foreign, put
from tests.clocks import SimClock
from tests.conftest import KEYS
from tests.spec_check import documented_states, response_schema
from videojobs._adapter import NO_VIDEO

DETERMINISTIC = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

_OPENAPI_ONLY = {"example", "examples", "xml", "externalDocs", "discriminator", "format", "deprecated"}


def json_schema(node: Any, *, drop_required: bool = False) -> Any:
    """An OpenAPI 3.0/3.1 schema as plain JSON Schema (nullable → a null type; annotations dropped)."""
    if isinstance(node, list):
        return [json_schema(n, drop_required=drop_required) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: json_schema(v, drop_required=drop_required)
        for k, v in node.items()
        if not k.startswith("x-") and k not in _OPENAPI_ONLY and not (drop_required and k == "required")
    }
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _schema(vendor: str, *, published: bool, drop_required: bool = False) -> dict[str, Any]:
    # a vendor kept outside specs/ (tests/test_sixth_vendor.py) has only the spec its package ships
    schema = response_schema(vendor, 200, published=published) or response_schema(vendor, 200)
    assert schema is not None
    converted: dict[str, Any] = json_schema(schema, drop_required=drop_required)
    return converted


def _state_path(vendor: str) -> tuple[str, ...]:
    return CASES[vendor].enum_field


def _documented(vendor: str) -> set[str]:
    return documented_states(vendor)


def _get(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(body, dict) or key not in body:
            return None
        body = body[key]
    return body


TASK = "t-1"
"""The job every answer here is asked for (an answer repeating another job's id is refused)."""


def fetch(vendor: str, raw: bytes) -> videojobs.JobStatus | videojobs.VideoJobsError:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=raw))
    with videojobs.Client(api_keys=KEYS, transport=transport, max_retries=0, clock=SimClock()) as client:
        try:
            return client.status(f"{vendor}:{TASK}")
        except videojobs.VideoJobsError as exc:
            return exc


def check(vendor: str, body: Any, raw: bytes | None = None) -> videojobs.JobStatus | videojobs.VideoJobsError:
    """The outcome of one answer, with what must hold of any outcome."""
    raw = json.dumps(body).encode() if raw is None else raw
    result = fetch(vendor, raw)
    if isinstance(result, videojobs.VideoJobsError):
        assert result.vendor == vendor
        envelope = vendor == "jimmyai" and isinstance(body, dict) and body.get("code") not in ("20000", 20000)
        if not (envelope and isinstance(result, videojobs.APIError)):
            assert isinstance(result, videojobs.MalformedResponseError), f"{type(result).__name__}: {result}"
            assert result.raw == raw
            if foreign(vendor, body, TASK) and not envelope:  # refused for what it is, before its state is read
                assert "the answer is for another job" in result.message, result.message
        return result
    assert not foreign(vendor, body, TASK), "an answer naming another job is no status of this one"
    assert isinstance(result, videojobs.JobStatus)
    assert result.progress is None or 0.0 <= result.progress <= 1.0
    assert all(isinstance(u, str) for u in result.video_urls)
    assert result.error is None or result.state in (videojobs.State.FAILED, videojobs.State.CANCELED)
    check_meaning(result)
    json.dumps(result.to_dict())  # always JSON-ready
    word = _get(body, _state_path(vendor))
    if isinstance(word, str) and word in _documented(vendor):
        assert result.vendor_state == word
        assert result.state is not videojobs.State.UNKNOWN, f"{vendor} documents {word!r}: it must map"
    return result


def _absolute_http(url: str) -> bool:
    """The oracle, written apart from the library's: urlsplit reads an http(s) scheme and a host."""
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and url == url.strip()


def check_meaning(status: videojobs.JobStatus) -> None:
    """What has_video and video_urls mean, for any answer: a succeeded job's usable video, else named."""
    succeeded = status.state is videojobs.State.SUCCEEDED
    assert status.has_video == (succeeded and (bool(status.video_urls) or status.video_id is not None))
    assert not status.video_urls or succeeded, "a URL counts as a video only on a succeeded job"
    assert all(_absolute_http(u) for u in status.video_urls), status.video_urls
    if succeeded and not status.has_video:
        assert NO_VIDEO in status.problems
    out = status.to_dict()
    assert (out["has_video"], out["video_urls"]) == (status.has_video, list(status.video_urls))


def _readable(vendor: str, body: Any) -> bool:
    """An answer whose state (and, for JimmyAI, envelope) is there and documented must be read."""
    if vendor == "jimmyai" and _get(body, ("code",)) != "20000":
        return False
    if foreign(vendor, body, TASK):  # another job's answer: refused (a MalformedResponseError)
        return False
    return _get(body, _state_path(vendor)) in _documented(vendor)


def _ok_envelope(vendor: str, body: Any) -> Any:
    if vendor == "jimmyai" and isinstance(body, dict):
        body = {**body, "code": "20000"}
    return body


# --- answers the vendors' own schemas allow ----------------------------------------------------------


@pytest.mark.parametrize("published", [True, False], ids=["as-published", "as-patched"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_every_answer_the_spec_allows_is_read(vendor: str, published: bool) -> None:
    @DETERMINISTIC
    @given(from_schema(_schema(vendor, published=published)))
    def run(body: Any) -> None:
        check(vendor, body)  # with the id the schema drew: another job's is refused
        body = _ok_envelope(vendor, for_task(vendor, body, TASK))
        result = check(vendor, body)
        if _readable(vendor, body):
            assert isinstance(result, videojobs.JobStatus), result

    run()


@pytest.mark.parametrize("vendor", VENDORS)
def test_answers_missing_any_field_keep_their_state(vendor: str) -> None:
    @DETERMINISTIC
    @given(from_schema(_schema(vendor, published=True, drop_required=True)))
    def run(body: Any) -> None:
        body = _ok_envelope(vendor, for_task(vendor, body, TASK))
        result = check(vendor, body)
        if _readable(vendor, body):
            assert isinstance(result, videojobs.JobStatus), result

    run()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


DEEP = "__DEEP__"
EXTREMES: list[Any] = [
    10**400,  # too large for a float
    -(10**400),
    2**63,
    1e308,
    -1.5,
    0,
    "x" * 100_000,
    "",
    "\u200b\ufeff\x00",
    None,
    True,
    [],
    {},
    DEEP,  # 500 levels of nesting, spliced into the JSON text
]


@pytest.mark.parametrize("vendor", VENDORS)
def test_one_extreme_field_costs_that_field_not_the_state(vendor: str) -> None:
    state_path = _state_path(vendor)

    @DETERMINISTIC
    @given(from_schema(_schema(vendor, published=True)), st.data())
    def run(body: Any, data: st.DataObject) -> None:
        body = _ok_envelope(vendor, for_task(vendor, body, TASK))  # (an extreme string id is another job's)
        paths = [p for p in _paths(body) if p != state_path[: len(p)] and p != ("code",)]
        if not paths:
            return
        path = data.draw(st.sampled_from(paths))
        value = copy.deepcopy(data.draw(st.sampled_from(EXTREMES)))  # never share a mutable value
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
        raw = json.dumps(body).replace(json.dumps(DEEP), "[" * 500 + "]" * 500).encode()
        result = check(vendor, body if value != DEEP else json.loads(raw), raw)
        if _readable(vendor, body):
            assert isinstance(result, videojobs.JobStatus), result

    run()


# --- whatever sits in the video field -----------------------------------------------------------------

URLISH = st.one_of(
    st.text(max_size=40),
    st.builds(
        "{}{}{}".format,
        st.sampled_from(["https://", "http://", "HTTP://", "ftp://", "//", "/", "", " https://", "https:", "file://"]),
        st.sampled_from(["cdn.example.net", "", ":80", "[::1]", "h:99999", "例子.测试", "user@h"]),
        st.text(max_size=20),
    ),
)


@pytest.mark.parametrize("vendor", [v for v in VENDORS if CASES[v].url_field is not None])
def test_any_string_in_the_video_field_is_a_video_or_named(vendor: str) -> None:
    """has_video implies SUCCEEDED and every URL absolute http(s); a string that is not kept is named."""
    case = CASES[vendor]
    field = case.url_field
    assert field is not None

    @DETERMINISTIC
    @given(st.sampled_from(case.states), URLISH)
    def run(sc: Any, value: str) -> None:
        result = check(vendor, put(for_task(vendor, sc.body, TASK), field, value))
        assert isinstance(result, videojobs.JobStatus)
        if value in result.video_urls:
            assert result.state is videojobs.State.SUCCEEDED
            assert _absolute_http(value)
        elif value.strip() or result.state is videojobs.State.SUCCEEDED:
            assert any(p.startswith(f"{field_name(field)}:") for p in result.problems), (value, result.problems)

    run()


# --- anything at all ---------------------------------------------------------------------------------

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@DETERMINISTIC
@given(vendor=st.sampled_from(VENDORS), body=ANY_JSON)
def test_arbitrary_json_never_escapes_the_hierarchy(vendor: str, body: Any) -> None:
    check(vendor, body)


@DETERMINISTIC
@given(vendor=st.sampled_from(VENDORS), raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_the_hierarchy(vendor: str, raw: bytes) -> None:
    result = fetch(vendor, raw)
    assert isinstance(result, (videojobs.JobStatus, videojobs.VideoJobsError))


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_huge_body_within_the_limit_is_read(vendor: str) -> None:
    body = for_task(vendor, CASES[vendor].states[0].body, TASK)
    body["padding"] = "x" * 2_000_000
    result = check(vendor, body)
    assert isinstance(result, videojobs.JobStatus)
    assert result.vendor == vendor
