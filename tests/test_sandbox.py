"""The sandbox: shapes that validate against the specs, jobs over time, faults, both modes."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import videojobs
from tests.cases import CASES, VENDORS
from tests.clocks import ScaledClock, SimClock
from tests.servers import free_port, serve
from tests.spec_check import documented_states, validate
from videojobs.sandbox import Sandbox, script_for
from videojobs.sandbox._app import MAX_REQUEST_BODY, MAX_TASK_ID
from videojobs.sandbox._clock import LAST_SECOND
from videojobs.sandbox._jobs import snapshot

KEY = {"authorization": "Bearer sk-sandbox"}


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _word(vendor: str, body: Any) -> Any:
    """The state word of an answer, where the vendor's case says it sits."""
    for key in CASES[vendor].enum_field:
        body = (body or {}).get(key)
    return body


def _envelope(vendor: str) -> bool:
    """Whether the vendor wraps answers in an envelope with a code (JimmyAI), as the sandbox reads its spec."""
    from videojobs.sandbox._spec import load

    return load(vendor).envelope is not None


def _get(sb: Sandbox, vendor: str, task_id: str, **headers: str) -> tuple[int, bytes]:
    from urllib.parse import quote

    answer = sb.handle("GET", sb.path_prefix(vendor) + quote(task_id, safe=""), {}, {**KEY, **headers})
    return answer.status, answer.body


def _timeline(vendor: str, task_id: str) -> list[tuple[int, dict[str, Any]]]:
    """A job's answers every simulated second from creation to past its end."""
    clock = FakeClock()
    sb = Sandbox(clock=clock, epoch=1705334400)
    out = []
    end = script_for(task_id).total
    while clock.t - 1000.0 <= end + 2:
        status, body = _get(sb, vendor, task_id)
        out.append((status, json.loads(body)))
        clock.t += 1.0
    return out


JOBS = ["a-ok-q6-d40", "b-fail-q3-d40", "c-cancel-q3-d30", "d-ok-q9-d20-novideo"]


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_answer_over_a_jobs_life_validates_against_the_spec(vendor: str) -> None:
    checked = 0
    for task_id in JOBS:
        for status, body in _timeline(vendor, task_id):
            assert status == 200
            assert validate(vendor, status, body)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_documented_state_is_played(vendor: str) -> None:
    from videojobs._registry import adapter_class

    words = set()
    for task_id in JOBS:
        for _, body in _timeline(vendor, task_id):
            words.add(_word(vendor, body))
    assert words == documented_states(vendor)
    assert words <= set(adapter_class(vendor).states)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("fault", ["401", "404", "429", "500", "502", "520"])
def test_error_answers_validate_where_the_spec_documents_them(vendor: str, fault: str) -> None:
    status, body = _get(Sandbox(), vendor, f"x-e{fault}")
    expected = 200 if _envelope(vendor) and fault in ("401", "404", "429") else int(fault)
    assert status == expected
    if body and body.startswith(b"{"):
        validate(vendor, status, json.loads(body))


ODD_IDS = [
    "x-at_bogus",  # a word no vendor documents: free text, not a state
    "x-at_done",  # Vozo's word, at every other vendor
    "x-e429x\u00b2",  # a superscript two is not a count
    "x-e500x\u0663-q\u0661\u0662",  # Arabic-Indic digits are not numbers here
    "x-q1e309-dinf-stallnan",
    "x-" + "-".join(["e429x1"] * 50),
    "\u200b-\ufeff-é",
]


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("task_id", ODD_IDS)
def test_any_id_gets_an_answer_that_validates(vendor: str, task_id: str) -> None:
    sb = Sandbox()
    for _ in range(3):
        status, raw = _get(sb, vendor, task_id)
        if status == 200 and raw.startswith(b"{"):
            body = json.loads(raw)
            if not _envelope(vendor) or body.get("code") == "20000":
                assert validate(vendor, status, body)
        else:
            assert status in (401, 404, 429, 500, 502, 520), status


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(vendor=st.sampled_from(VENDORS), task_id=st.text(min_size=1, max_size=40).filter(lambda t: "/" not in t))
def test_generated_ids_get_answers_that_validate(vendor: str, task_id: str) -> None:
    status, raw = _get(Sandbox(), vendor, task_id)
    if status == 200 and raw.startswith(b"{"):
        body = json.loads(raw)
        if not _envelope(vendor) or body.get("code") == "20000":
            assert validate(vendor, status, body)


@pytest.mark.parametrize("vendor", VENDORS)
def test_pinned_states_answer_as_asked(vendor: str) -> None:
    sb = Sandbox()
    for word in sorted(documented_states(vendor)):
        status, raw = _get(sb, vendor, f"p-at_{word}")
        body = json.loads(raw)
        assert validate(vendor, status, body)
        got = _word(vendor, body)
        assert got == word


def test_scripts_are_reproducible_and_follow_the_population() -> None:
    assert script_for("job-7") == script_for("job-7")
    assert script_for("job-7") != script_for("job-7", seed=1)
    scripts = [script_for(f"job-{i}") for i in range(3000)]
    runs = sorted(s.run for s in scripts)
    assert 70 < runs[len(runs) // 2] < 110  # median near 90 s
    assert min(runs) >= 10
    assert max(runs) <= 1200
    assert 6 < sum(s.queue for s in scripts) / len(scripts) < 10  # mean near 8 s
    stalled = sum(1 for s in scripts if s.stall > 0) / len(scripts)
    assert 0.28 < stalled < 0.39
    assert all(s.stall <= s.run / 4 + 1e-9 for s in scripts)


def test_progress_is_whole_percent_monotone_and_sits_at_99() -> None:
    script = script_for("s-q2-d100-stall20")
    points = [snapshot(script, t / 4).progress for t in range(0, 4 * 102)]
    assert points == sorted(points)
    assert all(abs(p * 100 - round(p * 100)) < 1e-9 for p in points)
    assert snapshot(script, 2 + 85).progress == 0.99
    assert snapshot(script, 2 + 100.5).phase == "succeeded"


def test_time_scale_plays_a_two_minute_job_in_two_seconds() -> None:
    clock = FakeClock()
    sb = Sandbox(clock=clock, time_scale=60)
    client = videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.sync_transport())
    assert client.status("duomi:t-q0-d120-stall0").state is videojobs.State.RUNNING
    clock.t += 1.0
    assert client.status("duomi:t-q0-d120-stall0").progress == pytest.approx(0.5, abs=0.1)
    clock.t += 1.01
    assert client.status("duomi:t-q0-d120-stall0").state is videojobs.State.SUCCEEDED


