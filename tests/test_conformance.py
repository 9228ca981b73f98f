"""The conformance suite: every vendor runs every test, supplying only its VendorCase.

Sync and async clients are checked against the same expectations over httpx.MockTransport.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import videojobs
from scripts import specs
from tests.cases import CASES, VENDORS, StateCase, all_states, field_name, for_task, put, state_id, without
from tests.conftest import KEYS, Recorder, async_client, sync_client
from tests.spec_check import documented_states, patched_doc
from videojobs._adapter import NO_VIDEO

STATES = all_states()
IDS = [state_id(x) for x in STATES]


def _check(status: videojobs.JobStatus, slug: str, sc: StateCase) -> None:
    case = CASES[slug]
    assert status.vendor == slug
    assert status.task_id == "task/1"
    assert status.state == videojobs.State(sc.state)
    assert status.vendor_state == sc.vendor_state
    assert status.progress == pytest.approx(sc.progress) if sc.progress is not None else status.progress is None
    assert status.video_urls == sc.video_urls
    assert status.video_url == (sc.video_urls[0] if sc.video_urls else None)
    assert status.video_id == sc.video_id
    assert isinstance(status.raw, case.model_class())
    assert status.is_terminal == (sc.state in ("succeeded", "failed", "canceled"))
    if sc.state == "failed":
        assert status.error is not None
        assert status.error.message
        if sc.error_message:
            assert status.error.message == sc.error_message
        assert status.error.code == sc.error_code
    elif sc.state == "canceled":
        assert status.error is None or status.error.message  # why it ended, when the vendor says
    else:
        assert status.error is None  # an error object on a live or finished job is a problem, not its error
    assert status.has_video == (sc.state == "succeeded")  # a video counts only on a succeeded job
    assert status.to_dict()["has_video"] == status.has_video
    assert status.problems == ()  # a documented answer reads cleanly
    for stamp in (status.created_at, status.updated_at, status.completed_at, status.expires_at):
        assert stamp is None or stamp.tzinfo is not None


@pytest.mark.parametrize(("slug", "sc"), STATES, ids=IDS)
def test_documented_state_sync(slug: str, sc: StateCase) -> None:
    rec = Recorder(httpx.Response(200, json=for_task(slug, sc.body, "task/1")))
    with sync_client(rec) as client:
        status = client.status(f"{slug}:task/1")
        assert client.vendor(slug).status("task/1") == status
    _check(status, slug, sc)
    assert str(rec.requests[0].url) == CASES[slug].base_url + CASES[slug].path.format(id="task%2F1")


@pytest.mark.anyio
@pytest.mark.parametrize(("slug", "sc"), STATES, ids=IDS)
async def test_documented_state_async(slug: str, sc: StateCase) -> None:
    rec = Recorder(httpx.Response(200, json=for_task(slug, sc.body, "task/1")))
    async with async_client(rec) as client:
        status = await client.status(f"{slug}:task/1")
    _check(status, slug, sc)


@pytest.mark.parametrize("slug", VENDORS)
def test_every_spec_status_value_is_mapped(slug: str) -> None:
    """A vendor adding a state is caught when its spec is regenerated."""
    from videojobs._registry import adapter_class

    documented = documented_states(slug)
    assert documented, f"{slug}: no status values found in its spec"
    missing = documented - set(adapter_class(slug).states)
    assert not missing, f"{slug}: the adapter does not map {sorted(missing)}"
    assert {sc.vendor_state for sc in CASES[slug].states} >= documented, "tests/cases.py must cover every state"


@pytest.mark.parametrize("slug", VENDORS)
def test_default_base_url_is_the_specs_server(slug: str) -> None:
    from videojobs._registry import adapter_class

    assert adapter_class(slug).default_base_url == patched_doc(slug)["servers"][0]["url"]
    assert adapter_class(slug).name == slug


def _with_state(slug: str, value: str, sc: StateCase | None = None) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps((sc or CASES[slug].states[1]).body))
    target = body
    for key in CASES[slug].enum_field[:-1]:
        target = target[key]
    target[CASES[slug].enum_field[-1]] = value
    return for_task(slug, body, "t1")  # the tests ask about t1


@pytest.mark.parametrize("value", [5, ["done"], {"word": "done"}, True], ids=["number", "array", "object", "bool"])
@pytest.mark.parametrize("slug", VENDORS)
def test_a_state_of_the_wrong_type_is_named_with_its_type_not_as_missing(slug: str, value: Any) -> None:
    body = _with_state(slug, value)
    with (
        sync_client(Recorder(httpx.Response(200, json=body))) as client,
        pytest.raises(videojobs.MalformedResponseError) as info,
    ):
        client.status(f"{slug}:t1")
    kind = {int: "a number", list: "an array", dict: "an object", bool: "a boolean"}[type(value)]
    where = ".".join(CASES[slug].enum_field)
    assert f"no readable state: {where}" in str(info.value)
    assert kind in str(info.value)
    assert "missing" not in str(info.value)


@pytest.mark.parametrize("slug", VENDORS)
def test_unknown_state_is_unknown_not_an_error(slug: str) -> None:
    with sync_client(Recorder(httpx.Response(200, json=_with_state(slug, "paused_for_review")))) as client:
        status = client.status(f"{slug}:t1")
    assert status.state is videojobs.State.UNKNOWN
    assert status.vendor_state == "paused_for_review"
    assert not status.is_terminal
    where = ".".join(CASES[slug].enum_field)
    assert status.problems == (
        f"{where}: 'paused_for_review' is not a state the vendor documents; the job's state is unknown",
    )


def test_a_table_s_words_in_several_cases_are_one_word_unless_they_name_different_states() -> None:
    """A plugin's table with ``Done``, ``done`` and ``DONE`` read ``"DoNe"`` as UNKNOWN (taken for
    ambiguous); words that fold alike but name different states stay ambiguous."""
    from videojobs._adapter import _folded

    S, F, C = videojobs.State.SUCCEEDED, videojobs.State.FAILED, videojobs.State.CANCELED
    assert _folded({"Done": S, "done": S, "DONE": S})["done"] == (S, "Done")
    assert "failed" not in _folded({"Failed": F, "failed": C})


@pytest.mark.parametrize(("slug", "sc"), STATES, ids=IDS)
def test_a_documented_state_word_in_another_case_or_spaced_is_read_as_that_word(slug: str, sc: StateCase) -> None:
    """``"Done"``, ``" finished"``: UNKNOWN, which never ends (a wait ran to its deadline on a
    finished job) and whose video is left out. Read as the documented word, and named."""
    odd = f" {sc.vendor_state.upper()} "
    with sync_client(Recorder(httpx.Response(200, json=_with_state(slug, odd, sc)))) as client:
        status = client.status(f"{slug}:t1")
    assert status.state.value == sc.state
    assert status.vendor_state == odd  # what the vendor said
    assert status.has_video == (sc.state == "succeeded")
    where = ".".join(CASES[slug].enum_field)
    assert status.problems == (f"{where}: {odd!r} read as {sc.vendor_state!r}, the word the vendor documents",)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", VENDORS)
@pytest.mark.parametrize(
    ("http_status", "cls"),
    [
        (401, videojobs.AuthenticationError),
        (403, videojobs.AuthenticationError),
        (404, videojobs.NotFoundError),
        (400, videojobs.APIError),
        (422, videojobs.APIError),
        (429, videojobs.RateLimitError),
        (500, videojobs.ServerError),
        (502, videojobs.ServerError),
        (520, videojobs.ServerError),
    ],
)
def test_error_status_maps_to_its_class(slug: str, http_status: int, cls: type[Exception]) -> None:
    rec = Recorder(httpx.Response(http_status, json={"message": "nope"}))
    with sync_client(rec, max_retries=0) as client, pytest.raises(cls) as info:
        client.status(f"{slug}:t1")
    exc = info.value
    assert type(exc) is cls
    assert exc.vendor == slug
    assert exc.status_code == http_status
    assert exc.message == "nope"
    assert exc.raw == b'{"message":"nope"}'
    assert slug in str(exc)
    assert f"HTTP {http_status}" in str(exc)


@pytest.mark.parametrize("slug", [s for s in VENDORS if CASES[s].error_body is not None])
def test_vendor_error_body_fills_code_and_message(slug: str) -> None:
    case = CASES[slug]
    rec = Recorder(httpx.Response(case.error_status or 400, json=case.error_body))
    with sync_client(rec, max_retries=0) as client, pytest.raises(videojobs.APIError) as info:
        client.status(f"{slug}:t1")
    assert info.value.code == case.error_code
    assert info.value.message == case.error_message
    assert info.value.raw == json.dumps(case.error_body, separators=(",", ":")).encode()


@pytest.mark.parametrize("slug", ["duomi", "ezmodel"])
def test_an_answer_with_more_odd_fields_than_the_salvage_can_tell_apart_keeps_its_state(slug: str) -> None:
    """Duomi's videos with 300 nulls among them, ezmodel's metadata a list of 300 numbers: past
    MAX_SALVAGE_TRIALS the answer was a MalformedResponseError, "no readable state", though its
    state was there. Now what the spec requires is read, with the fields that fit whole, and said."""
    from videojobs._adapter import TOO_MANY_ODD

    body: dict[str, Any] = json.loads(json.dumps(CASES[slug].first("succeeded").body))
    if slug == "duomi":
        body["data"]["videos"] = [{"url": f"https://cdn.example/{i}.mp4"} for i in range(300)] + [None] * 300
    else:
        body["metadata"] = list(range(300))
    with sync_client(Recorder(httpx.Response(200, json=for_task(slug, body, "t1")))) as client:
        status = client.status(f"{slug}:t1")
    assert status.state is videojobs.State.SUCCEEDED
    assert TOO_MANY_ODD in status.problems
    assert status.has_video == (slug == "ezmodel")  # its URL fits whole; Duomi's list did not
    assert status.has_video or NO_VIDEO in status.problems


def test_a_megabyte_error_code_or_state_word_is_cut_as_a_message_is() -> None:
    """The message of a failed job was cut to 2,000 characters and named; its code, and an unknown
    state word, were kept whole: every line showing the status (a repr, the CLI's row and
    --json) was a megabyte."""
    from tests.cases import EZ_FAILED, EZ_PROCESSING
    from videojobs._adapter import MAX_VENDOR_WORD

    failed = {**EZ_FAILED, "id": "t1", "error": {"message": "boom", "code": "c" * 1_000_000}}
    with sync_client(Recorder(httpx.Response(200, json=failed))) as client:
        status = client.status("ezmodel:t1")
    assert status.error is not None
    assert status.error.code == "c" * MAX_VENDOR_WORD + "…"
    assert any("error code is 1000000 characters" in problem for problem in status.problems)
    odd = {**EZ_PROCESSING, "id": "t1", "status": "s" * 3_000_000}
    with sync_client(Recorder(httpx.Response(200, json=odd))) as client:
        status = client.status("ezmodel:t1")
    assert status.state is videojobs.State.UNKNOWN
    assert status.vendor_state == "s" * MAX_VENDOR_WORD + "…"
    assert len(repr(status)) < 5_000


def test_ezmodel_error_null_on_a_job_still_going_is_no_problem() -> None:
    """OpenAI (whose shape ezmodel's is) sends ``"error": null`` on every video that has not
    failed: the field left out, not a problem on every poll of a clean answer."""
    from tests.cases import EZ_PROCESSING

    with sync_client(Recorder(httpx.Response(200, json={**EZ_PROCESSING, "id": "t1", "error": None}))) as client:
        status = client.status("ezmodel:t1")
    assert status.state is videojobs.State.RUNNING
    assert status.problems == ()


@pytest.mark.parametrize("slug", ["vozo", "jimmyai"])
def test_a_vendors_error_message_is_cut_as_every_other_one_is(slug: str) -> None:
    """A top-level ``message`` (Vozo's 400) or an envelope's ``msg`` (JimmyAI) of a megabyte was
    kept whole in the error (and its line in the CLI and the logs); ``{error: {message}}`` was cut."""
    from videojobs._translate import SNIPPET

    body = (
        {"code": "4" * 100_000, "msg": "x" * 1_000_000}
        if slug == "jimmyai"
        else {"code": "E1", "message": "x" * 1_000_000}
    )
    rec = Recorder(httpx.Response(200 if slug == "jimmyai" else 400, json=body))
    with sync_client(rec) as client, pytest.raises(videojobs.APIError) as info:
        client.status(f"{slug}:t1")
    assert info.value.message == "x" * SNIPPET
    assert len(info.value.code or "") <= SNIPPET  # an envelope's code too
    assert len(info.value.raw or b"") > 1_000_000  # the rest stays in raw


def test_ezmodel_error_code_without_a_message_is_kept() -> None:
    """The page's error table marks neither ``message`` nor ``code`` required; the spec required
    ``message``, so an error with its code only was left out whole (the code with it)."""
    from tests.cases import EZ_FAILED

    body = {**EZ_FAILED, "id": "t1", "error": {"code": "content_policy_violation"}}
    with sync_client(Recorder(httpx.Response(200, json=body))) as client:
        status = client.status("ezmodel:t1")
    assert status.state is videojobs.State.FAILED
    assert status.error == videojobs.JobError(
        code="content_policy_violation", message="ezmodel reported the job failed without an error message"
    )
    assert status.problems == ()


def test_jimmyai_envelope_error_on_http_200_is_typed_by_its_code() -> None:
    answers = [
        ({"code": "40401", "msg": "task not found"}, videojobs.NotFoundError),
        ({"code": "40100", "msg": "invalid token", "data": None}, videojobs.AuthenticationError),
        ({"code": "50000", "msg": "internal"}, videojobs.ServerError),
        ({"code": "E_QUOTA", "msg": "quota exhausted"}, videojobs.APIError),
    ]
    for body, cls in answers:
        with sync_client(Recorder(httpx.Response(200, json=body)), max_retries=0) as client, pytest.raises(cls) as info:
            client.status("jimmyai:t1")
        assert type(info.value) is cls
        assert info.value.code == body["code"]
        assert info.value.message == body["msg"]
        assert info.value.status_code == 200


def test_html_error_page_is_quoted_not_parsed() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    rec = Recorder(httpx.Response(502, content=page, headers={"content-type": "text/html"}))
    with sync_client(rec, max_retries=0) as client, pytest.raises(videojobs.ServerError) as info:
        client.status("duomi:t1")
    assert "502 Bad Gateway" in str(info.value)
    assert info.value.raw == page


def test_status_520_is_a_server_error_with_its_body() -> None:
    """A status outside the HTTP registry (Cloudflare's 520) is a ServerError that keeps the answer."""
    rec = Recorder(httpx.Response(520, content=b"origin error"))
    with sync_client(rec, max_retries=0) as client, pytest.raises(videojobs.ServerError) as info:
        client.status("vozo:t1")
    assert info.value.status_code == 520
    assert info.value.raw == b"origin error"
    assert "origin error" in str(info.value)


@pytest.mark.parametrize("slug", VENDORS)
@pytest.mark.parametrize(
    "content",
    [b"<html>maintenance</html>", b"", b"[1, 2, 3]", b'"done"', b"{not json", '{"status": "done"}'.encode("utf-16"),
     b'{"status": "\xff"}'],
    ids=["html", "empty", "list", "string", "broken", "utf-16", "not utf-8"],
)  # fmt: skip
def test_malformed_body_keeps_the_raw_bytes(slug: str, content: bytes) -> None:
    rec = Recorder(httpx.Response(200, content=content))
    with sync_client(rec) as client, pytest.raises(videojobs.MalformedResponseError) as info:
        client.status(f"{slug}:t1")
    assert info.value.raw == content
    assert info.value.vendor == slug
    assert info.value.status_code == 200
    assert len(rec.requests) == 1, "a malformed body is not retried"


@pytest.mark.parametrize("slug", VENDORS)
def test_an_answer_with_a_utf8_bom_is_read(slug: str) -> None:
    state = CASES[slug].states[-1]
    rec = Recorder(httpx.Response(200, content=b"\xef\xbb\xbf" + json.dumps(for_task(slug, state.body, "t1")).encode()))
    with sync_client(rec) as client:
        assert client.status(f"{slug}:t1").state.value == state.state


@pytest.mark.parametrize(
    ("slug", "body", "field"),
    [
        ("duomi", {**CASES["duomi"].states[1].body, "progress": "37%"}, "progress"),
        ("duomi", {**CASES["duomi"].states[1].body, "data": {"videos": "https://x"}}, "data.videos"),
        ("duomi", {k: v for k, v in CASES["duomi"].states[1].body.items() if k != "progress"}, "progress"),
        ("ezmodel", {**CASES["ezmodel"].states[1].body, "created_at": "yesterday"}, "created_at"),
        ("ezmodel", {**CASES["ezmodel"].states[1].body, "error": "oops"}, "error"),
        ("ezmodel", {**CASES["ezmodel"].states[2].body, "error": {"code": "x", "message": "late"}}, "error"),
        ("colossyan", {"status": "generating", "progress": [1], "maximumProgress": 10}, "progress"),
        ("colossyan", {"status": "generating", "progress": 5, "maximumProgress": 0}, "progress"),
        ("colossyan", {"status": "finished", "progress": 10, "maximumProgress": 10, "videoId": "  "}, "videoId"),
        ("colossyan", {"status": "finished", "progress": 10, "maximumProgress": 10, "videoId": "\u0000"}, "videoId"),
        ("vozo", {"status": "done", "video_url": 42}, "video_url"),
        ("jimmyai", {"code": "20000", "data": {"status": "processing", "progress": float("nan")}}, "data.progress"),
        ("jimmyai", {"code": "20000", "data": {"status": "completed", "completed_at": 2**62}}, "data.completed_at"),
    ],
    ids=[
        "duomi-progress-string",
        "duomi-videos-string",
        "duomi-no-progress",
        "ezmodel-bad-time",
        "ezmodel-error-string",
        "ezmodel-error-on-completed",
        "colossyan-progress-list",
        "colossyan-maximum-zero",
        "colossyan-blank-video-id",
        "colossyan-nul-video-id",
        "vozo-url-int",
        "jimmyai-nan",
        "jimmyai-implausible-time",
    ],
)
def test_an_odd_field_costs_that_field_not_the_state(slug: str, body: dict[str, Any], field: str) -> None:
    raw = json.dumps(for_task(slug, body, "t1")).encode()
    with sync_client(Recorder(httpx.Response(200, content=raw))) as client:
        status = client.status(f"{slug}:t1")
    word = body.get("state") or body.get("status") or body["data"]["status"]
    assert status.vendor_state == word
    assert any(p.startswith(f"{field}:") for p in status.problems), status.problems
    if status.state not in (videojobs.State.FAILED, videojobs.State.CANCELED):
        assert status.error is None
    if field == "videoId":  # what the user reads means what it says: no usable id, no video
        assert status.video_id is None
        assert not status.has_video


@pytest.mark.parametrize(
    ("slug", "body"),
    [
        ("duomi", {k: v for k, v in CASES["duomi"].states[1].body.items() if k != "state"}),
        ("duomi", {**CASES["duomi"].states[1].body, "state": 3}),
        ("vozo", {"video_url": "https://x"}),
        ("vozo", ["status", "done"]),
        ("ezmodel", {"id": "t1", "status": {"value": "completed"}}),
        ("jimmyai", {"code": "20000", "msg": "ok"}),
        ("jimmyai", {"msg": "no code"}),
        ("jimmyai", {"code": "20000", "data": {"status": None}}),
    ],
    ids=[
        "duomi-no-state",
        "duomi-state-number",
        "vozo-no-status",
        "vozo-not-an-object",
        "ezmodel-status-object",
        "jimmyai-no-data",
        "jimmyai-no-code",
        "jimmyai-null-status",
    ],
)
def test_an_unreadable_state_is_malformed(slug: str, body: Any) -> None:
    raw = json.dumps(body).encode()
    with (
        sync_client(Recorder(httpx.Response(200, content=raw))) as client,
        pytest.raises(videojobs.MalformedResponseError) as info,
    ):
        client.status(f"{slug}:t1")
    assert info.value.raw == raw
    assert info.value.__cause__ is not None
    assert "no readable state" in str(info.value)


# --- meaning: what a user reads ----------------------------------------------------------------
# Every vendor runs these with only its fixtures (tests/cases.py: url_field, video_field,
# progress_field): has_video and video_urls mean "a succeeded job's video", and what an
# answer lacks or gets wrong is named in problems, never dropped silently.

URL_VENDORS = [s for s in VENDORS if CASES[s].url_field is not None]
PROGRESS_VENDORS = [s for s in VENDORS if CASES[s].progress_field is not None]
GOOD_URL = "https://cdn.example.net/videos/v1.mp4?sig=abc"


def _read(slug: str, body: Any) -> videojobs.JobStatus:
    with sync_client(Recorder(httpx.Response(200, json=for_task(slug, body, "t1")))) as client:
        return client.status(f"{slug}:t1")


def _names(status: videojobs.JobStatus, field: str) -> bool:
    return any(p.startswith(f"{field}:") for p in status.problems)


@pytest.mark.parametrize("slug", VENDORS)
def test_a_succeeded_job_without_a_video_says_so(slug: str) -> None:
    case = CASES[slug]
    status = _read(slug, without(case.first("succeeded").body, case.video_field))
    assert status.state is videojobs.State.SUCCEEDED
    assert not status.has_video
    assert status.video_urls == ()
    assert NO_VIDEO in status.problems
    assert status.to_dict()["has_video"] is False
    assert NO_VIDEO in status.to_dict()["problems"]


def test_the_readme_quotes_the_no_video_problem_as_it_is() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"`{NO_VIDEO}`" in readme


@pytest.mark.parametrize("slug", URL_VENDORS)
def test_a_url_on_a_job_that_did_not_succeed_is_not_a_video(slug: str) -> None:
    """A queued, running, failed or canceled job with a URL: has_video False, the URL left out and named."""
    case = CASES[slug]
    assert case.url_field is not None
    for sc in case.states:
        if sc.state == "succeeded":
            continue
        status = _read(slug, put(sc.body, case.url_field, GOOD_URL))
        assert status.state is videojobs.State(sc.state)
        assert not status.has_video, sc.vendor_state
        assert status.video_urls == ()
        assert status.to_dict()["video_urls"] == []
        assert status.to_dict()["has_video"] is False
        assert _names(status, field_name(case.url_field)), status.problems
        assert NO_VIDEO not in status.problems
        if sc.state == "failed":
            assert status.error is not None  # what ended it still says so


LIST_VENDORS = [s for s in URL_VENDORS if any(isinstance(k, int) for k in CASES[s].url_field or ())]
"""Vendors whose answer lists its videos (Duomi's ``data.videos``)."""


@pytest.mark.parametrize("slug", LIST_VENDORS)
def test_a_video_listed_twice_is_one_video(slug: str) -> None:
    """The same URL twice in one answer: one video (``download_all`` would save it as two files), the repeat named."""
    case = CASES[slug]
    assert case.url_field is not None
    at = next(i for i, k in enumerate(case.url_field) if isinstance(k, int))
    again = (*case.url_field[:at], 1, *case.url_field[at + 1 :])
    body = put(put(case.first("succeeded").body, case.url_field, GOOD_URL), again, GOOD_URL)
    status = _read(slug, body)
    assert status.video_urls == (GOOD_URL,)
    assert status.has_video
    assert f"{field_name(again)}: the same URL as a video before it; left out" in status.problems
    other = GOOD_URL.replace(".mp4", "-2.mp4")
    assert _read(slug, put(body, again, other)).video_urls == (GOOD_URL, other)  # two videos stay two


NOT_VIDEOS = [
    "",
    "   ",
    "nisi eu",
    "ftp://cdn.example.net/v.mp4",
    "/relative/v.mp4",
    "//cdn.example.net/v.mp4",
    "cdn.example.net/v.mp4",
    "https://",
    "http://:80/v.mp4",
    "http://cdn.example.net:99999/v.mp4",
    "http://[::1/v.mp4",
    "javascript:alert(1)",
    "file:///etc/passwd",
    " https://cdn.example.net/v.mp4",
    "https://cdn.example.net/v.mp4\n",
    "https://cdn.example.net/\x1b]0;owned\x07v.mp4",
]


@pytest.mark.parametrize("value", NOT_VIDEOS, ids=repr)
@pytest.mark.parametrize("slug", URL_VENDORS)
def test_a_video_field_that_is_not_an_http_url_is_left_out_and_named(slug: str, value: str) -> None:
    case = CASES[slug]
    assert case.url_field is not None
    done = case.first("succeeded")
    status = _read(slug, put(done.body, case.url_field, value))
    assert status.state is videojobs.State.SUCCEEDED
    assert value not in status.video_urls
    assert set(status.video_urls) <= set(done.video_urls)  # the vendor's other videos stay (Duomi's list)
    assert _names(status, field_name(case.url_field)), status.problems
    assert status.has_video == bool(status.video_urls)
    assert (NO_VIDEO in status.problems) == (not status.video_urls)


@pytest.mark.parametrize("slug", URL_VENDORS)
def test_an_empty_video_field_on_a_job_still_going_is_no_problem(slug: str) -> None:
    """``""`` before the job ends means "no video yet" (a spec that requires the field sends it)."""
    case = CASES[slug]
    assert case.url_field is not None
    for sc in case.states:
        if sc.state != "succeeded":
            status = _read(slug, put(sc.body, case.url_field, ""))
            assert status.video_urls == ()
            assert status.problems == (), sc.vendor_state


@pytest.mark.parametrize(
    "url", ["HTTPS://CDN.EXAMPLE.NET/V.MP4", "http://[::1]:8080/v.mp4", "https://例子.测试/视频.mp4", GOOD_URL]
)
@pytest.mark.parametrize("slug", URL_VENDORS)
def test_any_absolute_http_url_is_a_video(slug: str, url: str) -> None:
    case = CASES[slug]
    assert case.url_field is not None
    status = _read(slug, put(case.first("succeeded").body, case.url_field, url))
    assert status.video_url == url
    assert status.has_video
    assert status.problems == ()


@pytest.mark.parametrize("fraction", [-0.5, -0.01, 1.0000001, 1.01, 1.5, 10.0])
@pytest.mark.parametrize("slug", PROGRESS_VENDORS)
def test_progress_outside_its_range_is_none_and_named(slug: str, fraction: float) -> None:
    """Not clamped, by any amount: the README's rule for every out-of-range field."""
    case = CASES[slug]
    assert case.progress_field is not None
    status = _read(slug, put(case.first("running").body, case.progress_field, case.progress_full * fraction))
    assert status.state is videojobs.State.RUNNING
    assert status.progress is None
    assert _names(status, field_name(case.progress_field)), status.problems


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("slug", PROGRESS_VENDORS)
def test_progress_at_the_ends_of_its_range_is_read(slug: str, fraction: float) -> None:
    case = CASES[slug]
    assert case.progress_field is not None
    status = _read(slug, put(case.first("running").body, case.progress_field, round(case.progress_full * fraction)))
    assert status.progress == fraction
    assert status.problems == ()


@pytest.mark.parametrize("slug", PROGRESS_VENDORS)
def test_a_succeeded_job_is_done_whatever_progress_it_says(slug: str) -> None:
    case = CASES[slug]
    assert case.progress_field is not None
    status = _read(slug, put(case.first("succeeded").body, case.progress_field, case.progress_full * 1.5))
    assert status.progress == 1.0
    assert _names(status, field_name(case.progress_field))  # what the vendor said is still named


def test_colossyan_progress_without_its_maximum_is_named_not_guessed() -> None:
    """Colossyan's spec gives progress no scale of its own: without maximumProgress it cannot be read."""
    for body in (
        {"status": "generating", "progress": 50, "videoId": "v"},
        {"status": "generating", "progress": 0.5, "videoId": "v"},
        {"status": "generating", "progress": 50, "maximumProgress": "200", "videoId": "v"},
    ):
        status = _read("colossyan", body)
        assert status.progress is None
        assert _names(status, "progress"), status.problems
    alone = _read("colossyan", {"status": "generating", "maximumProgress": 200, "videoId": "v"})
    assert alone.progress is None
    assert alone.problems == ()  # no progress reported: nothing was dropped
    for scale in (0, 0.0):
        nothing_yet = _read("colossyan", {"status": "in_queue", "progress": 0, "maximumProgress": scale})
        assert nothing_yet.progress is None
        assert nothing_yet.problems == ()  # 0 of 0: no scale yet, and no progress lost


def test_colossyan_video_id_counts_only_on_a_finished_job() -> None:
    failed = _read("colossyan", {"status": "failed", "videoId": "v-9"})
    assert (failed.video_id, failed.has_video) == ("v-9", False)
    finished = _read("colossyan", {"status": "finished", "videoId": ""})
    assert (finished.video_id, finished.has_video) == (None, False)
    assert NO_VIDEO in finished.problems


def test_jimmyai_expiry_without_completed_at_is_named() -> None:
    body = CASES["jimmyai"].first("succeeded").body
    status = _read("jimmyai", without(body, ("data", "completed_at")))
    assert status.has_video
    assert status.expires_at is None
    assert "expires_at: unknown, the answer has no usable data.completed_at" in status.problems
    bad = _read("jimmyai", put(body, ("data", "completed_at"), 12))
    assert bad.expires_at is None
    assert _names(bad, "data.completed_at")
    assert _names(bad, "expires_at")
    failed = _read("jimmyai", CASES["jimmyai"].first("failed").body)
    assert failed.expires_at is None
    assert failed.problems == ()  # no link, nothing to expire


# --- which job an answer is for ------------------------------------------------------------------
# A proxy or server that leaves a second answer on a kept-alive connection made the next status
# call, about another job, read it as its own: another job's state and video, no problem named.
# Where the vendor's answer repeats the job's id (documented: cases.py's id_field), it is checked.

ECHO_VENDORS = [s for s in VENDORS if CASES[s].id_field]


@pytest.mark.parametrize("slug", VENDORS)
def test_the_adapter_checks_the_id_its_vendor_documents_and_no_other(slug: str) -> None:
    from videojobs._registry import adapter_class

    assert adapter_class(slug).echoed_id == CASES[slug].id_field


@pytest.mark.parametrize("slug", ECHO_VENDORS)
def test_an_answer_naming_another_job_is_malformed_not_that_jobs_status(slug: str) -> None:
    from videojobs._adapter import ForeignAnswer

    sc = CASES[slug].first("succeeded")
    raw = json.dumps(for_task(slug, sc.body, "job-1")).encode()
    with (
        sync_client(Recorder(httpx.Response(200, content=raw))) as client,
        pytest.raises(videojobs.MalformedResponseError) as info,
    ):
        client.status(f"{slug}:job-2")
    assert info.value.vendor == slug
    assert info.value.raw == raw  # kept, bounded and scrubbed as any answer is
    assert isinstance(info.value.__cause__, ForeignAnswer)
    where = ".".join(CASES[slug].id_field)
    assert f"task job-2: the answer is for another job ({where} is 'job-1')" in str(info.value)
    with sync_client(Recorder(httpx.Response(200, content=raw))) as client:
        status = client.status(f"{slug}:job-1")  # the job it names: its status
    assert status.has_video
    assert status.problems == ()


@pytest.mark.parametrize("value", ["absent", None, ""], ids=["absent", "null", "empty"])
@pytest.mark.parametrize("slug", ECHO_VENDORS)
def test_an_answer_without_the_job_s_id_is_read(slug: str, value: str | None) -> None:
    """Degrade, don't drop: an answer that does not say which job it is for says nothing against it."""
    body = CASES[slug].first("succeeded").body
    body = without(body, CASES[slug].id_field) if value == "absent" else put(body, CASES[slug].id_field, value)
    status = _read(slug, body)
    assert status.has_video
    assert status.problems == ()


@pytest.mark.parametrize("slug", ECHO_VENDORS)
def test_an_id_of_another_type_is_named_not_compared(slug: str) -> None:
    status = _read(slug, put(CASES[slug].first("succeeded").body, CASES[slug].id_field, 42))
    assert status.has_video
    where = ".".join(CASES[slug].id_field)
    assert status.problems == (
        f"{where}: expected the job's id, got a number; which job the answer is for is not checked",
    )


def test_the_id_is_compared_exactly() -> None:
    """No case folding, trimming or number reading: ``T1``, `` t1`` and ``t1`` are three jobs."""
    for other in ("T1", " t1", "t1 ", "t1\u0000"):
        body = {**CASES["ezmodel"].states[1].body, "id": other}
        with (
            sync_client(Recorder(httpx.Response(200, json=body))) as client,
            pytest.raises(videojobs.MalformedResponseError, match="another job"),
        ):
            client.status("ezmodel:t1")


# --- timestamps ---------------------------------------------------------------------------------


def test_timestamps_are_aware_utc() -> None:
    t0 = datetime(2024, 1, 15, 16, 0, tzinfo=UTC)
    with sync_client(Recorder(httpx.Response(200, json=CASES["ezmodel"].states[2].body))) as client:
        s = client.status("ezmodel:vid_abc123xyz456")
    assert (s.created_at, s.completed_at) == (t0, datetime(2024, 1, 15, 16, 2, tzinfo=UTC))
    assert s.expires_at == datetime(2024, 1, 16, 16, 0, tzinfo=UTC)
    with sync_client(Recorder(httpx.Response(200, json=CASES["duomi"].states[1].body))) as client:
        s = client.status("duomi:x")
    assert s.created_at == t0
    assert s.updated_at == datetime(2024, 1, 15, 16, 1, 35, tzinfo=UTC)


def test_jimmyai_link_expires_three_days_after_completion_and_ms_times_are_understood() -> None:
    body = CASES["jimmyai"].states[4].body
    with sync_client(Recorder(httpx.Response(200, json=body))) as client:
        s = client.status("jimmyai:jt-42")
    assert s.completed_at == datetime(2024, 1, 15, 16, 3, tzinfo=UTC)
    assert s.expires_at == datetime(2024, 1, 18, 16, 3, tzinfo=UTC)
    ms = {**body, "data": {**body["data"], "created_at": 1705334400123}}
    with sync_client(Recorder(httpx.Response(200, json=ms))) as client:
        assert client.status("jimmyai:jt-42").created_at == datetime(2024, 1, 15, 16, 0, 0, 123000, tzinfo=UTC)


def test_only_the_adapter_that_assumes_milliseconds_reads_them() -> None:
    """The millisecond guess is JimmyAI's adapter's assumption; for ezmodel such a time is a problem."""
    body = {**CASES["ezmodel"].states[2].body, "id": "v1", "created_at": 1705334400123}
    with sync_client(Recorder(httpx.Response(200, json=body))) as client:
        s = client.status("ezmodel:v1")
    assert s.created_at is None
    assert any(p.startswith("created_at:") for p in s.problems)


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", VENDORS)
def test_the_key_reaches_every_vendor_from_arguments_and_env(slug: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = for_task(slug, CASES[slug].states[0].body, "t")
    rec = Recorder(httpx.Response(200, json=body))
    with sync_client(rec) as client:
        client.status(f"{slug}:t")
    monkeypatch.setenv(f"{slug.upper()}_API_KEY", "env-key-77")
    monkeypatch.setenv(f"{slug.upper()}_BASE_URL", "https://proxy.example.net/v/")
    with sync_client(rec, api_keys={}) as client:
        client.status(f"{slug}:t")
    assert rec.requests[0].headers["authorization"] == f"Bearer {KEYS[slug]}"
    assert rec.requests[1].headers["authorization"] == "Bearer env-key-77"
    assert str(rec.requests[1].url).startswith("https://proxy.example.net/v/")


@pytest.mark.anyio
@pytest.mark.parametrize("slug", VENDORS)
async def test_the_key_reaches_every_vendor_async(slug: str) -> None:
    rec = Recorder(httpx.Response(200, json=for_task(slug, CASES[slug].states[0].body, "t")))
    async with async_client(rec) as client:
        await client.status(f"{slug}:t")
    assert rec.requests[0].headers["authorization"] == f"Bearer {KEYS[slug]}"


def test_every_vendor_has_a_case_and_a_spec_the_sandbox_serves() -> None:
    """The registry is the one list of vendors: each has its fixtures here and its spec installed."""
    from videojobs.sandbox._spec import installed_vendors

    assert set(CASES) == set(VENDORS)
    assert set(VENDORS) <= set(installed_vendors())
    assert set(specs.vendors()) <= set(VENDORS)
