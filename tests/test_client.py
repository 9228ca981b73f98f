"""The client's behaviour that is the same for every vendor: retries, references, config, keys."""

from __future__ import annotations

import base64
import logging
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

import videojobs
from tests.cases import CASES, VENDORS
from tests.clocks import SimClock
from tests.conftest import KEYS, Recorder, async_client, sync_client

OK = httpx.Response(200, json={"status": "processing"})


def test_public_api_is_pinned_and_sorted() -> None:
    expected = [
        "APIError",
        "AdaptivePolicy",
        "AsyncClient",
        "AsyncVendorClient",
        "AuthenticationError",
        "BaseAdapter",
        "CallbackError",
        "Client",
        "Clock",
        "ConfigurationError",
        "Download",
        "DownloadError",
        "DownloadProgress",
        "Fields",
        "FixedPolicy",
        "History",
        "InvalidReferenceError",
        "JobError",
        "JobFailedError",
        "JobStatus",
        "LinkExpiredError",
        "MalformedResponseError",
        "NetworkError",
        "NotFoundError",
        "PollingPolicy",
        "RateLimitError",
        "ServerError",
        "State",
        "SystemClock",
        "UsageError",
        "VendorAdapter",
        "VendorClient",
        "VideoJobsError",
        "WaitTimeout",
        "__version__",
        "known_vendors",
        "register_vendor",
    ]
    assert videojobs.__all__ == sorted(videojobs.__all__)
    assert videojobs.__all__ == expected
    for name in videojobs.__all__:
        assert hasattr(videojobs, name)


def test_dir_lists_the_public_names_and_no_helper_of_the_module() -> None:
    names = [name for name in dir(videojobs) if not name.startswith("__")]
    assert names == sorted(name for name in videojobs.__all__ if not name.startswith("__"))


def test_known_vendors_still_works_after_a_vendor_is_used() -> None:
    listed = videojobs.known_vendors()  # the registry's list (tests/test_layout.py: pyproject.toml's entry points)
    assert "vozo" in listed
    with sync_client(Recorder(OK)) as client:
        client.status("vozo:t")  # imports videojobs.vendors.vozo
    assert videojobs.known_vendors() == listed


def test_import_is_lazy_about_vendors() -> None:
    code = (
        "import sys, videojobs; vendors = videojobs.known_vendors(); assert vendors; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {f'{v}_client' for v in vendors} "
        "or m.startswith('videojobs.vendors')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_state_values_are_the_lower_case_names() -> None:
    assert [s.value for s in videojobs.State] == ["queued", "running", "succeeded", "failed", "canceled", "unknown"]


def test_job_status_can_be_built_by_hand_and_is_frozen() -> None:
    s = videojobs.JobStatus(vendor="vozo", task_id="t", state=videojobs.State.RUNNING)
    assert s.progress is None
    assert s.video_url is None
    assert not s.is_terminal
    assert s.ref == "vozo:t"
    with pytest.raises(AttributeError):
        s.state = videojobs.State.FAILED  # type: ignore[misc]
    with pytest.raises(ValueError, match="progress"):
        videojobs.JobStatus(vendor="v", task_id="t", state=videojobs.State.RUNNING, progress=1.5)
    with pytest.raises(TypeError):
        videojobs.JobStatus("vozo", "t", videojobs.State.RUNNING)  # type: ignore[misc]


# --- references and task ids -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "cls", "words"),
    [
        ("vozo", videojobs.InvalidReferenceError, "expected '<vendor>:<task id>'"),
        (":t1", videojobs.InvalidReferenceError, "expected '<vendor>:<task id>'"),
        ("runway:t1", videojobs.ConfigurationError, "unknown vendor 'runway' in a job reference; known vendors"),
        # the nearest known name, as the command line suggests it
        ("Vozo:t1", videojobs.ConfigurationError, r"did you mean vozo \(vendor names are lower case\)\?"),
        ("duomy:t1", videojobs.ConfigurationError, r"unknown vendor 'duomy' in a job reference; did you mean duomi\?"),
        ("vozo:", videojobs.InvalidReferenceError, "task id is empty"),
        ("vozo:.", videojobs.InvalidReferenceError, "normalized out of the URL path"),
        ("vozo:..", videojobs.InvalidReferenceError, "normalized out of the URL path"),
        ("vozo:a\nb", videojobs.InvalidReferenceError, "control characters"),
        ("vozo:ab\udcff", videojobs.InvalidReferenceError, "lone surrogate"),  # a non-UTF-8 argv byte
        ("vozo: abc", videojobs.InvalidReferenceError, "has spaces around it"),  # was sent as %20abc
        ("vozo:abc ", videojobs.InvalidReferenceError, "has spaces around it"),
        pytest.param(
            "vozo:" + "a" * 70_000, videojobs.InvalidReferenceError, "70,000 characters, more than 1,024", id="long"
        ),
    ],
)
def test_bad_references_are_refused_before_any_request(ref: str, cls: type[Exception], words: str) -> None:
    rec = Recorder(OK)
    with sync_client(rec) as client, pytest.raises(cls, match=words) as info:
        client.status(ref)
    assert isinstance(info.value, ValueError)
    assert rec.requests == []