def test_wrong_key_and_unknown_ids() -> None:
    sb = Sandbox(auto_create=False)
    ref = sb.create("vozo", run=5)
    good = videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.sync_transport())
    assert good.status(ref).vendor == "vozo"
    with pytest.raises(videojobs.NotFoundError):
        good.status("vozo:never-made")
    bad = videojobs.Client(
        api_keys=dict.fromkeys(VENDORS, "sk-wrong"), base_urls=sb.base_urls(), transport=sb.sync_transport()
    )
    for vendor in VENDORS:
        with pytest.raises(videojobs.AuthenticationError):
            bad.status(ref.replace("vozo", vendor))


@pytest.mark.parametrize(
    ("fault", "cls"),
    [
        ("401", videojobs.AuthenticationError),
        ("404", videojobs.NotFoundError),
        ("429", videojobs.RateLimitError),
        ("500", videojobs.ServerError),
        ("502", videojobs.ServerError),
        ("520", videojobs.ServerError),
        ("html", videojobs.MalformedResponseError),
        ("malformed", videojobs.MalformedResponseError),
        ("drop", videojobs.NetworkError),
    ],
)
@pytest.mark.parametrize("vendor", VENDORS)
def test_each_fault_is_the_typed_error(vendor: str, fault: str, cls: type[Exception]) -> None:
    sb = Sandbox(retry_after=0)
    client = videojobs.Client(
        api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.sync_transport(), max_retries=0
    )
    with pytest.raises(cls):
        client.status(f"{vendor}:f-e{fault}")
    client.vendor(vendor).typed.get_httpx_client().headers["X-Sandbox-Fault"] = fault
    with pytest.raises(cls):  # the same asked for by header
        client.status(f"{vendor}:plain")


@pytest.mark.anyio
@pytest.mark.parametrize("vendor", VENDORS)
async def test_embedded_async_transport_with_transient_faults(vendor: str) -> None:
    clock = SimClock()  # the client's retries wait as configured, on a clock the sandbox reads too
    sb = Sandbox(clock=clock)
    async with videojobs.AsyncClient(
        api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.transport(), clock=clock
    ) as c:
        status = await c.status(f"{vendor}:t-e429x1-e520x1-q0-d100")
        assert status.state is videojobs.State.RUNNING
        assert clock.sleeps[0] == sb.retry_after  # the 429's Retry-After was honoured
        with pytest.raises(videojobs.NetworkError):
            await c.status(f"{vendor}:t-edrop")
    assert sb.job(f"{vendor}:t-e429x1-e520x1-q0-d100").polls == 3  # type: ignore[union-attr]
    assert sb.job(f"{vendor}:t-edrop").polls == 3  # type: ignore[union-attr]  # the first try and two retries


@pytest.mark.parametrize("run", [0.00001, 30.1234567, 0.1 + 0.2, 1e6, 5e-324, 30])
def test_a_created_id_spells_its_numbers_whole_and_replays_as_the_same_job(run: float) -> None:
    """``:g`` spelled run=0.00001 as ``d1e-05`` (its ``-`` split the token: another job on
    replay) and 30.1234567 as ``d30.1235``."""
    sb = Sandbox()
    ref = sb.create("duomi", queue=0.5, run=run, stall=run / 8)
    task_id = ref.partition(":")[2]
    assert "e-" not in task_id
    assert "e+" not in task_id
    assert script_for(task_id) == sb.job(ref).script  # type: ignore[union-attr]
    assert (script_for(task_id).run, script_for(task_id).stall) == (run, run / 8)


@pytest.mark.parametrize(
    ("task_id", "options"),
    [
        ("x-d30", {"run": 60}),
        ("x-fail", {"outcome": "succeeded"}),
        ("x-novideo", {"video": True}),
        ("x-e429x2", {"faults": (("500", 1),)}),
        ("x-q1-stall2", {"stall": 3}),
    ],
)
def test_an_explicit_id_that_says_other_options_is_refused(task_id: str, options: dict[str, Any]) -> None:
    """Its job played the options, but the id, replayed elsewhere, plays what it spells."""
    sb = Sandbox()
    with pytest.raises(ValueError, match="spells other options"):
        sb.create("duomi", task_id, **options)
    assert not sb.jobs
    with httpx.Client(transport=sb.sync_transport(), base_url="http://sandbox") as http:
        answer = http.post("/sandbox/jobs", json={"vendor": "duomi", "id": "y-d30", "run": 60})
    assert answer.status_code == 400
    assert "run" in answer.json()["error"]
    assert sb.create("duomi", "x-d30-e429x2", run=30, faults=(("429", 2),)) == "duomi:x-d30-e429x2"  # agreeing


@pytest.mark.parametrize(("retry_after", "sent"), [(2e6, "2000000"), (333333.4, "333334"), (0.2, "1"), (0, "0")])
def test_retry_after_is_whole_seconds_rounded_up(retry_after: float, sent: str) -> None:
    """``:g`` sent 2e6 as ``2e+06`` (which the client's own parser reads as no Retry-After) and
    333333.4 as 333333 (too early); RFC 9110 says delta-seconds, whole digits."""
    from videojobs._translate import parse_retry_after

    answer = Sandbox(retry_after=retry_after).handle(
        "GET", "/v1/videos/tasks/r-1", {}, {**KEY, "x-sandbox-fault": "429"}
    )
    assert answer.headers["retry-after"] == sent
    assert parse_retry_after(sent) is not None


