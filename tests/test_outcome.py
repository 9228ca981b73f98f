"""One shape for a job's outcome: the CLI's --json lines and the Celery callback's payload."""

from __future__ import annotations

import errno
import json
from typing import Any

import pytest

import videojobs
from videojobs._status import outcome_dict
from videojobs.celery._poll import payload

RUNNING = videojobs.JobStatus(vendor="vozo", task_id="t", state=videojobs.State.RUNNING, progress=0.4)


def _errors() -> list[videojobs.VideoJobsError]:
    timeout = videojobs.WaitTimeout("did not finish", vendor="vozo", last_status=RUNNING)
    lost = videojobs.WaitTimeout("did not finish", vendor="vozo", last_status=None)
    throttled = videojobs.RateLimitError("HTTP 429", vendor="vozo", status_code=429, retry_after=2.0)
    full = videojobs.DownloadError("disk full", vendor="vozo", errno=errno.ENOSPC)
    return [timeout, lost, throttled, full, videojobs.NotFoundError("gone", vendor="vozo", status_code=404)]


@pytest.mark.parametrize("result", [RUNNING, *_errors()], ids=lambda r: type(r).__name__)
def test_every_outcome_has_the_same_keys_and_says_what_ended_it(result: object) -> None:
    body = outcome_dict("vozo:t", result)  # type: ignore[arg-type]
    assert set(body) == set(RUNNING.to_dict()) | {"exception"}
    assert body["ref"] == "vozo:t"
    json.dumps(body)  # JSON-ready as it is
    if isinstance(result, videojobs.JobStatus):
        assert body["exception"] is None
        assert body["state"] == "running"
    else:
        assert body["exception"]["type"] == type(result).__name__
        assert body["exception"]["message"] == result.message
        last = getattr(result, "last_status", None)
        assert body["state"] == (None if last is None else last.state.value)  # a callback can read it


def test_an_errors_dict_carries_what_its_kind_adds() -> None:
    _, _, throttled, full, gone = _errors()
    assert throttled.to_dict()["retry_after"] == 2.0
    assert full.to_dict()["errno"] == errno.ENOSPC
    assert gone.to_dict()["status_code"] == 404
    assert "raw" not in gone.to_dict()  # the vendor's answer stays on the exception


def test_the_celery_payload_is_the_same_shape_for_every_outcome() -> None:
    shapes = {
        frozenset(payload("vozo:t", RUNNING, None, 3)),
        frozenset(payload("vozo:t", None, videojobs.NotFoundError("gone", vendor="vozo"), 1)),
        frozenset(payload("vozo:t", RUNNING, videojobs.NetworkError("down", vendor="vozo"), 9)),
    }
    assert len(shapes) == 1
    assert payload("vozo:t", None, videojobs.NotFoundError("gone", vendor="vozo"), 1)["state"] is None


@pytest.mark.parametrize("vendor", ["duomi", "vozo"])
def test_a_status_an_adapter_names_for_another_job_is_the_job_asked_about(vendor: str) -> None:
    """A plugin adapter that names the job by the vendor's own spelling of its id (upper case
    here): wait_all_list placed results by that name and failed with a bare KeyError. The
    status is the job asked about, and the adapter's slip is named in ``problems``."""
    import attrs

    from tests.cases import CASES
    from videojobs._registry import adapter_class
    from videojobs._translate import Exchange, translate

    base: Any = adapter_class(vendor)

    class Upper(base):  # type: ignore[misc, valid-type]
        def to_status(self, task_id: str, model: Any, fields: Any) -> videojobs.JobStatus:
            return attrs.evolve(super().to_status(task_id, model, fields), task_id=task_id.upper())

    body = json.dumps(CASES[vendor].states[0].body).encode()
    status = translate(Upper(), "abc", Exchange(200, {"content-type": "application/json"}, body))
    assert status.ref == f"{vendor}:abc"
    assert f"the adapter named the job {vendor!r}:'ABC'; it is the one asked about, {vendor!r}:'abc'" in status.problems


def test_a_nan_is_named_as_such_in_problems() -> None:
    """JSON's NaN (Python's json reads it) was reported as a number "too large to use"."""
    from videojobs._adapter import Fields

    fields = Fields()
    assert fields.number(float("nan"), "progress") is None
    assert fields.number(float("inf"), "progress") is None
    assert fields.problems == [
        "progress: expected a finite number, got NaN",
        "progress: expected a finite number, got one too large to use",
    ]