PASTED_KEY = KEYS["vozo"]
"""A key pasted where a job goes: no reference, and never shown whole (only its message's glimpse)."""


ONE_JOB_CALLS = ("status", "wait", "watch", "download")


async def _one_job_calls(
    face: str, ref: Any, calls: tuple[str, ...] = ONE_JOB_CALLS, *, closed: bool = False, **kwargs: Any
) -> list[tuple[str, videojobs.VideoJobsError]]:
    """Each of ``calls`` about ``ref`` on ``face`` (``kwargs`` passed to each), on a sandbox of its
    own (on a closed client with ``closed``), and the typed error it ended with."""
    from videojobs.sandbox import Sandbox

    sandbox = Sandbox()
    client: Any = (
        videojobs.Client(**sandbox.client_kwargs())
        if face == "sync"
        else videojobs.AsyncClient(**sandbox.client_kwargs(asynchronous=True))
    )
    if closed:
        client.close() if face == "sync" else await client.aclose()
    errors: list[tuple[str, videojobs.VideoJobsError]] = []
    for name in calls:
        args = (ref, "/nonexistent-videojobs-dir/x.mp4") if name == "download" else (ref,)
        try:
            got = getattr(client, name)(*args, **kwargs)
            if name == "watch":
                got = list(got) if face == "sync" else [s async for s in got]
            elif face == "async":
                await got
        except videojobs.VideoJobsError as exc:
            errors.append((name, exc))
        else:
            raise AssertionError(f"{name}({ref!r}) did not fail")
    client.close() if face == "sync" else await client.aclose()
    return errors


@pytest.mark.anyio
@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize(
    ("ref", "calls", "kwargs"),
    [
        ("vozo:..", ONE_JOB_CALLS, {}),  # a task id that cannot be sent
        ("vozo:gone-e404", ONE_JOB_CALLS, {}),  # the vendor's answer
        ("vozo:x", ONE_JOB_CALLS, {"closed": True}),
        ("vozo:x", ("wait", "watch"), {"timeout": -1}),  # an argument of the call
        ("vozo:x", ("wait",), {"on_update": 5}),
    ],
    ids=["bad-task-id", "answer", "closed", "timeout", "on_update"],
)
async def test_every_error_of_a_call_about_one_job_says_which_job(
    face: str, ref: str, calls: tuple[str, ...], kwargs: dict[str, Any]
) -> None:
    """status, wait, watch and download: whatever ends the call (the reference's task id, an argument,
    a closed client, the vendor), ``error.ref`` is the reference, on both faces (some set it, some not)."""
    errors = await _one_job_calls(face, ref, calls, **kwargs)
    assert [(name, exc.ref) for name, exc in errors] == [(name, ref) for name in calls]


@pytest.mark.anyio
@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.parametrize("ref", [PASTED_KEY, f"user:{PASTED_KEY}", 12345], ids=["key", "key-with-colon", "int"])
async def test_a_reference_that_names_no_vendor_is_never_echoed_in_its_error(face: str, ref: Any) -> None:
    """A key pasted where a job goes (or no string at all): the error says so with a glimpse, and its
    ``ref`` stays None on every call; ``to_dict()`` (the CLI's --json, the Celery payload) showed the key whole."""
    errors = await _one_job_calls(face, ref)
    assert [name for name, _ in errors] == list(ONE_JOB_CALLS)
    for name, exc in errors:
        assert isinstance(exc, (videojobs.InvalidReferenceError, videojobs.ConfigurationError)), name
        assert exc.ref is None, name
        assert PASTED_KEY not in repr(exc.to_dict()), name


def test_task_id_splits_on_the_first_colon_and_is_encoded() -> None:
    rec = Recorder(OK)
    with sync_client(rec) as client:
        s = client.status("vozo:a:b/../c?x=1")
    assert s.task_id == "a:b/../c?x=1"
    assert rec.requests[0].url.raw_path == b"/v1/video_generation/a%3Ab%2F..%2Fc%3Fx%3D1"
    assert rec.requests[0].url.host == "api.vozo.ai"


# --- configuration ----------------------------------------------------------------------------


