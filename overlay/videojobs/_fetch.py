"""The I/O of downloads: run :func:`._download.download_plan` and :class:`._download.Transfer`
on httpx, blocking or on asyncio. Nothing here decides anything the other twin does not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from ._download import MAX_REDIRECTS, Fetch, HostRefused, NeedStatus, Plan, Transfer, next_hop
from ._exceptions import DownloadError, NetworkError, VideoJobsError
from ._status import Download, JobStatus

__all__ = ["afetch", "arun_plan", "fetch", "file_client", "run_plan", "utc_now"]

REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
RESUME_BACKOFF: Final = 0.5  # seconds before the first resume after a drop, doubling


def utc_now() -> datetime:
    return datetime.now(UTC)


def file_client(cls: type[Any], transport: Any, timeout: float, verify: Any) -> Any:
    """An httpx client for file hosts: no key, no cookies kept, redirects checked by hand."""
    return cls(
        transport=transport,
        timeout=httpx.Timeout(timeout),  # per socket operation: a long download may take its time
        follow_redirects=False,
        verify=verify,
        headers={"User-Agent": "videojobs"},
    )


def _network(exc: Exception, vendor: str) -> NetworkError:
    return NetworkError(f"the download broke off: {type(exc).__name__}: {exc}", vendor=vendor)


def _disk(exc: OSError, transfer: Transfer) -> DownloadError:
    return DownloadError(f"could not write {transfer.part}: {exc.strerror or exc}", vendor=transfer.vendor)


# --- blocking ------------------------------------------------------------------------------------


class _Walk:
    """Walks a download plan: hands the drivers each action, feeds the plan each result or error."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.value: JobStatus | Download | None = None
        self.error: BaseException | None = None
        self.result: Download | None = None

    def __iter__(self) -> Any:
        while True:
            try:
                action = self.plan.send(self.value) if self.error is None else self.plan.throw(self.error)
            except StopIteration as stop:
                self.result = stop.value
                return
            self.value = self.error = None
            yield action

    def done(self) -> Download:
        assert self.result is not None
        return self.result


def run_plan(plan: Plan, status: Callable[[str], JobStatus], get: Callable[[Fetch], Download]) -> Download:
    walk = _Walk(plan)
    for action in walk:
        try:
            walk.value = status(action.ref) if isinstance(action, NeedStatus) else get(action)
        except (VideoJobsError, HostRefused) as exc:
            walk.error = exc
    return walk.done()


def fetch(http: httpx.Client, url: str, transfer: Transfer, attempts: int) -> Download:
    """Save ``url`` through ``transfer``, resuming after a broken transfer up to ``attempts`` times in all."""
    for attempt in range(attempts):
        try:
            return _once(http, url, transfer)
        except NetworkError:
            transfer.pause()
            if attempt + 1 >= attempts:
                raise
            time.sleep(RESUME_BACKOFF * 2**attempt)
        except OSError as exc:  # the disk: full, read-only, gone
            transfer.pause()
            raise _disk(exc, transfer) from exc
        except BaseException:
            transfer.pause()  # Ctrl-C, an error page: the .part stays only if the transfer kept it
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _once(http: httpx.Client, url: str, transfer: Transfer) -> Download:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = http.send(http.build_request("GET", current, headers=transfer.request_headers()), stream=True)
        except httpx.HTTPError as exc:
            raise _network(exc, transfer.vendor) from exc
        try:
            if response.status_code in REDIRECTS:
                current = next_hop(current, response.headers.get("location"), transfer.vendor)
                continue
            transfer.begin(response.status_code, response.headers, response.url.host)
            for chunk in response.iter_raw():  # as they arrive: a drop loses no byte held in a buffer
                transfer.write(chunk)
            return transfer.finish()
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise _network(exc, transfer.vendor) from exc
        finally:
            response.close()
    raise DownloadError(f"the file host redirected more than {MAX_REDIRECTS} times", vendor=transfer.vendor)


# --- asyncio -------------------------------------------------------------------------------------


async def arun_plan(
    plan: Plan, status: Callable[[str], Awaitable[JobStatus]], get: Callable[[Fetch], Awaitable[Download]]
) -> Download:
    walk = _Walk(plan)
    for action in walk:
        try:
            walk.value = await (status(action.ref) if isinstance(action, NeedStatus) else get(action))
        except (VideoJobsError, HostRefused) as exc:
            walk.error = exc
    return walk.done()


async def afetch(http: httpx.AsyncClient, url: str, transfer: Transfer, attempts: int) -> Download:
    """The asyncio twin of :func:`fetch`."""
    for attempt in range(attempts):
        try:
            return await _aonce(http, url, transfer)
        except NetworkError:
            transfer.pause()
            if attempt + 1 >= attempts:
                raise
            await asyncio.sleep(RESUME_BACKOFF * 2**attempt)
        except OSError as exc:
            transfer.pause()
            raise _disk(exc, transfer) from exc
        except BaseException:
            transfer.pause()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


async def _aonce(http: httpx.AsyncClient, url: str, transfer: Transfer) -> Download:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            request = http.build_request("GET", current, headers=transfer.request_headers())
            response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _network(exc, transfer.vendor) from exc
        try:
            if response.status_code in REDIRECTS:
                current = next_hop(current, response.headers.get("location"), transfer.vendor)
                continue
            transfer.begin(response.status_code, response.headers, response.url.host)
            async for chunk in response.aiter_raw():  # as they arrive (see fetch)
                transfer.write(chunk)
            return await asyncio.to_thread(transfer.finish)  # fsync a large file off the loop
        except (httpx.HTTPError, httpx.StreamError) as exc:
            raise _network(exc, transfer.vendor) from exc
        finally:
            await response.aclose()
    raise DownloadError(f"the file host redirected more than {MAX_REDIRECTS} times", vendor=transfer.vendor)