def _every_error() -> list[videojobs.VideoJobsError]:
    """One of each error class videojobs and videojobs.celery export, with what its kind carries."""
    import videojobs.celery

    failed = videojobs.JobStatus(vendor="vozo", task_id="t", state=videojobs.State.FAILED)
    special: dict[type[Any], Any] = {
        videojobs.WaitTimeout: lambda: videojobs.WaitTimeout("late", vendor="vozo", last_status=failed),
        videojobs.JobFailedError: lambda: videojobs.JobFailedError(failed),
        videojobs.RateLimitError: lambda: videojobs.RateLimitError("slow", vendor="vozo", retry_after=3.0),
        videojobs.DownloadError: lambda: videojobs.DownloadError("disk", vendor="vozo", errno=errno.ENOSPC),
        videojobs.celery.AlreadyTrackedError: lambda: videojobs.celery.AlreadyTrackedError(
            "again", ref="vozo:t", state="tracked"
        ),
    }
    classes = {
        cls
        for module in (videojobs, videojobs.celery)
        for name in module.__all__
        if isinstance(cls := getattr(module, name), type) and issubclass(cls, videojobs.VideoJobsError)
    }
    errors = []
    for cls in sorted(classes, key=lambda c: c.__name__):
        error = special[cls]() if cls in special else cls("what happened", vendor="vozo", status_code=500)
        error.ref = "vozo:t"
        errors.append(error)
    return errors


@pytest.mark.parametrize("error", _every_error(), ids=lambda e: type(e).__name__)
def test_every_error_survives_pickle_and_copy_whole(error: videojobs.VideoJobsError) -> None:
    """A process pool (or Celery's pickle serializer) rebuilds an exception from its message
    alone: WaitTimeout, JobFailedError and AlreadyTrackedError could not be rebuilt, and a
    multiprocessing pool's result thread died on them (its caller waited for ever)."""
    import copy
    import pickle

    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(again) is type(error)
        assert str(again) == str(error)
        assert again.to_dict() == error.to_dict()
        assert set(vars(again)) == set(vars(error))


@pytest.mark.parametrize(
    ("ref", "body"),
    [
        ("duomi:t", b'{"state":"error","message":"\\u000b"}'),
        ("ezmodel:t", b'{"id":"t","status":"failed","error":{"message":"  ","code":""}}'),
        ("jimmyai:t", b'{"code":"20000","data":{"status":"failed","error_message":"\\t"}}'),
    ],
    ids=["duomi-vertical-tab", "ezmodel-blank-and-empty-code", "jimmyai-tab"],
)
def test_a_failed_jobs_blank_error_message_is_no_message(ref: str, body: bytes) -> None:
    """A failed job's error said nothing ('job t failed: \\t'): a message with nothing to read is
    the vendor's default, named in problems, and an empty code is no code."""
    import httpx

    vendor = ref.partition(":")[0]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with videojobs.Client(api_keys={vendor: "k" * 20}, transport=transport) as client:
        status = client.status(ref)
    assert status.state is videojobs.State.FAILED
    assert status.error is not None
    assert status.error.message.strip()
    assert status.error.message.isprintable()
    assert status.error.code is None
    assert "error: the vendor's error message is blank (or control characters only)" in status.problems


def test_a_status_rebuilt_from_its_dict_reads_as_the_original() -> None:
    """A status built by hand from ``to_dict()`` data (a Celery on_done task's): ``state`` as its
    value gave has_video False and an AttributeError from is_terminal; one URL as a string was
    a tuple of its characters; bad values were bare ValueErrors."""
    url = "https://videos.example/v.mp4"
    status = videojobs.JobStatus(vendor="vozo", task_id="t", state="succeeded", video_urls=[url])
    assert status.state is videojobs.State.SUCCEEDED
    assert status.has_video
    assert status.is_terminal
    assert status.to_dict()["state"] == "succeeded"
    with pytest.raises(videojobs.UsageError, match=r"state must be a videojobs\.State or one of queued"):
        videojobs.JobStatus(vendor="vozo", task_id="t", state="done")
    with pytest.raises(videojobs.UsageError, match="video_urls and problems are lists of strings, not one str"):
        videojobs.JobStatus(vendor="vozo", task_id="t", state="succeeded", video_urls=url)  # type: ignore[arg-type]
    with pytest.raises(videojobs.UsageError, match=r"progress must be a number between 0\.0 and 1\.0, not 2"):
        videojobs.JobStatus(vendor="vozo", task_id="t", state="running", progress=2)


def test_urls_in_a_sequence_whose_equality_is_not_a_bool_are_taken() -> None:
    """A sequence whose ``==`` is elementwise or refuses (an array's: "the truth value of an
    empty array is ambiguous") is read by its items, as a list is, empty or not."""

    class Elementwise(list[str]):
        def __eq__(self, other: object) -> bool:
            raise ValueError("the truth value of an array is ambiguous")

        __hash__ = None  # type: ignore[assignment]

    url = "https://videos.example/v.mp4"
    for urls, expected in ((Elementwise(), ()), (Elementwise([url]), (url,))):
        status = videojobs.JobStatus(vendor="vozo", task_id="t", state="succeeded", video_urls=urls, problems=urls)
        assert (status.video_urls, status.problems) == (expected, expected)