def test_missing_key_names_the_variable() -> None:
    with videojobs.Client(api_keys={}) as client, pytest.raises(videojobs.ConfigurationError) as info:
        client.status("duomi:t1")
    assert "DUOMI_API_KEY" in str(info.value)
    assert info.value.vendor == "duomi"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"api_keys": {"vozzo": "k"}}, "unknown vendor.*did you mean vozo"),
        ({"api_keys": {"vozo": "k"}, "base_urls": {"vozo": "ftp://x"}}, "absolute http"),
        ({"api_keys": {"vozo": "k"}, "base_urls": {"vozo": "not a url"}}, "absolute http"),
        ({"api_keys": {"vozo": "two words"}}, "whitespace"),
        # host names that pass as URLs but IDNA refuses (an invalid A-label, an emoji's punycode)
        ({"api_keys": {"vozo": "k"}, "base_urls": {"vozo": "http://xn--zz.example"}}, "is not a URL"),
        ({"api_keys": {"vozo": "k"}, "base_urls": {"vozo": "https://xn--ls8h.la/v1"}}, "is not a URL"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(videojobs.ConfigurationError, match=words) as info:  # noqa: PT012
        client = videojobs.Client(**kwargs)
        client.status("vozo:t1")
    assert "two words" not in str(info.value)
    assert info.value.vendor == "vozo" or words.startswith("unknown vendor")


def test_a_bad_base_url_names_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a key's errors name their source (``api_keys['vozo']`` or ``VOZO_API_KEY``)."""
    with pytest.raises(videojobs.ConfigurationError, match=r"\(from base_urls\['vozo'\]\) is not an absolute http"):
        videojobs.Client(api_keys={"vozo": "k" * 20}, base_urls={"vozo": "ftp://x"}).status("vozo:t1")
    monkeypatch.setenv("VOZO_BASE_URL", "ftp://x")
    with pytest.raises(videojobs.ConfigurationError, match=r"\(from VOZO_BASE_URL\) is not an absolute http"):
        videojobs.Client(api_keys={"vozo": "k" * 20}).status("vozo:t1")


@pytest.mark.anyio
async def test_asyncclient_refuses_a_sync_transport_and_a_string_verify() -> None:
    """The async face's own kind of transport: a sync one used to fail at the first request
    (and at close) with a bare AttributeError."""
    sync_transport = httpx.HTTPTransport()
    with pytest.raises(videojobs.UsageError, match=r"transport must be an httpx\.AsyncBaseTransport for AsyncClient"):
        videojobs.AsyncClient(api_keys={"vozo": "k"}, transport=sync_transport)  # type: ignore[arg-type]
    with pytest.raises(videojobs.UsageError, match=r"verify must be True, False or an ssl\.SSLContext"):
        videojobs.AsyncClient(api_keys={"vozo": "k"}, verify="/etc/ssl/bundle.pem")  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("base_url", "words"),
    [
        ("http://user:pw-s3cret@127.0.0.1:9/", "holds a user name or password"),
        ("http://user@127.0.0.1:9/", "holds a user name or password"),
        ("http://:@127.0.0.1:9/", "holds a user name or password"),
        ("http://127.0.0.1:99999/", "has a port out of 1-65535"),
        ("http://127.0.0.1:0/", "has a port out of 1-65535"),
        ("user:s3cret-pw@api.vozo.ai", "base URL of 26 characters"),  # no scheme: not even the password's start
        ("http://a..b.invalid:9/", "has a host name that cannot be looked up"),  # the async face: a bare UnicodeError
        ("http://" + "a" * 64 + ".example/", "has a host name that cannot be looked up"),
    ],
)
async def test_a_base_url_with_credentials_a_bad_port_or_host_is_refused_on_both_faces(
    base_url: str, words: str
) -> None:
    """The blocking face sent a URL's user and password as Basic auth in place of the key, and the
    async face failed with aiohttp's bare ValueError; a port past 65535 was a bare ValueError too.
    Both faces refuse them before anything is sent, the password never shown."""
    kwargs: dict[str, Any] = {"api_keys": {"vozo": "k" * 20}, "base_urls": {"vozo": base_url}}
    with videojobs.Client(**kwargs) as client, pytest.raises(videojobs.ConfigurationError, match=words) as sync:
        client.status("vozo:t1")
    async with videojobs.AsyncClient(**kwargs) as aclient:
        with pytest.raises(videojobs.ConfigurationError, match=words) as aio:
            await aclient.status("vozo:t1")
    assert str(sync.value) == str(aio.value)
    assert not [w for w in ("s3cret", "user:", "user@", ":@") if w in str(sync.value)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("proxy", "words"),
    [
        ("ftp://proxy.invalid:21", "'ftp://proxy.invalid:21', is not an absolute http(s) URL"),
        ("socks5://127.0.0.1:9", "'socks5://127.0.0.1:9', is not an absolute http(s) URL"),  # sync: an ImportError
        ("http://user:pw-s3cret@a..b.invalid:9", "'http://...', has a host name that cannot be looked up"),
    ],
)
async def test_a_proxy_no_request_could_use_is_refused_on_both_faces(
    proxy: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy the environment names for a vendor, when no request could go through it, was a
    bare ValueError, UnicodeError or ImportError at the first request (the async face's showed
    its password)."""
    _no_proxies(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    kwargs: dict[str, Any] = {"api_keys": {"vozo": "k" * 20}, "base_urls": {"vozo": "http://vendor.invalid:9"}}
    with videojobs.Client(**kwargs) as client, pytest.raises(videojobs.ConfigurationError) as sync:
        client.status("vozo:t1")
    async with videojobs.AsyncClient(**kwargs) as aclient:
        with pytest.raises(videojobs.ConfigurationError) as aio:
            await aclient.status("vozo:t1")
    assert str(sync.value) == str(aio.value)
    assert str(sync.value).startswith(f"the proxy the environment names for http:// URLs (HTTP_PROXY), {words}")
    assert "s3cret" not in str(sync.value)


@pytest.mark.anyio
async def test_a_proxy_no_file_host_could_use_fails_a_download_typed_on_both_faces(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A file host may be anywhere: httpx builds a transport for each proxy the environment
    names, and one that is no URL ("http://[::1") was a bare httpx.InvalidURL on both faces."""
    _no_proxies(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://[::1")
    status = videojobs.JobStatus(
        vendor="vozo", task_id="t", state=videojobs.State.SUCCEEDED, video_urls=["http://127.0.0.1:9/v.mp4"]
    )
    with videojobs.Client(api_keys={"vozo": "k" * 20}) as client, pytest.raises(videojobs.ConfigurationError) as sync:
        client.download(status, tmp_path)
    async with videojobs.AsyncClient(api_keys={"vozo": "k" * 20}) as aclient:
        with pytest.raises(videojobs.ConfigurationError) as aio:
            await aclient.download(status, tmp_path)
    assert str(sync.value) == str(aio.value)
    assert "cannot be used for file hosts (InvalidURL)" in str(sync.value)


def _basic(pair: str) -> str:
    return base64.b64encode(pair.encode()).decode()


@pytest.mark.parametrize(
    ("proxy", "secrets"),
    [
        ("http://alice:hunter2-pw@proxy.invalid:3128", ["hunter2-pw", "alice:hunter2-pw", _basic("alice:hunter2-pw")]),
        ("http://u:pw@proxy.invalid:3128", [_basic("u:pw")]),  # too short to scrub but as Basic (no false key warning)
        (
            "http://zyte-apikey-0123456789:@proxy.invalid:8011",
            ["zyte-apikey-0123456789", "zyte-apikey-0123456789:", _basic("zyte-apikey-0123456789:")],
        ),
    ],
    ids=["password", "short", "token-as-user"],
)
def test_a_proxys_secrets_are_the_ones_long_enough_to_scrub_the_user_when_it_is_the_token(
    proxy: str, secrets: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 2-character proxy password went to the log scrubber, which warned of "an API key shorter
    than 8 characters (length 2)": wrong, and its length shown. A token given as the user name
    with no password (http://APIKEY:@proxy) was scrubbed only with its colon."""
    from videojobs._base import proxy_secrets

    _no_proxies(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    assert proxy_secrets("https://api.vozo.ai") == secrets


def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "environ",
    [
        {"http_proxy": "PROXY", "https_proxy": "PROXY", "all_proxy": "socks5://127.0.0.1:7890"},  # Clash's
        {"ALL_PROXY": "socks5://127.0.0.1:9", "NO_PROXY": "127.0.0.1"},  # the vendor is exempted
        {"HTTP_PROXY": "socks5://127.0.0.1:9", "http_proxy": "PROXY"},  # the lower-case one is read
        {"HTTPS_PROXY": "ftp://nowhere.invalid"},  # for https:// URLs only
        {"HTTP_PROXY": "http://127.0.0.1:1", "NO_PROXY": "HOSTPORT"},  # NO_PROXY=host:port names the vendor
    ],
    ids=["clash", "no-proxy", "lower-case", "other-scheme", "no-proxy-port"],
)
async def test_a_proxy_the_vendor_would_not_go_through_is_never_read(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check of the last commit read every proxy variable: a SOCKS ALL_PROXY beside working
    HTTP(S) ones (Clash's shell setup), one NO_PROXY exempts, an upper-case one the lower-case
    wins over, were refused though no request goes through them. Only the one chosen is read,
    on both faces (the blocking one gives httpx that one alone: an unused SOCKS entry was an
    ImportError as it built its transports)."""
    from tests import hostile

    _no_proxies(monkeypatch)

    def forward(request: hostile.Request, conn: socket.socket) -> None:  # a proxy, or the vendor itself
        hostile.answer()(request, conn)

    with hostile.hostile(forward) as url:
        for name, value in environ.items():
            monkeypatch.setenv(name, {"PROXY": url, "HOSTPORT": url.removeprefix("http://")}.get(value, value))
        kwargs: dict[str, Any] = {"api_keys": {"vozo": "k" * 20}, "base_urls": {"vozo": url}, "max_retries": 0}
        with videojobs.Client(**kwargs) as client:
            assert client.status("vozo:t1").state is videojobs.State.RUNNING
        async with videojobs.AsyncClient(**kwargs) as aclient:
            assert (await aclient.status("vozo:t1")).state is videojobs.State.RUNNING


@pytest.mark.anyio
async def test_a_base_url_idna_refuses_is_a_configuration_error_on_asyncio_too() -> None:
    async with videojobs.AsyncClient(api_keys={"vozo": "k"}, base_urls={"vozo": "http://xn--zz.example"}) as client:
        with pytest.raises(videojobs.ConfigurationError, match="is not a URL") as info:
            await client.status("vozo:t1")
    assert info.value.vendor == "vozo"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"request_timeout": 0}, "request_timeout must be a positive number of seconds, not 0"),
        ({"request_timeout": -1}, "request_timeout must be a positive number of seconds, not -1"),
        ({"max_retries": -1}, "max_retries must be a whole number >= 0, not -1"),
        ({"max_connections": 0}, "max_connections must be a whole number >= 1, not 0"),
        # past what a float holds (10**400 overflows one) or a socket takes (1e10 s overflows time_t)
        ({"request_timeout": 10**400}, r"request_timeout must be a positive number of seconds \(at most 1e\+09\)"),
        ({"request_timeout": 1e10}, r"request_timeout must be a positive number of seconds \(at most 1e\+09\)"),
        ({"max_retries": 10**400}, r"max_retries must be a whole number >= 0 \(at most 2\*\*53\), not 1000000"),
        ({"rate_limits": {"vozo": 10**400}}, r"rate_limits\['vozo'\] must be a positive number of requests per second"),
        # each of these used to surface later as a bare error (FileNotFoundError, TypeError,
        # AttributeError), or to be read as True ("false" is a true string)
        ({"verify": "/etc/ssl/bundle.pem"}, r"verify must be True, False or an ssl.SSLContext, not str \(for a CA"),
        ({"verify": None}, "verify must be True, False or an ssl.SSLContext, not NoneType"),
        ({"transport": object()}, "transport must be an httpx.BaseTransport for Client, not object"),
        (
            {"transport": httpx.AsyncHTTPTransport()},
            "transport must be an httpx.BaseTransport for Client, not AsyncHTTP",
        ),
        ({"environ": ["VOZO_API_KEY=k"]}, "environ must be a mapping of variable name to value, not list"),
        ({"adaptive": "false"}, "adaptive must be True or False, not 'false'"),
    ],
)
def test_an_argument_mistake_is_a_usage_error_naming_it(kwargs: dict[str, Any], words: str) -> None:
    """A mistake in an argument is a UsageError naming the argument and the value; a
    ConfigurationError is kept for keys, vendors and base URLs."""
    with pytest.raises(videojobs.UsageError, match=words) as info:
        videojobs.Client(api_keys={"vozo": "k"}, **kwargs)
    assert not isinstance(info.value, videojobs.ConfigurationError)


def test_closed_client_refuses() -> None:
    client = sync_client(Recorder(OK))
    client.close()
    with pytest.raises(videojobs.UsageError, match="closed"):
        client.status("vozo:t")


def test_one_pooled_typed_client_per_vendor() -> None:
    rec = Recorder(OK)
    with sync_client(rec) as client:
        first = client.vendor("vozo")
        client.status("vozo:a")
        client.status("vozo:b")
        assert client.vendor("vozo") is first
        assert first.typed.get_httpx_client() is first.typed.get_httpx_client()
        from vozo_client import AuthenticatedClient

        assert isinstance(first.typed, AuthenticatedClient)


# --- retries ----------------------------------------------------------------------------------


def test_5xx_then_success_is_retried() -> None:
    rec = Recorder(httpx.Response(503), httpx.Response(502), OK)
    with sync_client(rec, max_retries=2) as client:
        assert client.status("vozo:t").state is videojobs.State.RUNNING
    assert len(rec.requests) == 3


def test_retries_are_bounded() -> None:
    rec = Recorder(httpx.Response(500))
    with sync_client(rec, max_retries=3) as client, pytest.raises(videojobs.ServerError):
        client.status("vozo:t")
    assert len(rec.requests) == 4
    rec = Recorder(httpx.Response(500))
    with sync_client(rec, max_retries=0) as client, pytest.raises(videojobs.ServerError):
        client.status("vozo:t")
    assert len(rec.requests) == 1


@pytest.mark.parametrize("http_status", [400, 401, 403, 404, 422])
def test_other_4xx_are_not_retried(http_status: int) -> None:
    rec = Recorder(httpx.Response(http_status))
    with sync_client(rec, max_retries=5) as client, pytest.raises(videojobs.APIError):
        client.status("vozo:t")
    assert len(rec.requests) == 1


def test_connection_errors_become_network_error_after_retries() -> None:
    rec = Recorder(httpx.ConnectError("connection refused"))
    with sync_client(rec, max_retries=2) as client, pytest.raises(videojobs.NetworkError) as info:
        client.status("colossyan:t")
    assert len(rec.requests) == 3
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert info.value.vendor == "colossyan"


@pytest.mark.anyio
async def test_a_refused_connection_is_said_in_the_same_words_on_both_faces() -> None:
    """A real refused connection on loopback: the blocking face said ``ConnectError: [Errno 111]
    Connection refused``, the async one ``ClientConnectorError: Cannot connect to host ...
    ssl:default [Connect call failed ...]`` (ssl for an http URL). The system's words, then the
    transport's exception's name; the transport's own text stays in ``__cause__``."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once it is closed
    settings: dict[str, Any] = {
        "api_keys": {"vozo": KEYS["vozo"]},
        "base_urls": {"vozo": f"http://127.0.0.1:{port}"},
        "max_retries": 0,
    }
    with videojobs.Client(**settings) as client, pytest.raises(videojobs.NetworkError) as blocking:
        client.status("vozo:t")
    async with videojobs.AsyncClient(**settings) as aclient:
        with pytest.raises(videojobs.NetworkError) as asynchronous:
            await aclient.status("vozo:t")
    said = "could not reach the vendor: Connection refused ("
    assert blocking.value.message.startswith(said)
    assert asynchronous.value.message.startswith(said)
    assert "ssl" not in asynchronous.value.message
    assert blocking.value.__cause__ is not None
    assert asynchronous.value.__cause__ is not None


@pytest.mark.anyio
async def test_a_call_made_while_handling_an_error_is_not_said_in_that_errors_words() -> None:
    """A status call from the caller's ``except FileNotFoundError`` block, to a vendor that sends
    no HTTP: the blocking face said "could not reach the vendor: No such file or directory" (the
    system's words were looked for down the chain's ``__context__``, into the caller's error)."""
    from tests import hostile

    def garbage(request: Any, conn: socket.socket) -> None:
        conn.sendall(b"garbage that is no HTTP at all\r\n\r\n")
        conn.close()

    with hostile.hostile(garbage) as url:
        settings: dict[str, Any] = {"api_keys": {"vozo": KEYS["vozo"]}, "base_urls": {"vozo": url}, "max_retries": 0}
        said: list[str] = []
        with videojobs.Client(**settings) as client:
            try:
                raise FileNotFoundError(2, "No such file or directory", "/etc/app/settings.json")
            except FileNotFoundError:
                with pytest.raises(videojobs.NetworkError) as blocking:
                    client.status("vozo:t")
                said.append(blocking.value.message)
        async with videojobs.AsyncClient(**settings) as aclient:
            try:
                raise PermissionError(13, "Permission denied")
            except PermissionError:
                with pytest.raises(videojobs.NetworkError) as asynchronous:
                    await aclient.status("vozo:t")
                said.append(asynchronous.value.message)
    for message in said:
        assert message.startswith("could not reach the vendor: ")
        assert "No such file" not in message
        assert "Permission denied" not in message


def test_timeouts_become_network_error_and_recover() -> None:
    rec = Recorder(httpx.ReadTimeout("slow"), OK)
    with sync_client(rec, max_retries=1) as client:
        assert client.status("vozo:t").vendor_state == "processing"
    rec = Recorder(httpx.ReadTimeout("slow"))
    with sync_client(rec, max_retries=0) as client, pytest.raises(videojobs.NetworkError, match="no complete answer"):
        client.status("vozo:t")


def test_jimmyai_envelope_429_is_retried() -> None:
    rec = Recorder(
        httpx.Response(200, json={"code": "42900", "msg": "slow down"}),
        httpx.Response(200, json=CASES["jimmyai"].states[3].body),
    )
    with sync_client(rec) as client:
        assert client.status("jimmyai:jt-42").state is videojobs.State.RUNNING
    assert len(rec.requests) == 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("-3", None), ("soon", None), (None, None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    from videojobs._translate import parse_retry_after

    assert parse_retry_after(header) == expected


def test_retry_after_http_date_in_the_future() -> None:
    from email.utils import formatdate

    from videojobs._translate import parse_retry_after

    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)


def test_429_waits_what_retry_after_says_then_succeeds() -> None:
    clock = SimClock()
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "1"}), OK)
    with sync_client(rec, clock=clock) as client:
        assert client.status("vozo:t").state is videojobs.State.RUNNING
    assert len(rec.requests) == 2
    assert clock.sleeps == [1.0]


@pytest.mark.anyio
async def test_429_retry_after_async() -> None:
    clock = SimClock()
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "1"}), OK)
    async with async_client(rec, clock=clock) as client:
        assert (await client.status("vozo:t")).state is videojobs.State.RUNNING
    assert len(rec.requests) == 2
    assert clock.sleeps == [1.0]