def test_a_throttled_vendors_retry_after_is_whole_seconds_rounded_up() -> None:
    clock = FakeClock()
    sb = Sandbox(clock=clock, rate_limits={"vozo": 0.4})  # a token every 2.5 s
    assert _get(sb, "vozo", "t-1")[0] == 200
    answer = sb.handle("GET", sb.path_prefix("vozo") + "t-1", {}, KEY)
    assert answer.status == 429
    assert answer.headers["retry-after"] == "3"  # 2.5 s, up


@pytest.mark.parametrize("retry_after", [-1, math.nan, math.inf, "1", True])
def test_a_retry_after_that_is_no_wait_is_refused(retry_after: Any) -> None:
    with pytest.raises(ValueError, match="retry_after must be seconds"):
        Sandbox(retry_after=retry_after)


@pytest.mark.parametrize("fault", ["401", "404"])
def test_the_jimmyai_codes_the_docstring_names_are_the_ones_sent(fault: str) -> None:
    """The package docstring said JimmyAI's not-found code was 40401; the sandbox sends 40400."""
    import re

    import videojobs.sandbox

    line = next(x for x in (videojobs.sandbox.__doc__ or "").splitlines() if x.strip().startswith(f"{fault} "))
    named = re.search(r"JimmyAI: HTTP 200 with code (\d{5})", line)
    assert named is not None, line
    status, body = _get(Sandbox(), "jimmyai", f"j-e{fault}")
    assert (status, json.loads(body)["code"]) == (200, named[1])


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/sandbox/jobs", {"vendor": "duomi", "faults": {"429": 2.9}}, "faults"),
        ("/sandbox/jobs", {"vendor": "duomi", "faults": {"429": True}}, "faults"),
        ("/sandbox/outage", {"vendor": "duomi", "seconds": "5"}, "seconds"),
        ("/sandbox/outage", {"vendor": "duomi", "seconds": True}, "seconds"),
        ("/sandbox/limits", {"vendor": "duomi", "rate": "20"}, "rate"),
        ("/sandbox/limits", {"vendor": "duomi", "rate": True}, "rate"),
        ("/sandbox/limits", {"vendor": "duomi", "rate": 0}, "rate limit"),
        ("/sandbox/limits", {"vendor": "duomi", "rate": 1e300}, "rate limit"),
        ("/sandbox/limits", {"vendor": "nobody", "rate": 5}, "vendor"),
    ],
)
def test_a_control_request_of_the_wrong_type_is_a_400_naming_its_field(
    path: str, body: dict[str, Any], field: str
) -> None:
    """``{"429": 2.9}`` made a job of 2 faults, ``true`` one of 1; ``"seconds": "5"`` an outage of 5."""
    sb = Sandbox()
    with httpx.Client(transport=sb.sync_transport(), base_url="http://sandbox") as http:
        answer = http.post(path, json=body)
    assert answer.status_code == 400
    assert field in answer.json()["error"]
    assert not sb.jobs
    assert not sb.down_until
    assert not sb.rate_limits


def test_a_vendor_raises_its_rate_limit_from_now_on() -> None:
    """``POST /sandbox/limits``: a vendor that raises (or lowers, or first sets) its allowance, as a
    plan changes; the bench's fleet follows such a raise. The bucket keeps the tokens it had."""
    clock = SimClock()
    sb = Sandbox(clock=clock, rate_limits={"duomi": 5})
    headers = {"Authorization": f"Bearer {sb.api_keys()['duomi']}"}
    with httpx.Client(transport=sb.sync_transport(), base_url="http://sandbox") as http:

        def second() -> list[int]:  # 40 polls spread over the next second of the sandbox's clock
            codes = []
            for _ in range(40):
                codes.append(http.get("/v1/videos/tasks/raise-d600", headers=headers).status_code)
                clock.sleep(1 / 40)
            return codes

        second()  # the burst spent
        assert second().count(200) == pytest.approx(5, abs=1)
        assert http.post("/sandbox/limits", json={"vendor": "duomi", "rate": 20}).json() == {
            "vendor": "duomi",
            "rate": 20,
        }
        assert second().count(200) == pytest.approx(20, abs=1)
        assert http.post("/sandbox/limits", json={"vendor": "vozo", "rate": 2}).status_code == 200  # none before
    assert sb.rate_limits == {"duomi": 20.0, "vozo": 2.0}
    assert sb.throttled["vozo"] == 0


def test_a_reset_starts_the_sandbox_afresh_its_timestamps_at_the_epoch_again() -> None:
    """``make record`` shares one served sandbox: each test's timestamps moved by how long the
    tests before it took. ``POST /sandbox/reset`` is a new sandbox with the same options."""
    clock = SimClock()
    epoch = 1767225600.0
    sb = Sandbox(clock=clock, epoch=epoch, rate_limits={"duomi": 2})
    path = sb.path_prefix("duomi") + "r-1"

    def created() -> Any:
        return json.loads(sb.handle("GET", path, {}, KEY).body)["create_time"]

    with httpx.Client(transport=sb.sync_transport(), base_url="http://sandbox") as http:
        assert created() == epoch
        clock.sleep(100)
        assert created() == epoch  # the same job: made at the start
        assert sb.handle("GET", sb.path_prefix("duomi") + "r-2", {}, KEY).status == 200
        assert sb.handle("GET", sb.path_prefix("duomi") + "r-3", {}, KEY).status == 429  # its 2 a second spent
        assert http.post("/sandbox/outage", json={"vendor": "vozo", "seconds": 60}).status_code == 200
        assert http.post("/sandbox/jobs", json={"vendor": "vozo"}).json()["id"].startswith("sbx1-")
        assert http.get("/sandbox/reset").status_code == 405
        assert http.post("/sandbox/reset").status_code == 200
        health = http.get("/sandbox/health").json()
        assert health["served"] == dict.fromkeys(sb.specs, 0)
        assert (health["throttled"], health["refused"]) == ({"duomi": 0}, {})
        assert http.get("/sandbox/jobs").json() == {"jobs": []}
        assert created() == epoch  # made again, at the epoch: the clock is back at the start
        assert sb.handle("GET", sb.path_prefix("vozo") + "v-1", {}, KEY).status == 200  # its outage over
        assert http.post("/sandbox/jobs", json={"vendor": "vozo"}).json()["id"].startswith("sbx1-")
        assert sb.rate_limits == {"duomi": 2}  # the options stay


