from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.cases import VENDORS
from tests.clocks import SimClock

KEYS = {slug: f"sk-{slug}-SECRET-{i}x9" for i, slug in enumerate(VENDORS)}
"""One distinctive key per vendor: tests grep for these to prove a key never leaks."""

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for slug in VENDORS:
        monkeypatch.delenv(f"{slug.upper()}_API_KEY", raising=False)
        monkeypatch.delenv(f"{slug.upper()}_BASE_URL", raising=False)


class Recorder:
    """A MockTransport handler that answers from a script and keeps every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        # a fresh copy each time: httpx consumes a response's stream
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def sync_client(recorder: Recorder, **kwargs: Any) -> Any:
    import videojobs

    kwargs.setdefault("api_keys", KEYS)
    kwargs.setdefault("clock", SimClock())  # retries and waits happen as configured, without sleeping
    return videojobs.Client(transport=httpx.MockTransport(recorder), **kwargs)


def async_client(recorder: Recorder, **kwargs: Any) -> Any:
    import videojobs

    async def handler(request: httpx.Request) -> httpx.Response:
        return recorder(request)

    kwargs.setdefault("api_keys", KEYS)
    kwargs.setdefault("clock", SimClock())
    return videojobs.AsyncClient(transport=httpx.MockTransport(handler), **kwargs)


# --- memory: no test may take the process above MAX_RSS ------------------------------------------

MAX_RSS_MIB = 500
_peak: dict[str, Any] = {"kib": 0, "test": "(collection)"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux; the peak so far
    if kib > _peak["kib"]:
        _peak.update(kib=kib, test=item.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _peak["kib"]:
        mib = _peak["kib"] / 1024
        terminalreporter.write_line(f"peak RSS of the test process: {mib:.0f} MiB (reached in {_peak['test']})")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _peak["kib"] / 1024 > MAX_RSS_MIB:
        print(f"\nfailed: {_peak['test']} took the test process above {MAX_RSS_MIB} MiB of RSS")
        session.exitstatus = 1