def test_backoff_grows_with_jitter_and_fits_the_call_budget() -> None:
    clock = SimClock()
    rec = Recorder(httpx.Response(503))
    with (
        sync_client(rec, clock=clock, max_retries=4, request_timeout=10) as client,
        pytest.raises(videojobs.ServerError),
    ):
        client.status("vozo:t")
    assert len(rec.requests) == 5
    for n, slept in enumerate(clock.sleeps, 1):
        base = min(8.0, 0.5 * 2 ** (n - 1))
        assert base <= slept <= base + 0.5
    assert sum(clock.sleeps) < 10 * 5


def test_a_retry_after_beyond_the_call_budget_is_not_waited_out() -> None:
    clock = SimClock()
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "50"}))
    with (
        sync_client(rec, clock=clock, request_timeout=10, max_retries=3) as client,
        pytest.raises(videojobs.RateLimitError),
    ):
        client.status("vozo:t")  # budget 40 s: waiting 50 s would outlive it
    assert clock.sleeps == []
    assert len(rec.requests) == 1


def test_a_long_retry_after_is_not_waited_out_but_reported() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "3600"}))
    with sync_client(rec) as client, pytest.raises(videojobs.RateLimitError) as info:
        client.status("vozo:t")
    assert info.value.retry_after == 3600.0
    assert len(rec.requests) == 1