def test_a_progress_of_any_real_number_type_is_a_float() -> None:
    import decimal
    import fractions

    for value in (decimal.Decimal("0.5"), fractions.Fraction(1, 2), 0.5, 1):
        status = videojobs.JobStatus(vendor="vozo", task_id="t", state="running", progress=value)  # type: ignore[arg-type]
        assert type(status.progress) is float
        assert json.dumps(status.to_dict())  # JSON whatever the caller gave


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"progress": "0.5"}, "progress must be a number between 0.0 and 1.0, not '0.5'"),
        ({"progress": True}, "progress must be a number between 0.0 and 1.0, not True"),
        ({"created_at": "2020-01-01T00:00:00+00:00"}, "created_at must be a timezone-aware datetime, not '2020"),
        ({"video_urls": None}, "video_urls and problems are lists of strings, not None"),
        ({"video_urls": 5}, "video_urls and problems are lists of strings, not 5"),
        ({"problems": [1]}, "video_urls and problems are lists of strings, not (1,)"),
    ],
    ids=["progress-str", "progress-bool", "created-at-iso", "urls-none", "urls-int", "problems-ints"],
)
def test_a_status_built_with_a_value_of_the_wrong_type_is_a_usage_error(kwargs: dict[str, Any], words: str) -> None:
    """These were a bare TypeError or AttributeError (the ISO time is what ``to_dict()`` writes),
    or, for True, a progress of true in ``to_dict()``."""
    with pytest.raises(videojobs.UsageError) as caught:
        videojobs.JobStatus(vendor="vozo", task_id="t", state="running", **kwargs)
    assert str(caught.value).startswith(words)


def test_an_error_pickled_by_an_older_videojobs_has_no_last_status_and_is_read() -> None:
    """Its state (``__dict__``) has no ``last_status``: rebuilt, it reads as None, not an AttributeError."""
    import pickle

    error = videojobs.DownloadError("x", vendor="duomi")
    del error.__dict__["last_status"]  # as an older videojobs pickled it
    again = pickle.loads(pickle.dumps(error))
    assert again.last_status is None
    assert outcome_dict("duomi:t", again)["state"] is None


def test_a_download_error_pickled_by_an_older_videojobs_is_read() -> None:
    """Attributes added since (``name_taken``; ``expires_at``, once ``expired_at``) read as their
    defaults when rebuilt from an older state, not an AttributeError in ``to_dict()`` or the CLI."""
    import pickle

    from videojobs._cli_output import cli_hint

    taken = videojobs.DownloadError("x.mp4 exists", vendor="duomi", errno=17)
    del taken.__dict__["name_taken"]
    expired = videojobs.LinkExpiredError("expired", vendor="duomi")
    del expired.__dict__["expires_at"]
    expired.__dict__["expired_at"] = None
    for old in (taken, expired):
        again = pickle.loads(pickle.dumps(old))
        assert again.to_dict()["name_taken"] is False
        assert cli_hint(again, "download") == ""
    assert pickle.loads(pickle.dumps(expired)).to_dict()["expires_at"] is None


def test_a_failed_jobs_error_carries_its_ref() -> None:
    failed = videojobs.JobStatus(vendor="vozo", task_id="t9", state="failed", error=videojobs.JobError(message="x"))
    with pytest.raises(videojobs.JobFailedError) as caught:
        failed.raise_for_failure()
    assert caught.value.ref == "vozo:t9"
    assert caught.value.to_dict()["ref"] == "vozo:t9"


def test_a_pickled_or_copied_status_keeps_the_vendors_model_whole() -> None:
    """The generated models test ``value is not UNSET``: an unpickled status's ``raw`` held a new
    ``Unset()`` and its ``to_dict()`` was no longer JSON."""
    import copy
    import pickle

    from tests.clocks import SimClock
    from videojobs.sandbox import Sandbox

    sandbox = Sandbox(clock=SimClock())
    with videojobs.Client(
        api_keys=sandbox.api_keys(),
        base_urls=sandbox.base_urls(),
        transport=sandbox.sync_transport(),
        clock=sandbox.clock,
    ) as client:
        for vendor in videojobs.known_vendors():
            status = client.status(f"{vendor}:p-at_pending")
            for again in (pickle.loads(pickle.dumps(status)), copy.deepcopy(status)):
                assert again == status
                assert json.loads(json.dumps(again.raw.to_dict())) == status.raw.to_dict()


def test_a_failed_jobs_message_is_bounded() -> None:
    """A 10,000-character message was kept whole (an API error's is cut to 200); the rest of the
    answer stays in raw. (A lone surrogate stays as the vendor sent it: --json is exact data.)"""
    import httpx

    from videojobs._adapter import MAX_ERROR_MESSAGE

    body = ('{"state":"error","message":"' + "x" * 10_000 + '"}').encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with videojobs.Client(api_keys={"duomi": "k" * 20}, transport=transport) as client:
        status = client.status("duomi:t")
    assert status.error is not None
    assert len(status.error.message) == MAX_ERROR_MESSAGE + 1
    assert any("cut to 2000" in p for p in status.problems)
    with pytest.raises(videojobs.JobFailedError) as info:
        status.raise_for_failure()
    assert len(str(info.value)) < MAX_ERROR_MESSAGE + 100
