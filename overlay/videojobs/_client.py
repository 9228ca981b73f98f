"""``Client`` and ``AsyncClient``: thin twins over ``_base`` and ``_wait``; only the I/O differs."""

from __future__ import annotations

import contextlib
import functools
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import httpx

from ._adapter import VendorAdapter
from ._base import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    RETRY_JITTER,
    RETRY_WAIT_INITIAL,
    RETRY_WAIT_MAX,
    BaseClient,
    VendorSettings,
    check_task_id,
    interpret,
    retry_decision,
    split_ref,
    unparsable,
)
from ._exceptions import TRANSIENT, UsageError, VideoJobsError, aremember_response, remember_response, translating
from ._policy import PollingPolicy
from ._status import JobStatus
from ._wait import DEFAULT_MAX_FAILED_POLLS, OnUpdate, RateLimiter, Waiter

__all__ = ["AsyncClient", "AsyncVendorClient", "Client", "VendorClient"]

logger = logging.getLogger("videojobs")

if TYPE_CHECKING:
    import asyncio

# The clocks and sleeps the wait loops use (tests replaying cassettes swap the sleeps out).
_now = time.monotonic
_sleep = time.sleep


async def _asleep(seconds: float) -> None:
    import asyncio  # imported on first use: ``import videojobs`` stays as light as httpx

    await asyncio.sleep(seconds)


def _retrying(max_retries: int) -> Any:
    import stamina  # only needed once a call has failed: the usual call never retries

    return stamina.retry_context(
        on=retry_decision,
        attempts=max_retries + 1,
        timeout=None,
        wait_initial=RETRY_WAIT_INITIAL,
        wait_max=RETRY_WAIT_MAX,
        wait_jitter=RETRY_JITTER,
    )


