"""``Client`` and ``AsyncClient``: the faces, and only the faces.

Each public method checks its arguments and hands the work down: a status call and a wait to
the vendor's session (``_sessions``: one per vendor, with its core, typed client and transport)
which runs the plans of ``_calls`` over ``_exchange``; many jobs at once to ``_batch``; a
download to the plan of ``_download`` run by ``_fetch``. ``_Twin`` holds what both faces share:
the checked configuration (``_base``), the sessions, the file hosts' client.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, Self, TypeVar

from ._base import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_DOWNLOADS,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REQUEST_TIMEOUT,
    OTHER_LOOP,
    check_callback,
    check_environ,
    check_flag,
    check_many,
    check_rate_limits,
    check_seconds,
    check_transport,
    check_vendor_mapping,
    check_verify,
    check_whole,
    env_name,
    refer,
    split_ref,
)
from ._exceptions import UsageError, VideoJobsError
from ._wait import (
    DEFAULT_MAX_FAILED_POLLS,
    Clock,
    OnPollError,
    OnUpdate,
    Stop,
    SystemClock,
    Waiter,
    call_on_update,
    check_wait_args,
)

if TYPE_CHECKING:  # making a client loads none of these: the first call does (its own import, or _drivers())
    import asyncio
    import ssl

    import httpx

    from ._batch import AsyncSend, SyncSend
    from ._calls import Plan, VendorCore
    from ._download import Fetch, OnProgress, Pace
    from ._files import Transfer
    from ._policy import PollingPolicy
    from ._scrub import Scrubber
    from ._sessions import AsyncVendorClient, VendorClient
    from ._status import Download, JobStatus

__all__ = ["AsyncClient", "Client"]


_DOC_ARGS = """
    api_keys        vendor slug → key; falls back to ``<SLUG>_API_KEY``
    base_urls       vendor slug → URL; falls back to ``<SLUG>_BASE_URL``, then the spec's server
    request_timeout seconds for one request attempt, all of it (connect, send, headers, body;
                    default 30); a call with its retries takes at most
                    ``request_timeout * (max_retries + 1)``; a download stalls after this long
                    below 1 KiB/s. ``timeout=`` on a method is that whole call's deadline
    max_retries     retries of connection errors, timeouts, 429 and 5xx
    transport       passed to every underlying httpx client (tests, proxies); the default
                    sync transport also enforces the attempt's deadline on every socket operation
    verify          TLS verification (on unless you turn it off), or an ``ssl.SSLContext``
    rate_limits     vendor slug → a hard ceiling in requests per second (default: none)
    adaptive        pace each vendor by its 429s (default True: a slow start from 4 req/s, about
                    doubling each round trip (0.1 s at least) until the vendor first throttles,
                    then a shared token bucket on a CUBIC curve; a Retry-After pauses the vendor)
    max_connections pooled connections per vendor (default 64, as max_requests)
    max_response_bytes  the largest answer read, decoded (default 4 MiB); larger is malformed
    environ         where ``<SLUG>_API_KEY`` and ``<SLUG>_BASE_URL`` are read (default os.environ)
    clock           what waits, backoffs and rate limits sleep on (default the system's; tests inject one)
"""

H = TypeVar("H", "VendorClient", "AsyncVendorClient")
Y = TypeVar("Y")


def _with_ref(ref: str, steps: Iterator[Y]) -> Generator[Y, None, None]:
    """``steps``, with ``error.ref`` set on the error that ends them."""
    try:
        yield from steps
    except VideoJobsError as exc:
        refer(exc, ref)
        raise


async def _awith_ref(ref: str, steps: AsyncIterator[Y]) -> AsyncGenerator[Y, None]:
    """The asyncio twin of :func:`_with_ref`."""
    try:
        async for step in steps:
            yield step
    except VideoJobsError as exc:
        refer(exc, ref)
        raise


class _Drivers(NamedTuple):
    """What the faces run of ``_calls``: a wait's plan and its two drivers."""

    watch_plan: Callable[[VendorCore, str, Waiter], Plan[None]]
    drive: Callable[[Plan[None], SyncSend, Callable[[float], None]], Iterator[JobStatus]]
    adrive: Callable[[Plan[None], AsyncSend, Callable[[float], Awaitable[None]], Stop], AsyncIterator[JobStatus]]


class _Callbacks(NamedTuple):
    """A batch's caller code, checked with its other arguments before anything starts."""

    policy: PollingPolicy | None
    on_update: OnUpdate | None
    on_poll_error: OnPollError | None
    on_progress: OnProgress | None


@functools.cache
def _drivers() -> _Drivers:
    """``_calls``, imported by the first wait and kept (it stands on attrs and httpx, which neither
    ``import videojobs`` nor ``Client()`` loads): a wait pays a cache hit, not an import."""
    from ._calls import adrive, drive, watch_plan

    return _Drivers(watch_plan, drive, adrive)


T = TypeVar("T", "httpx.BaseTransport", "httpx.AsyncBaseTransport")

_clients: weakref.WeakSet[_Twin[Any, Any]] = weakref.WeakSet()
"""Every client of this process, for :func:`_after_fork`."""


def _after_fork() -> None:
    """In a child process, each client opens its own connections: the pooled ones are the
    parent's sockets, and a child that sent on one read the parent's answer (another job's
    status, as if it were its own). The old ones are kept, unused: closing them could end the
    parent's TLS sessions. (A transport passed as ``transport=`` is the caller's: not replaced.)"""
    for client in list(_clients):
        client._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class _Twin(Generic[H, T]):
    """Configuration and per-vendor handles: everything the faces share (no I/O)."""

    _asynchronous: ClassVar[bool]
    """AsyncClient's: its transports, handles and file client are asyncio's."""

    @property
    def _handle_class(self) -> type[H]:
        """VendorClient or AsyncVendorClient: ``_sessions`` (the calls' code, httpx) loads with the first vendor used."""
        raise NotImplementedError

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
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
        self.adaptive = check_flag("adaptive", adaptive)
        self.request_timeout = check_seconds("request_timeout", request_timeout)
        self.max_retries = check_whole("max_retries", max_retries, 0)
        self.max_connections = check_whole("max_connections", max_connections, 1)
        self.max_response_bytes = check_whole("max_response_bytes", max_response_bytes, 1024)
        self._rate_limits = check_rate_limits(rate_limits)
        self._api_keys: dict[str, str] = check_vendor_mapping("api_keys", api_keys)
        self._base_urls: dict[str, str] = check_vendor_mapping("base_urls", base_urls)
        if clock is not None and not isinstance(clock, Clock):
            raise UsageError(f"clock must have now(), sleep() and asleep(), not {type(clock).__name__}")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._stop = Stop(self.clock)  # set by close(): waits sleeping between polls wake (see Stop)
        if transport is not None:
            check_transport(transport, asynchronous=self._asynchronous)
        self._transport: T | None = transport
        self._verify = check_verify(verify)
        self._environ = check_environ(environ)
        self._vendors: dict[str, H] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._file_http: httpx.Client | httpx.AsyncClient | None = None  # file hosts' (no key), on the first download
        self._parents: list[object] = []  # what a fork left: the parent's (see _after_fork)
        self._file_loop: asyncio.AbstractEventLoop | None = None  # an AsyncClient's file client's
        _clients.add(self)

    def _forget_connections(self) -> None:
        """After a fork, in the child: new handles and file client on first use (see :func:`_after_fork`)."""
        self._parents.append((self._vendors, self._file_http))
        self._vendors, self._file_http, self._lock = {}, None, threading.Lock()
        # a parent's thread may have held the close's lock (a wait_all registering) at the fork
        closed, self._stop = self._stop.is_set(), Stop(self.clock)
        if closed:
            self._stop.set()

    def _scrubber(self) -> Scrubber:
        """A scrubber of every key this client would send (given, or in its environment, for each
        known vendor), before any vendor is opened: for text no vendor sent, such as the error of
        a callback that quotes a key (``videojobs.celery``)."""
        from ._registry import known_vendors
        from ._scrub import Scrubber

        found: list[str | None] = [self._environ.get(env_name(vendor, "API_KEY")) for vendor in known_vendors()]
        return Scrubber([*self._api_keys.values(), *(key for key in found if key)])

    def _files(self) -> httpx.Client | httpx.AsyncClient:
        """The file hosts' httpx client (no key), made on the first download; an AsyncClient's, on
        the loop it runs on (as a vendor's handle is bound: ``_sessions.AsyncVendorClient._bind``)."""
        with self._lock:
            self._check_open()
            loop = None
            if self._asynchronous:
                import asyncio

                loop = asyncio.get_running_loop()
                if self._file_http is not None and self._file_loop is not loop:
                    if self._file_loop is not None and not self._file_loop.is_closed():
                        raise UsageError(OTHER_LOOP)
                    self._file_http = None  # its loop is gone: it cannot be closed; dropped, its sockets go with it
            if self._file_http is None:
                from ._fetch import file_client  # downloads' code loads on the first download

                self._file_http = file_client(
                    self._transport, self.request_timeout, self._verify, asynchronous=self._asynchronous
                )
                self._file_loop = loop
            return self._file_http

    def _transfer(
        self, ref: str, fetch: Fetch, overwrite: bool, max_bytes: int | None, on_progress: OnProgress | None
    ) -> Transfer:
        from ._files import Transfer, target

        path = target(fetch.dest, fetch.name, ref.partition(":")[0])
        return Transfer(path, ref, overwrite=overwrite, max_bytes=max_bytes, on_progress=on_progress)

    def _until(self, deadline: float | None) -> float:
        """A ``time.monotonic()`` deadline (a download's) on the client's clock, as calls end by."""
        return math.inf if deadline is None else self.clock.now() + (deadline - time.monotonic())

    def _pace(self, ref: str, deadline: float | None, halted: Callable[[], bool] | None = None) -> Pace:
        from ._download import Pace

        return Pace(self.request_timeout, deadline, ref.partition(":")[0], halted)

    def vendor(self, slug: str) -> H:
        """The handle for one vendor, created once (thread-safe) with one pooled connection set."""
        handle = self._vendors.get(slug)
        if handle is not None:
            return handle
        with self._lock:
            self._check_open()
            handle = self._vendors.get(slug)
            if handle is None:
                handle = self._vendors[slug] = self._new_handle(slug)
        return handle

    def _new_handle(self, slug: str) -> H:
        from ._sessions import open_session  # once a vendor: the first status call loads the calls' code

        return open_session(
            self._handle_class,
            slug,
            api_keys=self._api_keys,
            base_urls=self._base_urls,
            environ=self._environ,
            timeout=self.request_timeout,
            max_retries=self.max_retries,
            rate_limit=self._rate_limits.get(slug),
            adaptive=self.adaptive,
            clock=self.clock,
            transport=self._transport,
            verify=self._verify,
            max_connections=self.max_connections,
            max_response_bytes=self.max_response_bytes,
        )

    def _waiter(
        self,
        ref: str,
        timeout: float | None,
        policy: PollingPolicy | None,
        max_failed_polls: int,
        on_poll_error: OnPollError | None,
        start: float | None = None,
    ) -> Waiter:
        return Waiter(
            ref,
            start=self.clock.now() if start is None else start,
            timeout=timeout,
            policy=policy,
            max_failed_polls=max_failed_polls,
            on_poll_error=on_poll_error,
        )

    def _saves(
        self, dest: str | os.PathLike[str], max_downloads: int, max_bytes: int | None, overwrite: bool
    ) -> tuple[str, int]:
        """A batch's folder (a trailing separator: made if missing) and its checked arguments."""
        from ._download import check_download_args

        folder = check_download_args(dest, 0, max_bytes, overwrite)
        return os.path.join(folder, ""), check_whole("max_downloads", max_downloads, 1)

    def _check_open(self) -> None:
        """A closed client refuses: its vendors, its file hosts, and a batch at the call (not job by job)."""
        if self._closed:
            raise UsageError(f"this {type(self).__name__} is closed")

    def _download_items(self, jobs: Iterable[JobStatus | str]) -> list[tuple[JobStatus | str, str]]:
        """download_all's jobs, each with its reference, every one checked before anything starts
        (a bad reference is refused at the call, as wait_all refuses it)."""
        from ._download import job_of

        items = [(item, job_of(item)[1]) for item in check_many("jobs", jobs)]
        for _, ref in items:
            split_ref(ref)
        return items

    def _batch_args(
        self,
        refs: Iterable[str],
        timeout: float | None,
        max_failed_polls: int,
        max_requests: int,
        max_downloads: int,
        callbacks: _Callbacks,
    ) -> tuple[list[str], float | None, int, int]:
        """wait_all's arguments, every one checked before anything starts."""
        self._check_open()
        refs = check_many("refs", refs)
        for ref in refs:
            split_ref(ref)
        max_requests = check_whole("max_requests", max_requests, 1)
        max_downloads = check_whole("max_downloads", max_downloads, 1)
        policy, on_update, on_poll_error, on_progress = callbacks
        check_callback("on_progress", on_progress)
        timeout = check_wait_args(
            timeout, max_failed_polls, policy=policy, on_poll_error=on_poll_error, on_update=on_update
        )
        return refs, timeout, max_requests, max_downloads

    def _closing(self) -> list[H]:
        with self._lock:
            self._closed = True
            handles = list(self._vendors.values())
            self._vendors.clear()
        self._stop.set()
        return handles

    def __repr__(self) -> str:
        return f"<videojobs.{type(self).__name__} vendors in use={sorted(self._vendors)}>"


class Client(_Twin["VendorClient", "httpx.BaseTransport"]):
    """Status of jobs at every vendor, synchronously. Thread-safe.

    >>> with videojobs.Client() as client:
    ...     client.wait("vozo:task-123").video_url
    """

    __doc__ = (__doc__ or "") + _DOC_ARGS
    _asynchronous = False

    @property
    def _handle_class(self) -> type[VendorClient]:
        from ._sessions import VendorClient

        return VendorClient

    def status(self, ref: str) -> JobStatus:
        """The status of ``"<vendor>:<task id>"``. An error says which job (``error.ref``)."""
        return self._status(ref)

    def _status(self, ref: str, deadline: float | None = None) -> JobStatus:
        """:meth:`status`, ending by ``deadline`` (``time.monotonic()``) too: a download's."""
        try:
            slug, task_id = split_ref(ref)
            return self.vendor(slug).checked_status(task_id, self._until(deadline))
        except VideoJobsError as exc:
            refer(exc, ref)
            raise

    def watch(
        self,
        ref: str,
        *,
        timeout: float | None = None,
        policy: PollingPolicy | None = None,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
    ) -> Generator[JobStatus, None, None]:
        """Yield the job's status each time its state or progress changes, until it ends.

        Failed polls (network, 5xx, 429, a malformed answer) are ridden out, up to
        ``max_failed_polls`` in a row, each one waiting longer (1, 2, 4 ... 60 s), and reported
        to ``on_poll_error(error, failed_in_a_row)`` if given; at the deadline (``timeout``
        seconds from the call) :class:`WaitTimeout` is raised. An error says which job (``error.ref``).
        """
        try:
            plan, send, _ = self._poll(ref, timeout, policy, max_failed_polls, on_poll_error)
        except VideoJobsError as exc:
            refer(exc, ref)
            raise
        return _with_ref(ref, _drivers().drive(plan, send, self._stop.sleeper(ref.partition(":")[0])))

    def _poll(
        self,
        ref: str,
        timeout: float | None,
        policy: PollingPolicy | None,
        max_failed_polls: int,
        on_poll_error: OnPollError | None,
        start: float | None = None,
    ) -> tuple[Plan[None], SyncSend, str]:
        """A job's wait: its plan, the sender of its attempts and its vendor's name (``start``:
        when its ``timeout`` began, a batch's call; else now)."""
        slug, task_id = split_ref(ref)
        handle = self.vendor(slug)
        plan = _drivers().watch_plan(
            handle.core, task_id, self._waiter(ref, timeout, policy, max_failed_polls, on_poll_error, start)
        )
        return plan, handle.sender(task_id), handle.name

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
        ``request_timeout``, with :class:`WaitTimeout` carrying ``last_status``.
        """
        last: JobStatus | None = None
        try:
            check_callback("on_update", on_update)
            for last in self.watch(
                ref, timeout=timeout, policy=policy, max_failed_polls=max_failed_polls, on_poll_error=on_poll_error
            ):
                call_on_update(on_update, last)
        except VideoJobsError as exc:
            refer(exc, ref)
            raise
        assert last is not None
        return last

    def wait_all(
        self,
        refs: Iterable[str],
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        policy: PollingPolicy | None = None,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
        dest: str | os.PathLike[str] | None = None,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
        on_progress: OnProgress | None = None,
        overwrite: bool = False,
        max_bytes: int | None = None,
    ) -> Generator[JobStatus | VideoJobsError, None, None]:
        """Wait for many jobs at once, yielding each as it finishes.

        Every job comes back exactly once, whatever happens to its wait: its final
        :class:`JobStatus`, or the :class:`VideoJobsError` that ended its wait (``error.ref``
        says which job; a callback that raised is a :class:`CallbackError`). At most
        ``max_requests`` requests are in flight (a poll waits in line for one while its status call
        has time: ``request_timeout`` for each of its ``max_retries + 1`` attempts; its attempt then
        has ``request_timeout``, cut to what the call has left); each vendor keeps one pooled
        connection set and its rate limit.
        ``timeout`` counts from the call, for every job. ``on_update`` and ``on_poll_error`` are
        called as in :meth:`wait`, for every job, in the caller's thread.

        With ``dest``, each job that succeeds has its videos saved into that folder
        (``max_downloads`` jobs at a time, as :meth:`download` would with ``overwrite`` and
        ``max_bytes``, ``on_progress`` for their bytes) before it is yielded, with its files in
        ``status.downloads``; a download that fails makes that job's result the error (its
        ``last_status`` holds the videos saved before it), and so does a job with nothing to
        fetch (a video id only, or no video), as :meth:`download_all` answers for it.

        Here one scheduler in the calling thread walks every job's plan and sends on a pool of
        ``max_requests`` threads (saves on ``max_downloads`` more), no thread per job. Leaving
        the loop early starts nothing new and returns once what runs has ended (each within its
        own deadline).
        """
        from ._batch import wait_all_sync

        refs, timeout, max_requests, max_downloads = self._batch_args(
            refs, timeout, max_failed_polls, max_requests, max_downloads,
            _Callbacks(policy, on_update, on_poll_error, on_progress),
        )  # fmt: skip
        save = None
        halt = threading.Event()  # set as the batch is left: saves under way stop at their next chunk
        if dest is not None:
            into, _ = self._saves(dest, max_downloads, max_bytes, overwrite)

            def save(status: JobStatus, deadline: float | None) -> JobStatus:
                return self._save_all(status, into, overwrite, on_progress, max_bytes, deadline, halt.is_set)

        start = self.clock.now()  # every job's timeout counts from the call

        def poll(ref: str) -> tuple[Plan[None], SyncSend, str]:
            return self._poll(ref, timeout, policy, max_failed_polls, on_poll_error, start)

        return wait_all_sync(
            refs,
            poll,
            self.clock,
            save,
            timeout=timeout,
            on_update=on_update,
            max_requests=max_requests,
            max_downloads=max_downloads,
            request_timeout=self.request_timeout,
            halt=halt,
            stop=self._stop,
        )

    def wait_all_list(
        self,
        refs: Iterable[str],
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        policy: PollingPolicy | None = None,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
        dest: str | os.PathLike[str] | None = None,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
        on_progress: OnProgress | None = None,
        overwrite: bool = False,
        max_bytes: int | None = None,
    ) -> list[JobStatus | VideoJobsError]:
        """:meth:`wait_all` gathered into a list in the order of ``refs``."""
        from ._batch import in_order_sync

        refs = check_many("refs", refs)
        results = self.wait_all(
            refs,
            timeout=timeout,
            on_update=on_update,
            policy=policy,
            max_requests=max_requests,
            max_failed_polls=max_failed_polls,
            on_poll_error=on_poll_error,
            dest=dest,
            max_downloads=max_downloads,
            on_progress=on_progress,
            overwrite=overwrite,
            max_bytes=max_bytes,
        )
        with contextlib.closing(results):
            return in_order_sync(refs, results)

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
        """Save the job's video (its ``index``-th URL) to ``dest``: a folder (one that exists, one
        given with a trailing ``/``, or a new name without a suffix: ``"videos"``), or a file path
        (``"clip.mp4"``).

        ``job`` is a finished :class:`JobStatus` or a reference (asked about first). The file
        is complete and checked under its final name, or not there at all (see ``_download``);
        a broken transfer resumes from its ``.part``, now (up to ``max_retries`` times) or in a
        later call. No vendor key is sent to the file host. An expired link costs one fresh
        status call; if that hands out no new URL, :class:`LinkExpiredError`. A job that has
        only a video id (Colossyan) is a :class:`DownloadError` that says so.

        Time: a file host that sends fewer than ``LOW_SPEED_LIMIT`` (1 KiB) per second over the
        client's ``request_timeout`` has stalled, which ends the attempt; ``timeout=`` here bounds
        the whole download, every attempt included (a :class:`NetworkError` at the deadline; the
        ``.part`` stays for a later call). The name is never taken from an existing file unless
        ``overwrite=True``; a disk's refusal is a :class:`DownloadError` with its ``errno``.
        """
        from ._download import check_download_args, deadline_of

        try:
            dest = check_download_args(dest, index, max_bytes, overwrite)
            check_callback("on_progress", on_progress)
            return self._download(job, dest, index, overwrite, on_progress, max_bytes, deadline_of(timeout))
        except VideoJobsError as exc:
            from ._status import JobStatus

            refer(exc, job.ref if isinstance(job, JobStatus) else job)
            raise

    def _download(
        self,
        job: JobStatus | str,
        dest: str | os.PathLike[str],
        index: int,
        overwrite: bool,
        on_progress: OnProgress | None,
        max_bytes: int | None,
        deadline: float | None,
        halted: Callable[[], bool] | None = None,
    ) -> Download:
        import httpx

        from ._download import download_plan, job_of
        from ._fetch import fetch, run_plan, utc_now

        status, ref = job_of(job)
        pace = self._pace(ref, deadline, halted)
        http = self._files()
        assert isinstance(http, httpx.Client)
        attempts = self.max_retries + 1

        def get(action: Fetch) -> Download:
            transfer = self._transfer(ref, action, overwrite, max_bytes, on_progress)
            sleep = self._stop.sleeper(transfer.vendor)
            return fetch(http, action.url, transfer, attempts, pace, sleep, direct=self._transport is None)

        try:
            asked = functools.partial(self._status, deadline=deadline)  # a link refreshed within the deadline
            return run_plan(download_plan(status, ref, index, dest, utc_now), asked, get)
        except VideoJobsError as exc:
            refer(exc, ref)
            raise

    def _save_all(
        self,
        status: JobStatus,
        into: str,
        overwrite: bool,
        on_progress: OnProgress | None,
        max_bytes: int | None,
        deadline: float | None = None,
        halted: Callable[[], bool] | None = None,
    ) -> JobStatus:
        """Every video of a finished job into the folder ``into``; the status carries them in
        ``downloads`` (or the error does, in its ``last_status``: see ``_download.SavingAll``)."""
        from ._download import SavingAll

        saving = SavingAll(status)
        for index in saving.indices:
            try:
                saving.saved(self._download(status, into, index, overwrite, on_progress, max_bytes, deadline, halted))
            except VideoJobsError as exc:
                saving.failed(exc)
        return saving.result()

    def download_all(
        self,
        jobs: Iterable[JobStatus | str],
        dest: str | os.PathLike[str],
        *,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
        overwrite: bool = False,
        on_progress: OnProgress | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> Generator[JobStatus | VideoJobsError, None, None]:
        """Save every video of every job into the folder ``dest``, ``max_downloads`` jobs at a time
        (a pool of threads), yielding each job once as its files are saved: its status with
        ``downloads``, or the error (``error.ref`` says which job). ``timeout`` bounds the whole call."""
        from ._batch import download_all_sync
        from ._download import deadline_of

        self._check_open()
        items = self._download_items(jobs)
        into, max_downloads = self._saves(dest, max_downloads, max_bytes, overwrite)
        check_callback("on_progress", on_progress)
        deadline = deadline_of(timeout)

        halt = threading.Event()  # set as the batch is left: saves under way stop at their next chunk

        def save(status: JobStatus) -> JobStatus:
            return self._save_all(status, into, overwrite, on_progress, max_bytes, deadline, halt.is_set)

        asked = functools.partial(self._status, deadline=deadline)
        return download_all_sync(items, asked, save, max_downloads, halt)

    def close(self) -> None:
        for handle in self._closing():
            handle.close()
        if self._file_http is not None:  # made by the first download, which loaded httpx
            import httpx

            if isinstance(self._file_http, httpx.Client):
                self._file_http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(_Twin["AsyncVendorClient", "httpx.AsyncBaseTransport"]):
    """Status of jobs at every vendor, on asyncio. The twin of :class:`Client`: the same methods, awaited."""

    __doc__ = (__doc__ or "") + _DOC_ARGS
    _asynchronous = True

    @property
    def _handle_class(self) -> type[AsyncVendorClient]:
        from ._sessions import AsyncVendorClient

        return AsyncVendorClient

    async def status(self, ref: str) -> JobStatus:
        """The status of ``"<vendor>:<task id>"``. See :meth:`Client.status`."""
        return await self._status(ref)

    async def _status(self, ref: str, deadline: float | None = None) -> JobStatus:
        """:meth:`status`, ending by ``deadline`` (``time.monotonic()``) too: a download's."""
        try:
            slug, task_id = split_ref(ref)
            return await self.vendor(slug).checked_status(task_id, self._until(deadline))
        except VideoJobsError as exc:
            refer(exc, ref)
            raise

    def watch(
        self,
        ref: str,
        *,
        timeout: float | None = None,
        policy: PollingPolicy | None = None,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
    ) -> AsyncGenerator[JobStatus, None]:
        """Yield the job's status each time its state or progress changes, until it ends. See :meth:`Client.watch`."""
        try:
            plan, send, _ = self._poll(ref, timeout, policy, max_failed_polls, on_poll_error)
        except VideoJobsError as exc:
            refer(exc, ref)
            raise
        stop = self._stop
        return _awith_ref(ref, _drivers().adrive(plan, send, stop.asleeper(ref.partition(":")[0]), stop))

    def _poll(
        self,
        ref: str,
        timeout: float | None,
        policy: PollingPolicy | None,
        max_failed_polls: int,
        on_poll_error: OnPollError | None,
        start: float | None = None,
    ) -> tuple[Plan[None], AsyncSend, str]:
        """A job's wait: its plan, the sender of its attempts and its vendor's name (``start``:
        when its ``timeout`` began, a batch's call; else now)."""
        slug, task_id = split_ref(ref)
        handle = self.vendor(slug)
        plan = _drivers().watch_plan(
            handle.core, task_id, self._waiter(ref, timeout, policy, max_failed_polls, on_poll_error, start)
        )
        return plan, handle.sender(task_id), handle.name

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
        last: JobStatus | None = None
        try:
            check_callback("on_update", on_update)
            async for last in self.watch(
                ref, timeout=timeout, policy=policy, max_failed_polls=max_failed_polls, on_poll_error=on_poll_error
            ):
                call_on_update(on_update, last)
        except VideoJobsError as exc:
            refer(exc, ref)
            raise
        assert last is not None
        return last

    def wait_all(
        self,
        refs: Iterable[str],
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        policy: PollingPolicy | None = None,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
        dest: str | os.PathLike[str] | None = None,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
        on_progress: OnProgress | None = None,
        overwrite: bool = False,
        max_bytes: int | None = None,
    ) -> AsyncGenerator[JobStatus | VideoJobsError, None]:
        """Wait for many jobs at once, yielding each as it finishes. See :meth:`Client.wait_all`;
        here ``max_requests`` sender coroutines serve every job (no task or thread per job).

        Its arguments are checked, and every job's ``timeout`` starts, at the call. Leaving early
        cancels every job's wait at once when the iterator is closed: a loop over the call
        itself (``async for r in client.wait_all(...)``) leaves it unreferenced, and asyncio
        closes it at the loop's next turn. The senders run
        on their own, so an iterator kept under a name must be closed (``await results.aclose()``,
        or ``async with contextlib.aclosing(client.wait_all(...)) as results``); Python closes an
        async generator left behind only once it is garbage-collected."""
        from ._batch import wait_all

        refs, timeout, max_requests, max_downloads = self._batch_args(
            refs, timeout, max_failed_polls, max_requests, max_downloads,
            _Callbacks(policy, on_update, on_poll_error, on_progress),
        )  # fmt: skip
        save = None
        if dest is not None:
            into, _ = self._saves(dest, max_downloads, max_bytes, overwrite)

            async def save(status: JobStatus, deadline: float | None) -> JobStatus:
                return await self._save_all(status, into, overwrite, on_progress, max_bytes, deadline)

        start = self.clock.now()  # every job's timeout counts from the call

        def poll(ref: str) -> tuple[Plan[None], AsyncSend, str]:
            return self._poll(ref, timeout, policy, max_failed_polls, on_poll_error, start)

        return wait_all(
            refs,
            poll,
            self.clock,
            save,
            timeout=timeout,
            on_update=on_update,
            max_requests=max_requests,
            max_downloads=max_downloads,
            request_timeout=self.request_timeout,
            stop=self._stop,
        )

    async def wait_all_list(
        self,
        refs: Iterable[str],
        *,
        timeout: float | None = None,
        on_update: OnUpdate | None = None,
        policy: PollingPolicy | None = None,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
        dest: str | os.PathLike[str] | None = None,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
        on_progress: OnProgress | None = None,
        overwrite: bool = False,
        max_bytes: int | None = None,
    ) -> list[JobStatus | VideoJobsError]:
        """:meth:`wait_all` gathered into a list in the order of ``refs``."""
        from ._batch import in_order

        refs = check_many("refs", refs)
        results = self.wait_all(
            refs,
            timeout=timeout,
            on_update=on_update,
            policy=policy,
            max_requests=max_requests,
            max_failed_polls=max_failed_polls,
            on_poll_error=on_poll_error,
            dest=dest,
            max_downloads=max_downloads,
            on_progress=on_progress,
            overwrite=overwrite,
            max_bytes=max_bytes,
        )
        async with contextlib.aclosing(results):  # cancelled meanwhile: every job's wait ends, at once
            return await in_order(refs, results)

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

        try:
            dest = check_download_args(dest, index, max_bytes, overwrite)
            check_callback("on_progress", on_progress)
            return await self._download(job, dest, index, overwrite, on_progress, max_bytes, deadline_of(timeout))
        except VideoJobsError as exc:
            from ._status import JobStatus

            refer(exc, job.ref if isinstance(job, JobStatus) else job)
            raise

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
        import httpx

        from ._download import download_plan, job_of
        from ._fetch import afetch, arun_plan, utc_now

        status, ref = job_of(job)
        pace = self._pace(ref, deadline)
        http = self._files()
        assert isinstance(http, httpx.AsyncClient)
        attempts = self.max_retries + 1

        async def get(action: Fetch) -> Download:
            transfer = self._transfer(ref, action, overwrite, max_bytes, on_progress)
            return await afetch(
                http,
                action.url,
                transfer,
                attempts,
                pace,
                self._stop.asleeper(transfer.vendor),
                direct=self._transport is None,
            )

        try:
            asked = functools.partial(self._status, deadline=deadline)  # a link refreshed within the deadline
            return await arun_plan(download_plan(status, ref, index, dest, utc_now), asked, get)
        except VideoJobsError as exc:
            refer(exc, ref)
            raise

    async def _save_all(
        self,
        status: JobStatus,
        into: str,
        overwrite: bool,
        on_progress: OnProgress | None,
        max_bytes: int | None,
        deadline: float | None = None,
    ) -> JobStatus:
        """Every video of a finished job into the folder ``into``; the status carries them in
        ``downloads`` (or the error does, in its ``last_status``: see ``_download.SavingAll``)."""
        from ._download import SavingAll

        saving = SavingAll(status)
        for index in saving.indices:
            try:
                saving.saved(await self._download(status, into, index, overwrite, on_progress, max_bytes, deadline))
            except VideoJobsError as exc:
                saving.failed(exc)
        return saving.result()

    def download_all(
        self,
        jobs: Iterable[JobStatus | str],
        dest: str | os.PathLike[str],
        *,
        max_downloads: int = DEFAULT_MAX_DOWNLOADS,
        overwrite: bool = False,
        on_progress: OnProgress | None = None,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> AsyncGenerator[JobStatus | VideoJobsError, None]:
        """Save every video of every job into the folder ``dest``. See :meth:`Client.download_all`;
        here one coroutine per job, and leaving early cancels every job's download at once.

        A plain method returning the async iterator (as :meth:`wait_all`): its arguments are
        checked at the call, and ``timeout`` counts from it."""
        from ._batch import download_all
        from ._download import deadline_of

        self._check_open()
        items = self._download_items(jobs)
        into, max_downloads = self._saves(dest, max_downloads, max_bytes, overwrite)
        check_callback("on_progress", on_progress)
        deadline = deadline_of(timeout)

        async def save(status: JobStatus) -> JobStatus:
            return await self._save_all(status, into, overwrite, on_progress, max_bytes, deadline)

        async def each() -> AsyncGenerator[JobStatus | VideoJobsError, None]:
            results = download_all(items, functools.partial(self._status, deadline=deadline), save, max_downloads)
            async with contextlib.aclosing(results):  # leaving early cancels every job's download, at once
                async for result in results:
                    yield result

        return each()

    async def aclose(self) -> None:
        """Close every vendor's connections, and the file hosts', each on the loop it was made on
        (another thread's running loop included); the first failure is raised once all are closed."""
        failed: list[BaseException] = []
        for handle in self._closing():
            try:
                await handle.aclose()
            except Exception as exc:  # the others are closed still; raised below
                failed.append(exc)
        if self._file_http is not None:  # made by the first download, which loaded httpx
            import httpx

            from ._sessions import close_on_its_loop

            # one made on a loop that has ended cannot be closed from this one (its sockets went with it)
            file_http, loop = self._file_http, self._file_loop
            if isinstance(file_http, httpx.AsyncClient) and loop is not None and not loop.is_closed():
                try:
                    await close_on_its_loop(loop, file_http.aclose, self.request_timeout)
                except Exception as exc:  # raised below, once all are closed
                    failed.append(exc)
        if failed:
            raise failed[0]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