def test_a_control_endpoint_answers_another_method_405_with_allow() -> None:
    sb = Sandbox()
    with httpx.Client(transport=sb.sync_transport(), base_url="http://sandbox") as http:
        for method, path, allow in [
            ("POST", "/sandbox/health", "GET"),
            ("DELETE", "/sandbox/jobs", "GET, POST"),
            ("GET", "/sandbox/outage", "POST"),
            ("GET", "/sandbox/limits", "POST"),
        ]:
            answer = http.request(method, path)
            assert (answer.status_code, answer.headers.get("allow")) == (405, allow), (method, path)
        assert http.get("/sandbox/nothing").status_code == 404
        assert http.post("/sandbox/outage", json={"vendor": "duomi", "seconds": 5}).status_code == 200
        assert http.head("/sandbox/health").status_code == 200  # where GET is, HEAD is (a probe's curl -I)
        assert http.head("/sandbox/jobs").status_code == 200


@pytest.mark.parametrize(
    ("credentials", "status"),
    [
        ("Bearer sk-sandbox", 200),
        ("bearer sk-sandbox", 200),
        ("BEARER  sk-sandbox", 200),
        ("Bearer sk-sandbox2", 401),
        ("Basic sk-sandbox", 401),
        ("Bearersk-sandbox", 401),
        ("sk-sandbox", 401),
    ],
)
def test_the_bearer_scheme_is_read_in_any_case(credentials: str, status: int) -> None:
    """RFC 9110 11.1: an auth scheme is case-insensitive; ``bearer <key>`` was answered 401."""
    assert _get(Sandbox(), "vozo", "auth-1", authorization=credentials)[0] == status


def test_create_and_list_through_the_sandbox_api() -> None:
    sb = Sandbox()
    transport = sb.sync_transport()
    with httpx.Client(transport=transport, base_url="http://sandbox") as http:
        made = http.post(
            "/sandbox/jobs", json={"vendor": "duomi", "run": 30, "outcome": "failed", "faults": {"429": 2}}
        )
        assert made.status_code == 201
        ref = made.json()["ref"]
        assert ref.startswith("duomi:sbx1-fail-d30-e429x2")
        listing = http.get("/sandbox/jobs").json()["jobs"]
        assert [j["ref"] for j in listing] == [ref]
        assert http.post("/sandbox/jobs", json={"vendor": "nope"}).status_code == 400
        assert http.get("/sandbox/health").json()["vendors"] == VENDORS
    # the id alone replays the same job elsewhere
    assert script_for(ref.split(":", 1)[1]).faults == (("429", 2),)


@pytest.mark.network
def test_real_server_over_sockets_sync_and_async() -> None:
    # one sped-up clock for both ends: the Retry-After the sandbox sends and the client's backoff
    # are their defaults, and take a fiftieth of their time
    clock = ScaledClock(50)
    with serve(Sandbox(clock=clock)) as (sb, root):
        with videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(root), clock=clock) as client:
            for vendor in VENDORS:
                assert client.status(f"{vendor}:t-q0-d60").state is videojobs.State.RUNNING
                assert client.status(f"{vendor}:r-e429x1-e502x1").vendor == vendor
                with pytest.raises(videojobs.NetworkError):
                    client.status(f"{vendor}:x-edrop")
                assert sb.job(f"{vendor}:r-e429x1-e502x1").polls == 3  # type: ignore[union-attr]
                assert sb.job(f"{vendor}:x-edrop").polls == 3  # type: ignore[union-attr]

        async def run() -> None:
            async with videojobs.AsyncClient(api_keys=sb.api_keys(), base_urls=sb.base_urls(root), clock=clock) as ac:
                assert (await ac.status("colossyan:t-at_deleted")).state is videojobs.State.CANCELED

        import asyncio

        asyncio.run(run())


@pytest.mark.network
def test_slow_answer_trips_the_request_timeout() -> None:
    # the answer would come after 1 s: an error that names the 0.3 s timeout, on the only
    # request the server saw, is the timeout tripping (no wall-clock bound: a loaded machine is slow)
    with serve(slow_seconds=1.0) as (sb, root):
        client = videojobs.Client(
            api_keys=sb.api_keys(), base_urls=sb.base_urls(root), request_timeout=0.3, max_retries=0
        )
        with pytest.raises(videojobs.NetworkError, match=r"no complete answer within 0\.3 s"):
            client.status("vozo:s-eslow")
        client.close()
        assert sb.job("vozo:s-eslow").polls == 1  # type: ignore[union-attr]


@pytest.mark.network
def test_python_dash_m_serves_and_curl_style_get_works() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "videojobs.sandbox", "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/videos/tasks/demo-1", headers=KEY)
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert r.status_code == 200
        assert r.json()["id"] == "demo-1"
        assert validate("duomi", 200, r.json())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.network