class _VendorBase:
    """One vendor on one client: its adapter, settings, typed client and rate limiter."""

    def __init__(
        self,
        adapter: VendorAdapter,
        settings: VendorSettings,
        typed: Any,
        max_retries: int,
        limiter: RateLimiter | None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.adapter = adapter
        self.settings = settings
        self.typed = typed  # the generated AuthenticatedClient, for vendor-specific calls
        self.max_retries = max_retries
        self.limiter = limiter
        self.max_connections = max_connections

    @property
    def name(self) -> str:
        return self.adapter.name

    def _interpret(self, task_id: str, response: Any) -> JobStatus:
        code = int(response.status_code)
        status = interpret(self.adapter, task_id, code, response.content, response.headers, response.parsed)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s: HTTP %d, %s (%s)", self.name, task_id, code, status.state, status.vendor_state)
        return status

    def _unparsable(self, task_id: str) -> Callable[[httpx.Response, BaseException], VideoJobsError]:
        return functools.partial(unparsable, self.adapter, task_id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} base_url={self.settings.base_url!r}>"


class VendorClient(_VendorBase):
    """``Client.vendor(slug)``: one vendor's status calls, and its typed client in ``.typed``."""

    def status(self, task_id: str) -> JobStatus:
        """The job's status; retries connection errors, timeouts, 429 and 5xx."""
        task_id = check_task_id(self.name, task_id)
        try:
            return self._once(task_id)  # the usual case costs no retry machinery
        except TRANSIENT as first:
            failed: Exception | None = first
        for attempt in _retrying(self.max_retries):
            with attempt:
                if failed is not None:  # stamina decides about the first failure like any other
                    pending, failed = failed, None
                    raise pending
                return self._once(task_id)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    def _once(self, task_id: str) -> JobStatus:
        if self.limiter is not None and (delay := self.limiter.reserve(_now())) > 0:
            _sleep(delay)
        with translating(self.name, self._unparsable(task_id)):
            response = self.adapter.fetch(self.typed, task_id)
        return self._interpret(task_id, response)

    def close(self) -> None:
        self.typed.get_httpx_client().close()


class AsyncVendorClient(_VendorBase):
    """``AsyncClient.vendor(slug)``: the async twin of :class:`VendorClient`."""

    _slots: asyncio.Semaphore | None = None

    def _connection_slots(self) -> asyncio.Semaphore:
        """Requests beyond the pool's size wait here, not in httpcore's queue (which is rescanned per request)."""
        if self._slots is None:
            import asyncio

            self._slots = asyncio.Semaphore(self.max_connections)
        return self._slots

    async def status(self, task_id: str, *, _gate: asyncio.Semaphore | None = None) -> JobStatus:
        """The job's status; retries connection errors, timeouts, 429 and 5xx."""
        task_id = check_task_id(self.name, task_id)
        try:
            return await self._once(task_id, _gate)  # the usual case costs no retry machinery
        except TRANSIENT as first:
            failed: Exception | None = first
        async for attempt in _retrying(self.max_retries):
            with attempt:
                if failed is not None:  # stamina decides about the first failure like any other
                    pending, failed = failed, None
                    raise pending
                return await self._once(task_id, _gate)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _once(self, task_id: str, gate: asyncio.Semaphore | None) -> JobStatus:
        if self.limiter is not None and (delay := self.limiter.reserve(_now())) > 0:
            await _asleep(delay)
        async with gate or contextlib.nullcontext(), self._connection_slots():
            with translating(self.name, self._unparsable(task_id)):
                response = await self.adapter.afetch(self.typed, task_id)
        return self._interpret(task_id, response)

    async def aclose(self) -> None:
        await self.typed.get_async_httpx_client().aclose()


_DOC_ARGS = """
    api_keys     vendor slug → key; falls back to ``<SLUG>_API_KEY``
    base_urls    vendor slug → URL; falls back to ``<SLUG>_BASE_URL``, then the spec's server
    timeout      seconds per request
    max_retries  retries of connection errors, timeouts, 429 and 5xx
    transport    passed to every underlying httpx client (tests, proxies)
    verify       TLS verification (on unless you turn it off)
    rate_limits  vendor slug → requests per second (None: unlimited); default 10 per vendor
    max_connections  pooled connections per vendor (default 10)
"""


H = TypeVar("H", VendorClient, AsyncVendorClient)


class _Twin(BaseClient, Generic[H]):
    """What Client and AsyncClient share beyond ``BaseClient``: the per-vendor handles."""

    _handle_class: type[H]
    _transport: Any
    _vendors: dict[str, H]

    _hook: Callable[[httpx.Response], Any]  # keeps the last response (see _exceptions.translating)

    def vendor(self, slug: str) -> H:
        """The handle for one vendor (created on first use, with one pooled connection set)."""
        handle = self._vendors.get(slug)
        if handle is None:
            cls, settings = self._settings(slug)
            adapter = cls()
            typed = self._typed_client(adapter, settings, self._transport, self._hook)
            handle = self._handle_class(
                adapter, settings, typed, self.max_retries, self._limiter(slug), self.max_connections
            )
            self._vendors[slug] = handle
        return handle


class Client(_Twin[VendorClient]):
    """Status of jobs at every vendor, synchronously.

    >>> with videojobs.Client() as client:
    ...     client.wait("vozo:task-123").video_url
    """

    __doc__ = (__doc__ or "") + _DOC_ARGS

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
        verify: bool | ssl.SSLContext = True,
        rate_limits: Mapping[str, float | None] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            api_keys=api_keys,
            base_urls=base_urls,
            timeout=timeout,
            max_retries=max_retries,
            verify=verify,
            rate_limits=rate_limits,
            max_connections=max_connections,
            environ=environ,
        )
        self._transport = transport
        self._hook = remember_response
        self._vendors: dict[str, VendorClient] = {}

    _handle_class = VendorClient

    def status(self, ref: str) -> JobStatus:
        """The status of ``"<vendor>:<task id>"``."""
        slug, task_id = split_ref(ref)
        return self.vendor(slug).status(task_id)

    def watch(
        self,
        ref: str,
        *,
        timeout: float | None = None,
        policy: PollingPolicy | None = None,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
    ) -> Iterator[JobStatus]:
        """Yield the job's status each time its state or progress changes, until it ends."""
        slug, task_id = split_ref(ref)
        handle = self.vendor(slug)
        waiter = Waiter(ref, start=_now(), timeout=timeout, policy=policy, max_failed_polls=max_failed_polls)
        while True:
            try:
                status = handle.status(task_id)
            except TRANSIENT as exc:
                waiter.failed(exc)
            else:
                if waiter.observe(status, _now()):
                    yield status
                if status.is_terminal:
                    return
            delay = waiter.next_sleep(_now())
            if delay is None:
                raise waiter.timed_out()
            _sleep(delay)

    def wait(
        self,
        ref: str,
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        policy: PollingPolicy | None = None,
    ) -> JobStatus:
        """Poll until the job ends; return its last status (a FAILED job is returned, not raised).

        ``on_update(status)`` is called whenever the state or progress changes. On the
        deadline, :class:`WaitTimeout` carries ``last_status``. Transient faults do not end a wait.
        """
        last: JobStatus | None = None
        for last in self.watch(ref, timeout=timeout, policy=policy):
            if on_update is not None:
                on_update(last)
        assert last is not None
        return last

    def close(self) -> None:
        for handle in self._vendors.values():
            handle.close()
        self._vendors.clear()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<videojobs.Client vendors in use={sorted(self._vendors)}>"


