"""The status request built from the vendor's prefix (worked out once per client) is the request
the generated builder and ``httpx.Client.build_request`` describe: method, URL and headers, byte
for byte, for any task id a caller may pass (percent-encoded as one path segment)."""

from __future__ import annotations

import functools

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import videojobs
from tests.conftest import KEYS
from videojobs._base import check_task_id
from videojobs._exceptions import InvalidReferenceError
from videojobs._exchange import ACCEPT_ENCODING, RequestPrefix
from videojobs._registry import adapter_class

VENDORS = videojobs.known_vendors()
BASES = ["http://127.0.0.1:8123", "http://127.0.0.1:8123/", "https://api.example.com/a/b", "http://[::1]:9/p%20q/"]
EXTENSIONS: dict[str, object] = {"timeout": {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}}

DETERMINISTIC = settings(derandomize=True, max_examples=200, deadline=None, database=None)


def _requests(http: httpx.Client, slug: str, task_id: str) -> tuple[httpx.Request, httpx.Request]:
    endpoint = adapter_class(slug).endpoint
    kwargs = endpoint.build_request_kwargs(task_id)
    general = http.build_request(**kwargs, headers={"Accept-Encoding": ACCEPT_ENCODING}, extensions=EXTENSIONS)
    fast = RequestPrefix().request(http, kwargs, EXTENSIONS)
    assert fast is not None
    return general, fast


def _same(a: httpx.Request, b: httpx.Request) -> None:
    assert a.method == b.method
    assert a.url.raw_path == b.url.raw_path
    assert str(a.url) == str(b.url)
    assert a.headers.raw == b.headers.raw  # names, values and order
    assert a.extensions == b.extensions


@functools.cache  # one client per vendor and base URL (each makes an SSL context: tens of ms)
def _client(slug: str, base: str) -> videojobs.Client:
    return videojobs.Client(api_keys={slug: KEYS[slug]}, base_urls={slug: base})


def _typed_http(slug: str, base: str) -> httpx.Client:
    client = _client(slug, base)
    http: httpx.Client = client.vendor(slug).typed.get_httpx_client()
    return http


@DETERMINISTIC
@given(
    slug=st.sampled_from(VENDORS),
    base=st.sampled_from(BASES),
    task_id=st.one_of(st.text(min_size=1, max_size=40), st.text(alphabet="./%?#;=&+ ~:@!$'()*,[]", min_size=1)),
)
def test_the_prefix_builds_the_request_build_request_would(slug: str, base: str, task_id: str) -> None:
    try:
        check_task_id(slug, task_id)
    except InvalidReferenceError:
        return  # refused before any request is built
    general, fast = _requests(_typed_http(slug, base), slug, task_id)
    _same(general, fast)
    assert fast.url.raw_path.count(b"/") == general.url.raw_path.count(b"/")  # the id is one segment


@pytest.mark.parametrize("slug", VENDORS)
def test_a_header_set_on_the_typed_client_later_is_sent(slug: str) -> None:
    http = (
        videojobs.Client(api_keys={slug: KEYS[slug]}, base_urls={slug: BASES[0]}).vendor(slug).typed.get_httpx_client()
    )
    prefix = RequestPrefix()
    kwargs = adapter_class(slug).endpoint.build_request_kwargs("t-1")
    assert prefix.request(http, kwargs, EXTENSIONS) is not None
    http.headers["X-Trace"] = "on"
    fast = prefix.request(http, kwargs, EXTENSIONS)
    assert fast is not None
    assert fast.headers["X-Trace"] == "on"
    _same(http.build_request(**kwargs, headers={"Accept-Encoding": ACCEPT_ENCODING}, extensions=EXTENSIONS), fast)
    http.cookies.set("session", "s1")  # a cookie jar in use: the general path, which sends them
    assert prefix.request(http, kwargs, EXTENSIONS) is None