# --- the key never leaks ------------------------------------------------------------------------


def test_key_never_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [
        OK,
        httpx.Response(401, json={"message": "bad key"}),
        httpx.Response(500, content=b"<html>oops</html>"),
        httpx.Response(200, content=b"{broken"),
        httpx.ConnectError("refused"),
    ]
    seen: list[str] = []
    for answer in answers:
        for slug in VENDORS:
            rec = Recorder(answer)
            with sync_client(rec, max_retries=0) as client:
                handle = client.vendor(slug)
                seen += [repr(client), repr(handle), repr(handle.typed), repr(handle.settings), str(handle.typed)]
                try:
                    status = client.status(f"{slug}:t")
                    seen += [repr(status), str(status)]
                except videojobs.VideoJobsError as exc:
                    seen += [str(exc), repr(exc), repr(exc.__cause__), str(exc.__cause__), repr(vars(exc))]
    text = "\n".join(seen + [r.getMessage() for r in caplog.records])
    assert "HTTP 401" in text  # the errors really were produced
    for key in KEYS.values():
        assert key not in text


# --- sync and async agree -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_client_retries_and_pools_like_the_sync_one() -> None:
    rec = Recorder(httpx.Response(503), OK)
    async with async_client(rec) as client:
        status = await client.status("vozo:t")
        handle = client.vendor("vozo")
        assert handle is client.vendor("vozo")
        assert handle.typed.get_async_httpx_client() is handle.typed.get_async_httpx_client()
    assert status.state is videojobs.State.RUNNING
    assert len(rec.requests) == 2