class AsyncClient(_Twin[AsyncVendorClient]):
    """Status of jobs at every vendor, on asyncio. The twin of :class:`Client`, plus ``wait_all``."""

    __doc__ = (__doc__ or "") + _DOC_ARGS

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool | ssl.SSLContext = True,
        rate_limits: Mapping[str, float | None] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            api_keys=api_keys,
            base_urls=base_urls,
            timeout=timeout,
            max_retries=max_retries,
            verify=verify,
            rate_limits=rate_limits,
            max_connections=max_connections,
            environ=environ,
        )
        self._transport = transport
        self._hook = aremember_response
        self._vendors: dict[str, AsyncVendorClient] = {}

    _handle_class = AsyncVendorClient

    async def status(self, ref: str) -> JobStatus:
        """The status of ``"<vendor>:<task id>"``."""
        slug, task_id = split_ref(ref)
        return await self.vendor(slug).status(task_id)

    async def watch(
        self,
        ref: str,
        *,
        timeout: float | None = None,
        policy: PollingPolicy | None = None,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        _gate: asyncio.Semaphore | None = None,
    ) -> AsyncIterator[JobStatus]:
        """Yield the job's status each time its state or progress changes, until it ends."""
        slug, task_id = split_ref(ref)
        handle = self.vendor(slug)
        waiter = Waiter(ref, start=_now(), timeout=timeout, policy=policy, max_failed_polls=max_failed_polls)
        while True:
            try:
                status = await handle.status(task_id, _gate=_gate)
            except TRANSIENT as exc:
                waiter.failed(exc)
            else:
                if waiter.observe(status, _now()):
                    yield status
                if status.is_terminal:
                    return
            delay = waiter.next_sleep(_now())
            if delay is None:
                raise waiter.timed_out()
            await _asleep(delay)

    async def wait(
        self,
        ref: str,
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        policy: PollingPolicy | None = None,
        _gate: asyncio.Semaphore | None = None,
    ) -> JobStatus:
        """Poll until the job ends; return its last status. See :meth:`Client.wait`."""
        last: JobStatus | None = None
        async for last in self.watch(ref, timeout=timeout, policy=policy, _gate=_gate):
            if on_update is not None:
                on_update(last)
        assert last is not None
        return last

    async def wait_all(
        self,
        refs: Iterable[str],
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        policy: PollingPolicy | None = None,
        concurrency: int = 64,
    ) -> AsyncIterator[JobStatus | VideoJobsError]:
        """Wait for many jobs at once, yielding each as it finishes.

        Every job comes back exactly once: its final :class:`JobStatus`, or the
        :class:`VideoJobsError` that ended its wait (``error.ref`` says which job). At most
        ``concurrency`` requests are in flight; each vendor keeps one pooled connection
        set and its rate limit. One coroutine per job, no threads.
        """
        refs = list(refs)
        for ref in refs:
            split_ref(ref)  # refuse bad references before anything starts
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise UsageError(f"concurrency must be a whole number >= 1, not {concurrency!r}")
        import asyncio

        gate = asyncio.Semaphore(concurrency)
        done: asyncio.Queue[JobStatus | VideoJobsError] = asyncio.Queue()

        async def one(ref: str) -> None:
            try:
                result: JobStatus | VideoJobsError = await self.wait(
                    ref, timeout=timeout, on_update=on_update, policy=policy, _gate=gate
                )
            except VideoJobsError as exc:
                exc.ref = ref
                result = exc
            done.put_nowait(result)

        tasks = [asyncio.create_task(one(ref), name=f"videojobs wait {ref}") for ref in refs]
        try:
            for _ in tasks:
                yield await done.get()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_all_list(
        self,
        refs: Iterable[str],
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        policy: PollingPolicy | None = None,
        concurrency: int = 64,
    ) -> list[JobStatus | VideoJobsError]:
        """:meth:`wait_all` gathered into a list in the order of ``refs``."""
        refs = list(refs)
        slots: dict[str, list[int]] = {}
        for index, ref in enumerate(refs):
            slots.setdefault(ref, []).append(index)
        out: list[JobStatus | VideoJobsError | None] = [None] * len(refs)
        async for result in self.wait_all(
            refs, timeout=timeout, on_update=on_update, policy=policy, concurrency=concurrency
        ):
            assert result.ref is not None
            out[slots[result.ref].pop(0)] = result
        return [r for r in out if r is not None]

    async def aclose(self) -> None:
        for handle in self._vendors.values():
            await handle.aclose()
        self._vendors.clear()
        self._closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<videojobs.AsyncClient vendors in use={sorted(self._vendors)}>"
