"""``Client`` and ``AsyncClient``: two I/O faces over one implementation (``_calls``).

Everything but the I/O is shared: the constructor and its checks (``_Twin``), the plans of a
status call and a wait (``_calls``), the boundary (``_boundary``). ``VendorClient`` and
``AsyncVendorClient`` differ in how they send one request; ``Client`` and ``AsyncClient``
in how they drive a plan.
"""

from __future__ import annotations

import functools
import os
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import attrs
import httpx

from ._base import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    VendorSettings,
    check_task_id,
    check_vendor_mapping,
    resolve_settings,
    split_ref,
)
from ._calls import VendorCore, adrive, arun, drive, run, status_plan, watch_plan
from ._exceptions import CallbackError, ConfigurationError, NetworkError, UsageError, VideoJobsError
from ._exchange import ACCEPT_ENCODING, Secrets, exchange_aiohttp, exchange_async, exchange_sync
from ._policy import PollingPolicy
from ._ratecontrol import AdaptiveRate, RetryBudget, SlotWithdrawn
from ._registry import adapter_class
from ._scrub import LOG_SCRUBBER
from ._status import Download, JobStatus, State
from ._translate import Exchange
from ._wait import DEFAULT_MAX_FAILED_POLLS, Clock, OnPollError, OnUpdate, SystemClock, Waiter, check_wait_args

if TYPE_CHECKING:
    import asyncio

    from ._download import Fetch, OnProgress, Pace
    from ._files import Transfer

__all__ = ["AsyncClient", "AsyncVendorClient", "Client", "VendorClient"]