@pytest.mark.network
def test_the_generated_async_client_of_a_handle_sends_on_the_clients_own_session() -> None:
    """A handle's typed client, used on its own (an endpoint the overlay does not wrap), sends
    through the default transport on the session the status polls use, and closes with it: the
    transport that serves it is made at its first request, after a status poll or before one."""
    import asyncio

    from tests.servers import serve

    async def run(root: str, sandbox: Any) -> tuple[int, str, bool]:
        async with videojobs.AsyncClient(api_keys=sandbox.api_keys(), base_urls={"vozo": root}) as client:
            handle = client.vendor("vozo")
            direct = await CASES["vozo"].endpoint().asyncio_detailed("own-1", client=handle.typed)  # before a poll
            polled = await client.status("vozo:own-1")
            again = await CASES["vozo"].endpoint().asyncio_detailed("own-1", client=handle.typed)  # and after
            assert again.status_code == direct.status_code
            session = handle.typed.get_async_httpx_client()._transport.client
        return direct.status_code, polled.task_id, session.closed

    with serve() as (sandbox, root):
        code, task_id, closed = asyncio.run(run(root, sandbox))
    assert (code, task_id, closed) == (200, "own-1", True)


@pytest.fixture
def face_client(request: pytest.FixtureRequest) -> Any:
    """A client of the face the test is parametrized with ("sync" or "async"), on an embedded
    sandbox; closed after the test (an async one on a loop of its own)."""
    import asyncio

    from videojobs.sandbox import Sandbox

    sandbox = Sandbox()
    if request.param == "sync":
        with videojobs.Client(**sandbox.client_kwargs()) as client:
            yield client
    else:
        client = videojobs.AsyncClient(**sandbox.client_kwargs(asynchronous=True))
        yield client
        asyncio.run(client.aclose())