def test_port_0_serves_on_the_port_the_system_chose_and_says_which() -> None:
    """``--port 0`` (any free port) said ``http://127.0.0.1:0`` in its banner and base URLs, and
    handed out videos at ``:0``: no download could start."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "videojobs.sandbox", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        root = banner.split(" on ", 1)[1].split()[0]
        port = int(root.rsplit(":", 1)[1])
        assert port != 0
        assert proc.stdout.readline().split() == ["colossyan", f"{root}/api/v1"]  # every base URL on it too
        done = httpx.get(f"{root}/v1/video_generation/p0-at_done", headers=KEY, timeout=10).json()
        assert done["video_url"].startswith(f"{root}/files/")
        video = httpx.get(done["video_url"], timeout=10)
        assert video.status_code == 200
        assert len(video.content) > 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.network
def test_ctrl_c_stops_a_served_sandbox_quietly_with_exit_0() -> None:
    """Bound by hand, the server ran outside uvicorn.run, which swallows Ctrl-C: a KeyboardInterrupt
    traceback and exit 130; and every Ctrl-C logged "Exception in 'lifespan' protocol"."""

    proc, _ = _served()  # serving: the signal reaches a running server
    err = _interrupted(proc, 10)
    assert "Traceback" not in err
    assert "lifespan" not in err


def _interrupted(proc: subprocess.Popen[str], timeout: float) -> str:
    """Ctrl-C to a served sandbox: it must exit 0 within ``timeout``; what it said on stderr."""
    import signal

    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == 0, err
    return err


def _served(*args: str) -> tuple[subprocess.Popen[str], str]:
    """``python -m videojobs.sandbox --port 0 ARGS``, serving: the process and its root URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "videojobs.sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    root = proc.stdout.readline().split(" on ", 1)[1].split()[0]
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(f"{root}/sandbox/health", timeout=1)
            return proc, root
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the sandbox did not serve"
            time.sleep(0.05)


@pytest.mark.network
@pytest.mark.parametrize("reads", [True, False], ids=["reading", "stalled"])
def test_ctrl_c_stops_a_served_sandbox_during_a_slow_download(reads: bool) -> None:
    """uvicorn waits for open answers before it stops: Ctrl-C did nothing while a slow file was
    streamed (for its whole length), and a second one logged "Exception in ASGI application ...
    CancelledError". A download being read ends at once; one whose client stopped reading is
    cancelled after GRACEFUL_SHUTDOWN_SECONDS; either way exit 0, no traceback."""
    import threading

    from videojobs.sandbox.__main__ import GRACEFUL_SHUTDOWN_SECONDS

    proc, root = _served()
    got = threading.Event()
    try:
        # read: about 3 hours at the slow fault's pace; stalled: a fast one, its writes blocked
        url = f"{root}/files/duomi/c-at_succeeded-{'fslow-' if reads else ''}sz1g.mp4"

        def download() -> None:
            with contextlib.suppress(httpx.HTTPError), httpx.stream("GET", url, timeout=30) as answer:
                for _ in answer.iter_raw(16 * 1024):
                    got.set()
                    if not reads:
                        time.sleep(60)  # the client stops reading (a daemon thread: never joined)

        threading.Thread(target=download, daemon=True).start()
        assert got.wait(10), "the download did not start"
    except BaseException:
        proc.kill()
        proc.wait(timeout=10)
        raise
    err = _interrupted(proc, GRACEFUL_SHUTDOWN_SECONDS + 8)
    assert "Traceback" not in err
    assert "Exception in ASGI application" not in err


@pytest.mark.network
def test_deliberate_drops_are_quiet_on_a_served_sandbox() -> None:
    """Every drop fault (``X-Sandbox-Fault: drop``, ``fdrop``, ``fbadlen``) wrote an "Exception in
    ASGI application" traceback to the console, as if the sandbox had crashed: the client sees a
    connection cut mid-answer, and the console nothing."""

    proc, root = _served()
    try:
        with httpx.Client(timeout=10) as http:
            for fault in ("drop", "drop"):  # twice: the second on a connection of the pool's
                with pytest.raises(httpx.RemoteProtocolError):
                    http.get(f"{root}/v1/videos/tasks/q-1", headers={**KEY, "x-sandbox-fault": fault})
            for name in ("q-at_succeeded-fdrop", "q-at_succeeded-fbadlen"):
                with pytest.raises(httpx.RemoteProtocolError):
                    http.get(f"{root}/files/duomi/{name}.mp4")
            assert http.get(f"{root}/v1/videos/tasks/q-1", headers=KEY).status_code == 200  # still serving
    except BaseException:
        proc.kill()
        proc.wait(timeout=10)
        raise
    assert _interrupted(proc, 10) == ""


def test_client_kwargs_poll_the_embedded_sandbox_on_its_clock() -> None:
    """The README's one line: a client of the embedded sandbox, on the sandbox's own clock."""
    from videojobs.sandbox import ScaledClock

    clock = SimClock()
    sb = Sandbox(clock=clock)
    with videojobs.Client(**sb.client_kwargs()) as client:
        assert client.wait("duomi:one-line-q2-d30").state is videojobs.State.SUCCEEDED
    assert sum(clock.sleeps) >= 30  # the client slept on the sandbox's clock, not the wall's
    kwargs = Sandbox(clock=ScaledClock(60)).client_kwargs(asynchronous=True)
    assert isinstance(kwargs["transport"], httpx.AsyncBaseTransport)
    assert isinstance(kwargs["clock"], ScaledClock)
    assert "clock" not in Sandbox().client_kwargs()  # time.monotonic: the client keeps its own


def test_a_rate_limit_for_a_vendor_the_sandbox_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match=r"rate_limits names no vendor of this sandbox: \['nosuch'\]"):
        Sandbox(rate_limits={"nosuch": 3.0})


@pytest.mark.parametrize("argv", [["--port", "70000"], ["--port", "-1"]])
def test_python_m_sandbox_refuses_a_bad_port_with_exit_2(argv: list[str]) -> None:
    from videojobs.sandbox.__main__ import main

    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


def test_a_limit_for_a_vendor_the_sandbox_lacks_is_named() -> None:
    from videojobs.sandbox.__main__ import parse_limits

    assert parse_limits(["duomi=20"]) == {"duomi": 20.0}
    with pytest.raises(SystemExit, match="--limit names no vendor of this sandbox: 'nosuch'"):
        parse_limits(["nosuch=3"])
    with pytest.raises(SystemExit, match="--limit takes VENDOR=REQUESTS_PER_SECOND"):
        parse_limits(["duomi=inf"])  # a limit that throttles nobody