def _whole(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return value


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


# --- one vendor on one client ----------------------------------------------------------------------


class _Handle:
    """What both vendor handles hold: the vendor's core, settings, typed client and limits."""

    def __init__(
        self,
        core: VendorCore,
        settings: VendorSettings,
        new_typed: Callable[[], Any],
        *,
        max_response_bytes: int,
        max_connections: int,
    ) -> None:
        self.core = core
        self.settings = settings
        self._new_typed = new_typed
        # the generated AuthenticatedClient, for vendor-specific calls, and the aiohttp transport
        # under it when it is the async client's default (None otherwise)
        self.typed, self._aio_transport = new_typed()
        self.max_response_bytes = max_response_bytes
        self.max_connections = max_connections
        self.secrets = Secrets([settings.api_key])
        LOG_SCRUBBER.add(settings.api_key)
        self.closed = False
        self._request_kwargs = core.adapter.endpoint.build_request_kwargs

    @property
    def name(self) -> str:
        return self.core.name

    @property
    def adapter(self) -> Any:
        return self.core.adapter

    def _check_slot(self, epoch: int | None) -> None:
        if epoch is not None and epoch != self.core.rate.epoch:
            raise SlotWithdrawn("the vendor throttled after this call's slot was granted", vendor=self.name)

    def _check_open(self) -> None:
        if self.closed:
            raise UsageError(f"the client of this {self.name} handle is closed", vendor=self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} base_url={self.settings.base_url!r}>"


class VendorClient(_Handle):
    """``Client.vendor(slug)``: one vendor's status calls, and its typed client in ``.typed``."""

    def status(self, task_id: str) -> JobStatus:
        """The job's status; retries connection errors, timeouts, 429 and 5xx within the call's budget."""
        task_id = check_task_id(self.name, task_id)
        return run(status_plan(self.core, task_id), functools.partial(self.exchange, task_id), self.core.clock.sleep)

    def exchange(self, task_id: str, timeout: float, epoch: int | None = None) -> Exchange:
        """Send one status request and read its answer, bounded by ``timeout`` seconds in all
        (``epoch``: the vendor's rate epoch the call's slot was granted in, if any)."""
        self._check_open()
        self._check_slot(epoch)
        return exchange_sync(
            self.typed.get_httpx_client(),
            self._request_kwargs(task_id),
            time.monotonic() + timeout,
            self.max_response_bytes,
            self.secrets,
            self.name,
        )

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            LOG_SCRUBBER.discard(self.settings.api_key)
        self.typed.get_httpx_client().close()


class AsyncVendorClient(_Handle):
    """``AsyncClient.vendor(slug)``: the async twin of :class:`VendorClient`.

    Its connections belong to the event loop it first ran on; on another loop it starts afresh
    once the first loop is closed (``asyncio.run`` twice works), and says why not otherwise.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _slots: asyncio.Semaphore | None = None
    _lane: Any = None  # _aio.Lane on the default transport, once bound to a loop

    async def status(self, task_id: str) -> JobStatus:
        """The job's status; retries connection errors, timeouts, 429 and 5xx within the call's budget."""
        task_id = check_task_id(self.name, task_id)
        plan = status_plan(self.core, task_id)
        return await arun(plan, functools.partial(self.exchange, task_id), self.core.clock.asleep)

    async def exchange(self, task_id: str, timeout: float, epoch: int | None = None) -> Exchange:
        """Send one status request and read its answer, bounded by ``timeout`` seconds in all
        (waiting for one of the vendor's ``max_connections`` included)."""
        import asyncio

        self._check_open()
        deadline = time.monotonic() + timeout
        http = self._bind(asyncio.get_running_loop())
        slots = self._slots
        assert slots is not None
        try:
            async with asyncio.timeout(timeout):
                await slots.acquire()
        except TimeoutError as exc:
            raise NetworkError(f"no connection to the vendor was free within {timeout:g} s", vendor=self.name) from exc
        try:
            self._check_slot(epoch)  # after waiting for a connection: the vendor may have throttled meanwhile
            kwargs = self._request_kwargs(task_id)
            if self._lane is not None:
                return await exchange_aiohttp(
                    self._lane, kwargs, deadline, self.max_response_bytes, self.secrets, self.name
                )
            return await exchange_async(http, kwargs, deadline, self.max_response_bytes, self.secrets, self.name)
        finally:
            slots.release()

    def _bind(self, loop: asyncio.AbstractEventLoop) -> httpx.AsyncClient:
        if self._loop is not loop:
            import asyncio

            if self._loop is not None:
                if not self._loop.is_closed():
                    raise UsageError(
                        "this AsyncClient is in use on another event loop that is still open; "
                        "an AsyncClient's connections belong to one loop: create one client per loop",
                        vendor=self.name,
                    )
                self.typed, self._aio_transport = self._new_typed()  # the old loop is gone, and its connections
            self._loop = loop
            self._lane = None
            # requests beyond the pool's size wait here, not in httpcore's queue (rescanned per request)
            self._slots = asyncio.Semaphore(self.max_connections)
        http: httpx.AsyncClient = self.typed.get_async_httpx_client()
        if self._lane is None and self._aio_transport is not None:
            from ._aio import Lane

            self._lane = Lane(self._aio_transport, http, ACCEPT_ENCODING)
        return http

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            LOG_SCRUBBER.discard(self.settings.api_key)
        await self.typed.get_async_httpx_client().aclose()


# --- the faces -------------------------------------------------------------------------------------

_DOC_ARGS = """
    api_keys        vendor slug → key; falls back to ``<SLUG>_API_KEY``
    base_urls       vendor slug → URL; falls back to ``<SLUG>_BASE_URL``, then the spec's server
    timeout         seconds for one request attempt, all of it (connect, send, headers, body);
                    a call with its retries takes at most ``timeout * (max_retries + 1)``
    max_retries     retries of connection errors, timeouts, 429 and 5xx
    transport       passed to every underlying httpx client (tests, proxies); the default
                    sync transport also enforces the attempt's deadline on every socket operation
    verify          TLS verification (on unless you turn it off), or an ``ssl.SSLContext``
    rate_limits     vendor slug → a hard ceiling in requests per second (default: none)
    adaptive        pace each vendor by its 429s (default True: no limit until it throttles, then
                    a shared token bucket on a CUBIC curve; a Retry-After pauses the vendor)
    max_connections pooled connections per vendor (default 10)
    max_response_bytes  the largest answer read, decoded (default 4 MiB); larger is malformed
    environ         where ``<SLUG>_API_KEY`` and ``<SLUG>_BASE_URL`` are read (default os.environ)
    clock           what waits, backoffs and rate limits sleep on (default the system's; tests inject one)
"""

H = TypeVar("H", VendorClient, AsyncVendorClient)
T = TypeVar("T", httpx.BaseTransport, httpx.AsyncBaseTransport)


class _Twin(Generic[H, T]):
    """Configuration and per-vendor handles: everything the faces share (no I/O)."""

    _handle_class: type[H]

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: T | None = None,
        verify: bool | ssl.SSLContext = True,
        rate_limits: Mapping[str, float | None] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        environ: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        adaptive: bool = True,
    ) -> None:
        self.adaptive = bool(adaptive)
        self.timeout = _seconds("timeout", timeout)
        self.max_retries = _whole("max_retries", max_retries, 0)
        self.max_connections = _whole("max_connections", max_connections, 1)
        self.max_response_bytes = _whole("max_response_bytes", max_response_bytes, 1024)
        self._rate_limits: dict[str, float | None] = check_vendor_mapping("rate_limits", rate_limits)
        for slug, rate in self._rate_limits.items():
            if rate is not None:
                _seconds(f"rate_limits[{slug!r}] (requests per second)", rate)
        self._api_keys: dict[str, str] = check_vendor_mapping("api_keys", api_keys)
        self._base_urls: dict[str, str] = check_vendor_mapping("base_urls", base_urls)
        if clock is not None and not isinstance(clock, Clock):
            raise ConfigurationError(f"clock must have now(), sleep() and asleep(), not {type(clock).__name__}")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._transport: T | None = transport
        self._verify = verify
        self._environ = os.environ if environ is None else environ
        self._vendors: dict[str, H] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._file_http: Any = None  # the file hosts' httpx client (no key), made on the first download

    def _files(self, cls: type[Any]) -> Any:
        with self._lock:
            if self._closed:
                raise UsageError(f"this {type(self).__name__} is closed")
            if self._file_http is None:
                from ._fetch import file_client  # downloads' code loads on the first download

                self._file_http = file_client(cls, self._transport, self.timeout, self._verify)
            return self._file_http

    def _transfer(
        self, ref: str, fetch: Fetch, overwrite: bool, max_bytes: int | None, on_progress: OnProgress | None
    ) -> Transfer:
        from ._files import Transfer, target

        return Transfer(
            target(fetch.dest, fetch.name), ref, overwrite=overwrite, max_bytes=max_bytes, on_progress=on_progress
        )

    def _pace(self, ref: str, deadline: float | None) -> Pace:
        from ._download import Pace

        return Pace(self.timeout, deadline, ref.partition(":")[0])

    def vendor(self, slug: str) -> H:
        """The handle for one vendor, created once (thread-safe) with one pooled connection set."""
        handle = self._vendors.get(slug)
        if handle is not None:
            return handle
        with self._lock:
            if self._closed:
                raise UsageError(f"this {type(self).__name__} is closed")
            handle = self._vendors.get(slug)
            if handle is None:
                handle = self._vendors[slug] = self._new_handle(slug)
        return handle

    def _new_handle(self, slug: str) -> H:
        cls = adapter_class(slug)
        settings = resolve_settings(cls, self._api_keys, self._base_urls, self._environ)
        adapter = cls()
        core = VendorCore(
            adapter,
            timeout=self.timeout,
            max_retries=self.max_retries,
            rate=AdaptiveRate(self.clock.now(), ceiling=self._rate_limits.get(slug), adaptive=self.adaptive),
            budget=RetryBudget(),
            clock=self.clock,
        )
        return self._handle_class(
            core,
            settings,
            functools.partial(self._typed_client, adapter, settings),
            max_response_bytes=self.max_response_bytes,
            max_connections=self.max_connections,
        )

    def _typed_client(self, adapter: Any, settings: VendorSettings) -> tuple[Any, Any]:
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        transport: Any = self._transport
        if transport is None and self._handle_class is AsyncVendorClient:
            from ._aio import aiohttp_transport

            transport = aiohttp_transport(
                verify=self._verify, max_connections=self.max_connections, base_url=settings.base_url
            )
        elif transport is None:
            from ._deadline import deadline_transport, environment_proxies

            # httpx honours HTTP(S)_PROXY only without an explicit transport: behind one, its own
            # transport is kept (each socket operation is then bounded, not the whole attempt)
            if not environment_proxies(os.environ):  # what httpx reads, whatever environ= says
                transport = deadline_transport(verify=self._verify, limits=limits)
        httpx_args: dict[str, Any] = {"limits": limits}
        if transport is not None:
            httpx_args["transport"] = transport
        default_aio = transport if self._transport is None and self._handle_class is AsyncVendorClient else None
        return adapter.client_class(
            base_url=settings.base_url,
            token=settings.api_key,
            timeout=httpx.Timeout(self.timeout),
            verify_ssl=self._verify,
            follow_redirects=False,  # never carry the key to wherever a redirect points
            httpx_args=httpx_args,
        ), default_aio

    def _waiter(
        self,
        ref: str,
        timeout: float | None,
        policy: PollingPolicy | None,
        max_failed_polls: int,
        on_poll_error: OnPollError | None,
    ) -> Waiter:
        return Waiter(
            ref,
            start=self.clock.now(),
            timeout=timeout,
            policy=policy,
            max_failed_polls=max_failed_polls,
            on_poll_error=on_poll_error,
        )

    def _closing(self) -> list[H]:
        with self._lock:
            self._closed = True
            handles = list(self._vendors.values())
            self._vendors.clear()
        return handles

    def __repr__(self) -> str:
        return f"<videojobs.{type(self).__name__} vendors in use={sorted(self._vendors)}>"


def _on_update(on_update: OnUpdate | None, status: JobStatus) -> None:
    if on_update is None:
        return
    try:
        on_update(status)
    except Exception as exc:  # the caller's callback: whatever it raises ends this wait, typed
        raise CallbackError(
            f"on_update raised {type(exc).__name__} for {status.ref}; the wait for it stopped", vendor=status.vendor
        ) from exc


class Client(_Twin[VendorClient, httpx.BaseTransport]):
    """Status of jobs at every vendor, synchronously. Thread-safe.

    >>> with videojobs.Client() as client:
    ...     client.wait("vozo:task-123").video_url
    """

    __doc__ = (__doc__ or "") + _DOC_ARGS
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
        on_poll_error: OnPollError | None = None,
    ) -> Iterator[JobStatus]:
        """Yield the job's status each time its state or progress changes, until it ends.

        Failed polls (network, 5xx, 429, a malformed answer) are ridden out, up to
        ``max_failed_polls`` in a row, each one waiting longer (1, 2, 4 ... 60 s), and reported
        to ``on_poll_error(error, failed_in_a_row)`` if given; at the deadline
        :class:`WaitTimeout` is raised.
        """
        slug, task_id = split_ref(ref)
        handle = self.vendor(slug)
        plan = watch_plan(handle.core, task_id, self._waiter(ref, timeout, policy, max_failed_polls, on_poll_error))
        return drive(plan, functools.partial(handle.exchange, task_id), self.clock.sleep)

    def wait(
        self,
        ref: str,
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        policy: PollingPolicy | None = None,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
    ) -> JobStatus:
        """Poll until the job ends; return its last status (a FAILED job is returned, not raised).

        ``on_update(status)`` is called whenever the state or progress changes (if it raises,
        the wait ends with :class:`CallbackError`). It ends within ``timeout`` plus at most one
        request's ``timeout``, with :class:`WaitTimeout` carrying ``last_status``.
        """
        last: JobStatus | None = None
        for last in self.watch(
            ref, timeout=timeout, policy=policy, max_failed_polls=max_failed_polls, on_poll_error=on_poll_error
        ):
            _on_update(on_update, last)
        assert last is not None
        return last

    def download(
        self,
        job: JobStatus | str,
        dest: str | os.PathLike[str],
        *,
        index: int = 0,
        overwrite: bool = False,
        on_progress: OnProgress | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> Download:
        """Save the job's video (its ``index``-th URL) to ``dest``: a folder, or a file path.

        ``job`` is a finished :class:`JobStatus` or a reference (asked about first). The file
        is complete and checked under its final name, or not there at all (see ``_download``);
        a broken transfer resumes from its ``.part``, now (up to ``max_retries`` times) or in a
        later call. No vendor key is sent to the file host. An expired link costs one fresh
        status call; if that hands out no new URL, :class:`LinkExpiredError`. A job that has
        only a video id (Colossyan) is a :class:`DownloadError` that says so.

        Time: a file host that sends fewer than ``LOW_SPEED_LIMIT`` (1 KiB) per second over the
        client's ``timeout`` has stalled, which ends the attempt; ``timeout=`` here bounds the
        whole download, every attempt included (a :class:`NetworkError` at the deadline; the
        ``.part`` stays for a later call). The name is never taken from an existing file unless
        ``overwrite=True``; a disk's refusal is a :class:`DownloadError` with its ``errno``.
        """
        from ._download import check_download_args, deadline_of, download_plan, job_of
        from ._fetch import fetch, run_plan, utc_now

        status, ref = job_of(job)
        check_download_args(index, max_bytes)
        pace = self._pace(ref, deadline_of(timeout))
        http = self._files(httpx.Client)
        attempts = self.max_retries + 1

        def get(action: Fetch) -> Download:
            transfer = self._transfer(ref, action, overwrite, max_bytes, on_progress)
            return fetch(http, action.url, transfer, attempts, pace)

        return run_plan(download_plan(status, ref, index, dest, utc_now), self.status, get)

    def close(self) -> None:
        for handle in self._closing():
            handle.close()
        if self._file_http is not None:
            self._file_http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(_Twin[AsyncVendorClient, httpx.AsyncBaseTransport]):
    """Status of jobs at every vendor, on asyncio. The twin of :class:`Client`, plus ``wait_all``."""

    __doc__ = (__doc__ or "") + _DOC_ARGS
    _handle_class = AsyncVendorClient

    async def status(self, ref: str) -> JobStatus:
        """The status of ``"<vendor>:<task id>"``."""
        slug, task_id = split_ref(ref)
        return await self.vendor(slug).status(task_id)

    def watch(
        self,
        ref: str,
        *,
        timeout: float | None = None,
        policy: PollingPolicy | None = None,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
    ) -> AsyncIterator[JobStatus]:
        """Yield the job's status each time its state or progress changes, until it ends. See :meth:`Client.watch`."""
        return self._watch(ref, timeout, policy, max_failed_polls, None, on_poll_error)

    def _watch(
        self,
        ref: str,
        timeout: float | None,
        policy: PollingPolicy | None,
        max_failed_polls: int,
        gate: asyncio.Semaphore | None,
        on_poll_error: OnPollError | None,
    ) -> AsyncIterator[JobStatus]:
        slug, task_id = split_ref(ref)
        handle = self.vendor(slug)
        plan = watch_plan(handle.core, task_id, self._waiter(ref, timeout, policy, max_failed_polls, on_poll_error))
        send: Any = functools.partial(handle.exchange, task_id)
        if gate is not None:
            send = functools.partial(_gated, gate, handle.name, send)
        return adrive(plan, send, self.clock.asleep)

    async def wait(
        self,
        ref: str,
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        policy: PollingPolicy | None = None,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
    ) -> JobStatus:
        """Poll until the job ends; return its last status. See :meth:`Client.wait`."""
        return await self._wait(ref, timeout, on_update, policy, max_failed_polls, None, on_poll_error)

    async def _wait(
        self,
        ref: str,
        timeout: float | None,
        on_update: OnUpdate | None,
        policy: PollingPolicy | None,
        max_failed_polls: int,
        gate: asyncio.Semaphore | None,
        on_poll_error: OnPollError | None,
    ) -> JobStatus:
        last: JobStatus | None = None
        async for last in self._watch(ref, timeout, policy, max_failed_polls, gate, on_poll_error):
            _on_update(on_update, last)
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
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
        download_to: str | os.PathLike[str] | None = None,
        download_concurrency: int = 4,
        on_download_progress: OnProgress | None = None,
    ) -> AsyncIterator[JobStatus | VideoJobsError]:
        """Wait for many jobs at once, yielding each as it finishes.

        Every job comes back exactly once, whatever happens to its wait: its final
        :class:`JobStatus`, or the :class:`VideoJobsError` that ended its wait (``error.ref``
        says which job; a callback that raised is a :class:`CallbackError`). At most
        ``concurrency`` requests are in flight; each vendor keeps one pooled connection set
        and its rate limit. One coroutine per job, no threads. ``on_update`` and
        ``on_poll_error`` are called as in :meth:`wait`, for every job.

        With ``download_to``, each job that succeeds with video URLs has them saved into that
        folder (``download_concurrency`` jobs at a time) before it is yielded, with its files in
        ``status.downloads``; a download that fails makes that job's result the error.
        """
        import asyncio

        refs = list(refs)
        for ref in refs:
            split_ref(ref)  # refuse bad references before anything starts
        concurrency = _whole("concurrency", concurrency, 1)
        check_wait_args(timeout, max_failed_polls)  # refuse bad arguments before anything starts
        gate = asyncio.Semaphore(concurrency)
        saving = asyncio.Semaphore(_whole("download_concurrency", download_concurrency, 1))
        saves_until = None if timeout is None else time.monotonic() + timeout  # downloads: real time
        done: asyncio.Queue[JobStatus | VideoJobsError] = asyncio.Queue()

        async def one(ref: str) -> None:
            result: JobStatus | VideoJobsError
            try:
                result = await self._wait(ref, timeout, on_update, policy, max_failed_polls, gate, on_poll_error)
                if download_to is not None and result.state is State.SUCCEEDED and result.video_urls:
                    async with saving:
                        # the wait's deadline, plus one attempt's timeout (the slack a poll has)
                        until = None if saves_until is None else saves_until + self.timeout
                        result = await self._save_all(result, download_to, False, on_download_progress, until)
            except VideoJobsError as exc:
                result = exc
            except Exception as exc:  # a bug of ours must not cost the caller this job: say so, typed
                result = _bug(ref, "wait", exc)
            if isinstance(result, VideoJobsError):
                result.ref = ref
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
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
    ) -> list[JobStatus | VideoJobsError]:
        """:meth:`wait_all` gathered into a list in the order of ``refs``."""
        refs = list(refs)
        slots: dict[str, list[int]] = {}
        for index, ref in enumerate(refs):
            slots.setdefault(ref, []).append(index)
        out: list[JobStatus | VideoJobsError | None] = [None] * len(refs)
        async for result in self.wait_all(
            refs,
            timeout=timeout,
            on_update=on_update,
            policy=policy,
            concurrency=concurrency,
            max_failed_polls=max_failed_polls,
            on_poll_error=on_poll_error,
        ):
            assert result.ref is not None
            out[slots[result.ref].pop(0)] = result
        return [r for r in out if r is not None]

    async def download(
        self,
        job: JobStatus | str,
        dest: str | os.PathLike[str],
        *,
        index: int = 0,
        overwrite: bool = False,
        on_progress: OnProgress | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> Download:
        """Save the job's video to ``dest``. See :meth:`Client.download`."""
        from ._download import check_download_args, deadline_of

        check_download_args(index, max_bytes)
        return await self._download(job, dest, index, overwrite, on_progress, max_bytes, deadline_of(timeout))

    async def _download(
        self,
        job: JobStatus | str,
        dest: str | os.PathLike[str],
        index: int,
        overwrite: bool,
        on_progress: OnProgress | None,
        max_bytes: int | None,
        deadline: float | None,
    ) -> Download:
        from ._download import download_plan, job_of
        from ._fetch import afetch, arun_plan, utc_now

        status, ref = job_of(job)
        pace = self._pace(ref, deadline)
        http = self._files(httpx.AsyncClient)
        attempts = self.max_retries + 1

        async def get(action: Fetch) -> Download:
            transfer = self._transfer(ref, action, overwrite, max_bytes, on_progress)
            return await afetch(http, action.url, transfer, attempts, pace)

        return await arun_plan(download_plan(status, ref, index, dest, utc_now), self.status, get)

    async def _save_all(
        self,
        status: JobStatus,
        folder: str | os.PathLike[str],
        overwrite: bool,
        on_progress: OnProgress | None,
        deadline: float | None = None,
    ) -> JobStatus:
        """Every video of a finished job into ``folder``; the status carries them in ``downloads``.
        ``deadline`` (``time.monotonic()``) ends them all, if given."""
        into = os.path.join(os.fspath(folder), "")  # a trailing separator: a folder, made if missing
        saved: list[Download] = []
        for index in range(max(1, len(status.video_urls))):
            saved.append(await self._download(status, into, index, overwrite, on_progress, None, deadline))
        return attrs.evolve(status, downloads=saved)

    async def download_all(
        self,
        jobs: Iterable[JobStatus | str],
        folder: str | os.PathLike[str],
        *,
        concurrency: int = 4,
        overwrite: bool = False,
        on_progress: OnProgress | None = None,
    ) -> AsyncIterator[JobStatus | VideoJobsError]:
        """Save every video of every job into ``folder``, ``concurrency`` jobs at a time, yielding
        each job once as its files are saved: its status with ``downloads``, or the error."""
        import asyncio

        from ._download import job_of

        items = list(jobs)
        for item in items:
            job_of(item)
        gate = asyncio.Semaphore(_whole("concurrency", concurrency, 1))

        async def one(item: JobStatus | str) -> JobStatus | VideoJobsError:
            ref = job_of(item)[1]
            try:
                async with gate:
                    status = item if isinstance(item, JobStatus) else await self.status(item)
                    return await self._save_all(status, folder, overwrite, on_progress)
            except VideoJobsError as exc:
                exc.ref = ref
                return exc
            except Exception as exc:  # a bug of ours must not cost the caller this job: say so, typed
                return _bug(ref, "download", exc)

        async for result in _each_once([one(item) for item in items]):
            yield result

    async def aclose(self) -> None:
        for handle in self._closing():
            await handle.aclose()
        if self._file_http is not None:
            await self._file_http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _bug(ref: str, what: str, exc: Exception) -> VideoJobsError:
    error = VideoJobsError(
        f"the {what} for {ref} failed unexpectedly ({type(exc).__name__}); this is a videojobs bug",
        vendor=ref.partition(":")[0],
    )
    error.__cause__ = exc
    error.ref = ref
    return error


async def _each_once(
    jobs: list[Coroutine[Any, Any, JobStatus | VideoJobsError]],
) -> AsyncIterator[JobStatus | VideoJobsError]:
    """Run every job's coroutine at once; yield each result as it comes; cancel the rest on exit."""
    import asyncio

    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _gated(gate: asyncio.Semaphore, vendor: str, send: Any, timeout: float, epoch: int | None) -> Exchange:
    """One attempt behind ``wait_all``'s concurrency gate. The wait for a slot is part of the
    attempt: slot and exchange together end within ``timeout``, so a job queued behind requests
    that never return ends at its deadline like the ones in flight."""
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    try:
        async with asyncio.timeout_at(end):
            await gate.acquire()
    except TimeoutError as exc:
        raise NetworkError(
            f"no request slot came free within {timeout:.3g} s (every slot of wait_all's concurrency is busy)",
            vendor=vendor,
        ) from exc
    try:
        result: Exchange = await send(max(0.0, end - loop.time()), epoch)
        return result
    finally:
        gate.release()