def _drain(results: Any) -> list[Any]:
    import asyncio

    if hasattr(results, "__aiter__"):

        async def go() -> list[Any]:
            return [r async for r in results]

        return asyncio.run(go())
    return list(results)


@pytest.mark.parametrize("face_client", ["sync", "async"], indirect=True)
def test_overwrite_given_as_a_string_is_refused_not_read_as_true(face_client: Any, tmp_path: Any) -> None:
    """overwrite="no" (from a config file) replaced the file, where adaptive="no" was refused."""
    client = face_client
    done = "vozo:v-at_done"
    calls = [
        lambda: _run(client.download(done, tmp_path, overwrite="no")),
        lambda: _drain(client.download_all([done], tmp_path, overwrite="no")),
        lambda: _drain(client.wait_all([done], dest=tmp_path, overwrite="no")),
    ]
    for call in calls:
        with pytest.raises(videojobs.UsageError, match="overwrite must be True or False, not 'no'"):
            call()
    assert list(tmp_path.iterdir()) == []


def _run(result: Any) -> Any:
    """A sync face's result as is, an async face's awaited."""
    import asyncio

    return asyncio.run(result) if hasattr(result, "__await__") else result


@pytest.mark.parametrize("face_client", ["sync", "async"], indirect=True)
def test_a_batch_refuses_a_bad_reference_or_a_closed_client_at_the_call(face_client: Any, tmp_path: Any) -> None:
    """download_all yielded a bad reference as a job's error where wait_all refused it; a
    closed client's batches yielded 'this Client is closed' job by job where status() raised;
    AsyncClient.download_all checked nothing until its first step."""
    import asyncio

    client = face_client
    with pytest.raises(videojobs.ConfigurationError, match="unknown vendor 'foo'"):
        client.download_all(["foo:x"], tmp_path)  # at the call: no iteration
    with pytest.raises(videojobs.InvalidReferenceError):
        client.download_all(["vozo:"], tmp_path)
    with pytest.raises(videojobs.UsageError, match="max_downloads"):
        client.download_all(["vozo:x"], tmp_path, max_downloads=0)
    with pytest.raises(videojobs.InvalidReferenceError, match="not int"):
        _run(client.download(123, tmp_path))
    if isinstance(client, videojobs.Client):
        client.close()
    else:
        asyncio.run(client.aclose())
    for batch in (lambda: client.wait_all(["vozo:x"]), lambda: client.download_all(["vozo:x"], tmp_path)):
        with pytest.raises(videojobs.UsageError, match="is closed"):
            batch()