@pytest.mark.parametrize("argv", [["--time-scale", "0"], ["--time-scale", "-1"]])
def test_python_m_sandbox_refuses_a_bad_time_scale_with_exit_2(argv: list[str]) -> None:
    from videojobs.sandbox.__main__ import main

    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


@pytest.mark.network
def test_the_served_file_hosts_own_answers_carry_their_body_and_keep_the_connection() -> None:
    """Served by uvicorn, the file host's fixed answers (an expired link's 403, a 404, the html
    fault's page) went out as content-length 0 with a body after it: h11 refused it mid-answer,
    the client read an empty body, and its next request on the connection failed."""
    with serve() as (_, root), httpx.Client(base_url=root, headers={"authorization": "Bearer sk-sandbox"}) as http:
        for path, status, words in [
            ("/files/duomi/ka-at_succeeded.mp4?exp=1", 403, b"AccessDenied"),
            ("/files/duomi/ka-at_succeeded-9.mp4", 404, b"NoSuchKey"),
            ("/files/nope.txt", 404, b"no such file"),
            ("/files/duomi/h-at_succeeded-fhtml.mp4", 200, b"<html"),
        ]:
            answer = http.get(path)
            assert answer.status_code == status
            assert words in answer.content
            assert int(answer.headers["content-length"]) == len(answer.content)
            assert http.get("/v1/videos/tasks/ka-1").status_code == 200  # the same connection, still sound


@pytest.mark.parametrize(
    ("query", "range_", "status", "length"),
    [
        ({}, "bytes=5-3", 200, None),  # an invalid range is ignored: the whole file (it was a 206 of length -1)
        ({}, "bytes=" + "9" * 5000 + "-", 200, None),  # too many digits for int(): no range (it was a 500)
        ({"exp": "\u00b2"}, "", 403, None),  # "²".isdigit(), but int() refuses it (a 500): a link that is no link
        ({}, "bytes=2-5", 206, 4),
    ],
    ids=["backwards", "5000-digits", "superscript-expiry", "a-real-range"],
)
def test_odd_ranges_and_expiries_are_answered_not_500s(
    query: dict[str, str], range_: str, status: int, length: int | None
) -> None:
    sb = Sandbox()
    headers = {"range": range_} if range_ else {}
    with httpx.Client(transport=sb.sync_transport()) as http:
        answer = http.get(f"{sb.file_root}/duomi/r-at_succeeded.mp4", params=query, headers=headers)
    assert answer.status_code == status
    if status == 200:
        assert len(answer.content) == int(answer.headers["content-length"]) > 0
    if length is not None:
        assert len(answer.content) == length == int(answer.headers["content-length"])


@pytest.mark.network
def test_a_job_of_the_wrong_types_is_refused_and_the_job_list_stays_sound() -> None:
    """POST /sandbox/jobs took {"run": "abc"} or an unknown outcome (201), and then every answer
    about that job and GET /sandbox/jobs failed (500) for the life of the server; a body that is
    not an object was a 500; a request body was kept whole, however large."""
    with serve() as (_, root), httpx.Client(base_url=root) as http:
        for spec in (
            {"vendor": "duomi", "id": "p", "run": "abc"},
            {"vendor": "duomi", "id": "p", "outcome": "exploded"},
            {"vendor": "duomi", "queue": float("inf")},
            {"vendor": "duomi", "video": "yes"},
            {"vendor": "duomi", "faults": [1]},
            {"vendor": "duomi", "id": 5},
            None,
            "x",
        ):
            answer = http.post("/sandbox/jobs", content=json.dumps(spec))
            assert answer.status_code == 400, (spec, answer.text)
        for raw in (b'{"vendor": "duomi", "faults": {"e429": 1e400}}', b"[" * 60_000):  # int(inf); too deep
            assert http.post("/sandbox/jobs", content=raw).status_code == 400
            assert http.post("/sandbox/outage", content=raw).status_code == 400
        assert http.get("/sandbox/jobs").status_code == 200
        assert http.post("/sandbox/jobs", json={"vendor": "duomi", "id": "ok1", "run": 30}).status_code == 201
        assert http.post("/sandbox/jobs", content=b" " * (MAX_REQUEST_BODY + 1)).status_code == 413
        assert http.get("/sandbox/jobs").json()["jobs"][0]["ref"] == "duomi:ok1"  # the same connection, sound