def test_a_vendor_whose_target_cannot_be_loaded_is_a_configuration_error() -> None:
    """An entry point or ``register_vendor()`` naming a module, class or object that is not there
    (or is no adapter) was a bare ModuleNotFoundError or AttributeError from ``status()``, and
    "a videojobs bug" from ``wait_all``. In a process of its own: the registry is the process's."""
    code = """
import sys, videojobs
# a plugin whose import raises (its own bug): a finder that raises for its name
sys.meta_path.insert(0, type("Raising", (), {"find_spec": staticmethod(
    lambda name, path=None, target=None: (_ for _ in ()).throw(RuntimeError("plugin blew up"))
    if name == "raising_plugin_q" else None)}))
for slug, target in [("acme", "no_such_module_q:Adapter"), ("acmetwo", "videojobs.vendors.vozo:Missing"),
                     ("acmethree", "json:JSONDecoder"), ("acmefour", "json:dumps"),
                     ("acmefive", "raising_plugin_q:Adapter")]:
    videojobs.register_vendor(slug, target)
    try:
        videojobs.Client(api_keys={slug: "k" * 20}, environ={}).status(slug + ":t")
    except videojobs.ConfigurationError as exc:
        print(exc)
for target in (":Foo", "..x:Foo", "mod:", "mod:a.b", "mod"):
    try:
        videojobs.register_vendor("acmesix", target)
    except videojobs.ConfigurationError as exc:
        print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "vendor 'acme' points at 'no_such_module_q:Adapter', which cannot be loaded: "
        "ModuleNotFoundError: No module named 'no_such_module_q'",
        "vendor 'acmetwo' points at 'videojobs.vendors.vozo:Missing', which cannot be loaded: "
        "AttributeError: module 'videojobs.vendors.vozo' has no attribute 'Missing'",
        "vendor 'acmethree' points at 'json:JSONDecoder', which is not a videojobs adapter class",
        "vendor 'acmefour' points at 'json:dumps', which is not a videojobs adapter class",
        "vendor 'acmefive' points at 'raising_plugin_q:Adapter', which cannot be loaded: RuntimeError: plugin blew up",
        *(
            f"register_vendor: the target must be 'module:AdapterClass', not {target!r}"
            for target in (":Foo", "..x:Foo", "mod:", "mod:a.b", "mod")
        ),
    ]