@pytest.mark.parametrize(
    "argv",
    [
        ["--time-scale", "1e308"],
        ["--time-scale", "1e7"],
        ["--time-scale", "5e-324"],
        ["--epoch", "nan"],
        ["--epoch", "inf"],
        ["--epoch", "1e300"],
    ],
)
def test_python_m_sandbox_refuses_a_scale_or_epoch_no_answer_survives_with_exit_2(argv: list[str]) -> None:
    """These started the server, and then every status answer failed (an OverflowError or a
    ValueError in int(), or a 301-digit create_time). A subprocess with a timeout: were the
    argument taken again, the server would serve for ever."""
    done = subprocess.run(
        [sys.executable, "-m", "videojobs.sandbox", "--port", "0", *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "argument --" in done.stderr


def test_the_job_table_keeps_the_most_recently_asked_and_a_file_or_a_long_id_keeps_nothing() -> None:
    """Every id is a job: 20,000 ids grew the served sandbox without end, and so did file GETs
    without a key (a job made and kept for each, 404 or not) and ids of 12,000 characters."""
    sb = Sandbox(max_jobs=3)
    for task_id in ("a", "b", "c", "a", "d"):  # "a" asked again: "b" is the least recently asked
        assert _get(sb, "vozo", task_id)[0] == 200
    assert list(task for _, task in sb.jobs) == ["c", "a", "d"]  # least recently asked first
    with httpx.Client(transport=sb.sync_transport()) as http:
        assert http.get(f"{sb.file_root}/vozo/never-polled-q1000.mp4").status_code == 404  # not done: kept nowhere
        assert http.get(f"{sb.file_root}/vozo/{'x' * 2000}.mp4").status_code == 404
    status, body = _get(sb, "vozo", "y" * (MAX_TASK_ID + 1))
    assert status == 404
    assert (status, body) == _get(Sandbox(auto_create=False), "vozo", "unknown")  # the vendor's own 404
    assert list(task for _, task in sb.jobs) == ["c", "a", "d"]
    with httpx.Client(transport=sb.sync_transport()) as http:  # a file served keeps its job (its faults count)
        assert http.get(f"{sb.file_root}/vozo/never-polled-q0-d0.mp4").status_code == 200
    assert list(task for _, task in sb.jobs) == ["a", "d", "never-polled-q0-d0"]
    with pytest.raises(ValueError, match="max_jobs must be a positive whole number"):
        Sandbox(max_jobs=0)


def test_a_files_last_modified_is_on_the_wall_clock_never_after_now() -> None:
    """Last-Modified was the job's creation on the vendors' simulated clock: at a time scale of
    1000, a job made 10 s after start said it was modified 10,000 s after Date."""
    from email.utils import parsedate_to_datetime

    clock = FakeClock()
    sb = Sandbox(clock=clock, time_scale=1000, epoch=1767225600)
    clock.t += 10
    assert _get(sb, "vozo", "lm-q0-d10")[0] == 200
    clock.t += 1  # 1000 simulated seconds: done
    with httpx.Client(transport=sb.sync_transport()) as http:
        answer = http.get(f"{sb.file_root}/vozo/lm-q0-d10.mp4")
    assert answer.status_code == 200
    modified = parsedate_to_datetime(answer.headers["last-modified"]).timestamp()
    assert modified == 1767225600 + 10  # made then, by the wall
    assert modified <= sb.wall()


def test_each_duomi_video_link_names_its_own_file() -> None:
    """Duomi's second video was ``<task>-1.mp4``, also the first video of a job named
    ``<task>-1``: with both made, the link answered for the other job (404 while it ran)."""
    clock = FakeClock()
    sb = Sandbox(clock=clock)
    sb.create("duomi", "render", queue=0, run=1)
    sb.create("duomi", "render-1", queue=1000, run=10)  # still queued: no file yet
    clock.t += 5
    client = videojobs.Client(**sb.client_kwargs())
    links = client.status("duomi:render").video_urls
    assert len(links) == 2
    assert len(set(links)) == 2
    with httpx.Client(transport=sb.sync_transport()) as http:
        for link in links:
            assert http.get(link).status_code == 200, link
        assert http.get(f"{sb.file_root}/duomi/render/2.mp4").status_code == 404  # it has two
        assert http.get(f"{sb.file_root}/duomi/render-1.mp4").status_code == 404  # render-1's, not ready
        # the older name of a second video (recordings hold it) still works when no job has it
        assert http.get(f"{sb.file_root}/duomi/solo-q0-d0-1.mp4").status_code == 200
    assert sb.job("duomi:render").file_gets == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("task_id", "what"),
    [("big-q0-d0-sz999999999999g", "size"), ("far-q0-d0-ttl1e30", "link_ttl")],
)
def test_an_option_past_what_http_can_say_is_no_option(task_id: str, what: str) -> None:
    """sz999999999999g was a Content-Length of 22 digits (h11 refused it: a 500), ttl1e30 an
    expiry the file host could not read (every download a 403)."""
    from videojobs.sandbox._jobs import DEFAULT_FILE_SIZE, parse_id

    assert what not in parse_id(task_id)
    sb = Sandbox()
    with httpx.Client(transport=sb.sync_transport()) as http:
        url = videojobs.Client(**sb.client_kwargs()).status(f"vozo:{task_id}").video_urls[0]
        answer = http.get(url)
    assert answer.status_code == 200
    assert len(answer.content) == DEFAULT_FILE_SIZE


def test_a_vendors_clock_stops_at_the_last_second_a_date_can_say() -> None:
    """--epoch at its largest, one second later: a file's Last-Modified in the year 10000 (a 500)."""
    clock = FakeClock()
    sb = Sandbox(clock=clock, epoch=LAST_SECOND)
    clock.t += 5.0
    with httpx.Client(transport=sb.sync_transport()) as http:
        answer = http.get(f"{sb.file_root}/vozo/late-q0-d0.mp4")
    assert answer.status_code == 200
    assert answer.headers["last-modified"] == "Fri, 31 Dec 9999 23:59:59 GMT"
    with pytest.raises(ValueError, match="time_scale must be in"):
        Sandbox(time_scale=5e-324)


def test_a_job_made_again_with_other_options_or_an_unknown_fault_is_refused() -> None:
    """POST of an id the sandbox had took the new options (201) and played the old job; a fault
    no sandbox knows was taken, and the job's spelled id played without it elsewhere."""
    sb = Sandbox()
    assert sb.create("vozo", "job-1", run=5) == "vozo:job-1"
    assert sb.create("vozo", "job-1", run=5) == "vozo:job-1"  # the same again: it is that job
    with pytest.raises(ValueError, match="exists, with other options"):
        sb.create("vozo", "job-1", run=1, outcome="failed")
    with pytest.raises(ValueError, match="fault 'bogus' is none of"):
        sb.create("vozo", faults=(("bogus", 1),))
    answer = sb.handle(
        "POST", "/sandbox/jobs", {}, {}, json.dumps({"vendor": "vozo", "id": "job-1", "run": 1}).encode()
    )
    assert answer.status == 409
    answer = sb.handle("DELETE", sb.path_prefix("vozo") + "job-1", {}, KEY)
    assert (answer.status, answer.headers["allow"]) == (405, "GET")


def test_a_job_asked_about_from_many_threads_never_leaves_the_table() -> None:
    """The table took a job out and put it back to mark it recently asked: a poll from another
    thread in between found no such job (auto_create=False: a 404, a NotFoundError that ended a
    live wait), about 3 % of polls from four threads."""
    import concurrent.futures

    sb = Sandbox(auto_create=False)
    ref = sb.create("vozo", run=60)
    path = sb.path_prefix("vozo") + ref.partition(":")[2]

    def polls(_: int) -> set[int]:
        return {sb.handle("GET", path, {}, KEY).status for _ in range(3000)}

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch every few bytecodes: the window is hit, not hoped for
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = set().union(*pool.map(polls, range(4)))
    finally:
        sys.setswitchinterval(switch)
    assert answers == {200}


def test_a_made_job_is_never_forgotten_and_the_polls_of_a_forgotten_one_still_count() -> None:
    """Past max_jobs, a job made by create() (its options not all in its id) came back with
    default ones, an ended job started again; /sandbox/health's served count went down."""
    clock = FakeClock()
    sb = Sandbox(max_jobs=2, clock=clock)
    made = sb.create("vozo", "mine", run=1, outcome="failed")
    clock.t += 5.0
    for task_id in ("a", "b", "c"):
        assert _get(sb, "vozo", task_id)[0] == 200
    job = sb.job(made)
    assert job is not None
    assert job.script.outcome == "failed"
    health = json.loads(sb.handle("GET", "/sandbox/health", {}, {}).body)
    assert health["served"]["vozo"] == 3  # a and b were forgotten; their polls were not
    assert sb.create("vozo", "mine2", run=1) == "vozo:mine2"  # the last job made from its id goes
    with pytest.raises(ValueError, match="every one made by create"):
        sb.create("vozo", "mine3", run=1)
    assert _get(sb, "vozo", "d")[0] == 200  # answered, not kept
    with pytest.raises(ValueError, match="at most 1024 characters"):
        sb.create("vozo", "x" * (MAX_TASK_ID + 1))


def test_fdrop_drops_the_first_download_of_a_job_nobody_polled_only() -> None:
    sb = Sandbox()
    url = f"{sb.file_root}/vozo/direct-q0-d0-sz1m-fdrop.mp4"
    with httpx.Client(transport=sb.sync_transport()) as http:
        with pytest.raises(httpx.HTTPError):
            http.get(url)
        assert len(http.get(url).content) == 1024 * 1024


def test_a_served_sandbox_answers_without_nagles_delay() -> None:
    """The listening socket was made without its protocol named, so asyncio set no TCP_NODELAY
    on the connections it accepted: each answer's body waited for the client's delayed ACK of
    its head, 40 ms a poll on a kept-alive connection. Checked on the accepted socket itself."""
    import asyncio
    import socket

    from videojobs.sandbox.__main__ import _listen

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connection, sock=_listen("127.0.0.1", 0))
        async with server:
            port = server.sockets[0].getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            value = await asyncio.wait_for(seen, 10)
            writer.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0


@pytest.mark.parametrize("name", ["error", "fail_reason"])
def test_a_plain_string_error_field_is_sent_only_for_a_job_that_failed(name: str) -> None:
    """A sixth vendor's ``error: string`` was sent as "sandbox" on every state: each running or
    succeeded answer then read as a job reporting an error (a problem), a failed one's error
    "sandbox". It is said, in the sandbox's words, of a failed or canceled job only."""
    import copy
    import json

    from videojobs.sandbox._jobs import Snapshot
    from videojobs.sandbox._spec import load, read, spec_file

    path = spec_file("vozo")
    assert path is not None
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc = copy.deepcopy(doc)
    doc["components"]["schemas"]["JobStatus"]["properties"][name] = {"type": "string"}
    spec = read("vozo", doc)
    assert spec.words == load("vozo").words

    def render(phase: Any, word: str) -> dict[str, Any]:
        snap = Snapshot(phase=phase, progress=0.5, elapsed=10.0, ended_at=None if phase == "running" else 10.0)
        body = spec.render("t1", snap, word, created=0.0, now=10.0, video=True)
        assert isinstance(body, dict)
        return body

    assert name not in render("running", "processing")
    assert name not in render("succeeded", "done")
    assert render("failed", "failed")[name] == "content moderation rejected the prompt"


def test_a_schema_whose_refs_grow_past_the_bound_is_a_spec_error_at_once() -> None:
    """Twelve schemas, each naming the next five times (a 4 KB page): written out whole, 5^11
    nodes (a minute and 600 MB at nine); refused within MAX_SCHEMA_NODES instead."""
    from videojobs.sandbox._spec import SpecError, _deref

    schemas: dict[str, Any] = {f"S{i}": {"type": "object", "x-r": [{"$ref": f"#/components/schemas/S{i + 1}"}] * 5}
                               for i in range(11)}  # fmt: skip
    schemas["S11"] = {"type": "string"}
    doc = {"components": {"schemas": schemas}}
    with pytest.raises(SpecError, match="grows past 100,000 nodes"):
        _deref(doc, {"$ref": "#/components/schemas/S0"})
    assert _deref(doc, {"$ref": "#/components/schemas/S9"}) == {  # a few levels are written out whole
        "type": "object", "x-r": [{"type": "object", "x-r": [{"type": "string"}] * 5}] * 5}  # fmt: skip


def test_a_schema_that_holds_itself_is_written_out_once_along_each_path() -> None:
    """A tree's node (valid OpenAPI, which the generator takes) was refused as nesting too deep."""
    from videojobs.sandbox._spec import _deref

    node = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "child": {"$ref": "#/components/schemas/Node"}},
    }
    doc = {"components": {"schemas": {"Node": node}}}
    assert _deref(doc, {"$ref": "#/components/schemas/Node"}) == {
        "type": "object", "properties": {"name": {"type": "string"}, "child": {}}}  # fmt: skip
