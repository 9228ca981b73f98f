"""One vendor on one client: its session (core, settings, typed client, transport) and the I/O of a call.

``Client.vendor(slug)`` is a :class:`VendorClient`, ``AsyncClient.vendor(slug)`` an
:class:`AsyncVendorClient`: they hold what every call to that vendor shares (the vendor's
:class:`~videojobs._calls.VendorCore`: adapter, limits, rate control; its settings; the generated
client with its pooled connections) and send one request through ``_exchange``. They differ
only in I/O: the async one binds its connections to the event loop it first ran on.

Transport selection is here too (:func:`typed_client`): the transport the caller passed, else the
sync clients' :class:`~videojobs._deadline.DeadlineTransport` (httpx's own behind an environment
proxy) or the async clients' aiohttp transport (``_aio``).
"""

from __future__ import annotations

import functools
import math
import os
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import httpx

from ._base import OTHER_LOOP, VendorSettings, check_task_id, environment_proxy_url, proxy_secrets, resolve_settings
from ._calls import VendorCore, arun, run, status_plan
from ._exceptions import NetworkError, UsageError
from ._exchange import (
    ACCEPT_ENCODING,
    Prepared,
    RequestPrefix,
    Secrets,
    closed_under_way,
    cookie_jar,
    exchange_aiohttp,
    exchange_async,
    exchange_sync,
)
from ._ratecontrol import AdaptiveRate, RetryBudget, SlotWithdrawn
from ._registry import adapter_class
from ._scrub import CREDENTIAL_HEADERS, LOG_SCRUBBER
from ._status import JobStatus
from ._tls import closed_context, speaks_tls, tls_context
from ._translate import Exchange
from ._wait import MIN_ATTEMPT, Clock, NotSent

if TYPE_CHECKING:
    import asyncio

    from ._adapter import VendorAdapter
    from ._aio import Lane
    from ._calls import AsyncSend
    from ._deadline import Lane as SyncLane
    from ._gate import Gate

__all__ = ["AsyncVendorClient", "VendorClient", "open_session", "typed_client"]

NewTyped = Callable[[], "tuple[Any, httpx.BaseTransport | httpx.AsyncBaseTransport | None]"]
"""Makes a vendor's generated client, and the transport under it when it is the default one
(sync: ``_deadline.DeadlineTransport``; async: aiohttp's)."""


class _Handle:
    """What both vendor handles hold: the vendor's core, settings, typed client and limits."""

    def __init__(
        self,
        core: VendorCore,
        settings: VendorSettings,
        new_typed: NewTyped,
        *,
        max_response_bytes: int,
        max_connections: int,
    ) -> None:
        self.core = core
        self.settings = settings
        self._new_typed = new_typed
        # the generated AuthenticatedClient, for vendor-specific calls (typed by its own package),
        # and the transport under it when it is the default one (None otherwise)
        self.typed: Any
        self.typed, self._default_transport = new_typed()
        self.max_response_bytes = max_response_bytes
        self.max_connections = max_connections
        # the key, and a proxy's credentials (a proxy may quote them back as a vendor may the key)
        self._secrets = [settings.api_key, *proxy_secrets(settings.base_url)]
        self.secrets = Secrets(self._secrets)
        for secret in self._secrets:
            LOG_SCRUBBER.add(secret)
        self._seen_headers: list[tuple[bytes, bytes]] | None = None  # the typed client's, at the last call
        self.closed = False
        self._request_kwargs = core.adapter.endpoint.build_request_kwargs
        self._prefix = RequestPrefix()  # the vendor's absolute URL and headers, worked out once
        self._made()

    def _made(self) -> None:
        """What a handle of this kind sets up once its typed client is made (nothing, here)."""

    @property
    def name(self) -> str:
        return self.core.name

    @property
    def adapter(self) -> VendorAdapter:
        return self.core.adapter

    def _check_slot(self, epoch: int | None) -> None:
        if epoch is not None and epoch != self.core.rate.epoch:
            raise SlotWithdrawn("the vendor throttled after this call's slot was granted", vendor=self.name)

    def _check_open(self) -> None:
        if self.closed:
            raise UsageError(f"the client of this {self.name} handle is closed", vendor=self.name)

    def _watch_credentials(self, http: httpx.Client | httpx.AsyncClient) -> None:
        """A credential set on ``.typed``'s httpx client after it was made (a key rotated there) is
        sent from then on: it is scrubbed from then on too, as the key the handle was made with
        (a vendor echoing it showed it whole in messages, ``raw`` and logs). One comparison of the
        client's headers a call; a change is read once."""
        raw = http.headers.raw
        if raw == self._seen_headers:
            return
        self._seen_headers = raw
        for name, value in raw:
            if name.lower().decode("latin-1") in CREDENTIAL_HEADERS and value:
                text = value.decode("latin-1")
                token = text.partition(" ")[2] or text  # after its scheme ("Bearer ..."), when it has one
                if token not in self._secrets:
                    self._secrets.append(token)
                    self.secrets.add(token)
                    LOG_SCRUBBER.add(token)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} base_url={self.settings.base_url!r}>"


class VendorClient(_Handle):
    """``Client.vendor(slug)``: one vendor's status calls, and its typed client in ``.typed``."""

    _lane: SyncLane | None = None  # on the default transport: status requests go onto its pool

    def _made(self) -> None:
        # requests beyond max_connections wait here, within their attempt's time: in httpcore's
        # pool each wait took the attempt's whole timeout, and began again whenever the connection
        # it was given was taken first (ConnectionNotAvailable): 32 threads on one connection ran
        # calls of a 2 s budget for up to 19 s
        self._slots = threading.BoundedSemaphore(self.max_connections)
        transport = self._default_transport
        if transport is not None:
            from ._deadline import DeadlineTransport, Lane

            assert isinstance(transport, DeadlineTransport)
            # the httpx client made now, on that transport: the lane sends only for this one
            self._lane = Lane(transport, self.typed.get_httpx_client(), ACCEPT_ENCODING)

    def status(self, task_id: str) -> JobStatus:
        """The job's status; retries connection errors, timeouts, 429 and 5xx within the call's budget."""
        return self.checked_status(check_task_id(self.name, task_id))

    def checked_status(self, task_id: str, until: float = math.inf) -> JobStatus:
        """:meth:`status` for a task id already checked (``Client.status`` checks it with the
        reference), ending by ``until`` on the client's clock too (a download's deadline)."""
        plan = status_plan(self.core, task_id, until)
        return run(plan, functools.partial(self.exchange, task_id), self.core.clock.sleep)

    def exchange(self, task_id: str, timeout: float, epoch: int | None = None) -> Exchange:
        """Send one status request and read its answer, bounded by ``timeout`` seconds in all
        (``epoch``: the vendor's rate epoch the call's slot was granted in, if any)."""
        return self._send(self._request_kwargs(task_id), timeout, epoch)

    def sender(self, task_id: str) -> Callable[[float, int | None], Exchange]:
        """:meth:`exchange` for one job's every attempt, its request worked out once (``wait_all``, ``watch``)."""
        return functools.partial(self._send, self._request_kwargs(task_id))

    def _send(self, kwargs: Mapping[str, Any], timeout: float, epoch: int | None = None) -> Exchange:
        self._check_open()
        deadline = time.monotonic() + timeout  # one deadline for the slot and the exchange
        if not self._slots.acquire(timeout=min(max(0.0, timeout), threading.TIMEOUT_MAX)):
            raise NotSent(
                "no request slot came free in time (every one of the vendor's max_connections is busy)",
                vendor=self.name,
            )
        try:
            http = self.typed.get_httpx_client()
            self._watch_credentials(http)
            self._check_slot(epoch)  # after waiting for a connection: the vendor may have throttled meanwhile
            answer = exchange_sync(
                http,
                kwargs,
                deadline,
                self.max_response_bytes,
                self.secrets,
                self.name,
                self._prefix,
                self._lane,
                timeout,
            )
            if self.closed:  # a body that ends with its connection, cut by the close (a transport of the caller's)
                raise closed_under_way(self.name)
            return answer
        except NetworkError as exc:  # closed by another thread meanwhile: its socket went, not the vendor
            if self.closed:
                raise closed_under_way(self.name) from exc
            raise
        except RuntimeError as exc:  # httpx's "the client has been closed", raised past the lane's check
            if self.closed or self.typed.get_httpx_client().is_closed:
                raise closed_under_way(self.name) from exc
            raise
        finally:
            self._slots.release()
            if self.closed and self._lane is not None:
                # closed while this call was under way: a connection its exchange opened on the
                # pool after close() emptied it goes now, not at garbage collection
                self._lane.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for secret in self._secrets:
                LOG_SCRUBBER.discard(secret)
        self.typed.get_httpx_client().close()


class AsyncVendorClient(_Handle):
    """``AsyncClient.vendor(slug)``: the async twin of :class:`VendorClient`.

    Its connections belong to the event loop it first ran on; on another loop it starts afresh
    once the first loop is closed (``asyncio.run`` twice works), and says why not otherwise.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _slots: Gate | None = None
    _lane: Lane | None = None  # on the default transport, once bound to a loop

    async def status(self, task_id: str) -> JobStatus:
        """The job's status; retries connection errors, timeouts, 429 and 5xx within the call's budget."""
        return await self.checked_status(check_task_id(self.name, task_id))

    async def checked_status(self, task_id: str, until: float = math.inf) -> JobStatus:
        """:meth:`status` for a task id already checked (``AsyncClient.status`` checks it with the
        reference), ending by ``until`` on the client's clock too (a download's deadline)."""
        plan = status_plan(self.core, task_id, until)
        return await arun(plan, functools.partial(self.exchange, task_id), self.core.clock.asleep)

    def exchange(
        self, task_id: str, timeout: float, epoch: int | None = None, until: float | None = None
    ) -> Awaitable[Exchange]:
        """Send one status request and read its answer, bounded by ``timeout`` seconds in all, under
        one deadline with the wait for one of the vendor's ``max_connections``; when those are
        busy, the call waits its turn until ``until`` at most (its end, on the client's clock; by
        default ``timeout`` from now) and the attempt's ``timeout`` runs from when it has one."""
        return self._send(Prepared(self._request_kwargs(task_id)), timeout, epoch, until)

    def sender(self, task_id: str) -> AsyncSend:
        """:meth:`exchange` for one job's every attempt, its request worked out once (``wait_all``, ``watch``)."""
        return functools.partial(self._send, Prepared(self._request_kwargs(task_id)))

    def _send(self, request: Prepared, timeout: float, epoch: int | None, until: float | None) -> Awaitable[Exchange]:
        """:meth:`exchange`. Not a coroutine itself: it hands back the exchange's own (on the default
        transport, ``exchange_aiohttp``'s), so a poll's awaits cross no frame of it."""
        import asyncio

        self._check_open()
        deadline = time.monotonic() + timeout
        http = self._bind(asyncio.get_running_loop())
        self._watch_credentials(http)
        if self._lane is not None:  # the default transport: one timeout for the slot and exchange
            return exchange_aiohttp(
                self._lane, request, deadline, self.max_response_bytes, self.secrets, self.name,
                self._slots, self._check_slot, epoch, until, self.core.clock.now, timeout,
            )  # fmt: skip
        return self._exchange_httpx(http, request.kwargs, timeout, epoch, until)

    async def _exchange_httpx(
        self,
        http: httpx.AsyncClient,
        kwargs: Mapping[str, Any],
        timeout: float,
        epoch: int | None,
        until: float | None,
    ) -> Exchange:
        """:meth:`exchange` on a transport the caller chose: a connection slot (until ``until`` when
        they are busy), then ``exchange_async`` within ``timeout`` and what is left of the call."""
        slots = self._slots
        assert slots is not None
        start = time.monotonic()
        now = self.core.clock.now
        queued = not slots.take()
        if queued:
            try:
                await slots.acquire(now() + timeout if until is None else until, now)
            except TimeoutError as exc:
                raise NotSent("no request slot came free before the call's time ran out", vendor=self.name) from exc
        try:
            self._check_slot(epoch)  # after waiting for a connection: the vendor may have throttled meanwhile
            left = timeout
            if queued and until is not None:
                left = min(timeout, until - now())
                if left < MIN_ATTEMPT:
                    raise NotSent("no request slot came free in time to send", vendor=self.name)
            deadline = start + timeout if not queued else time.monotonic() + left
            answer = await exchange_async(
                http,
                kwargs,
                deadline,
                self.max_response_bytes,
                self.secrets,
                self.name,
                timeout if not queued else left,
            )
            if self.closed:  # a body that ends with its connection, cut by the close (a transport of the caller's)
                raise closed_under_way(self.name)
            return answer
        except NetworkError as exc:  # closed by another task meanwhile, not the vendor's doing
            if self.closed:
                raise closed_under_way(self.name) from exc
            raise
        finally:
            slots.release()

    def _bind(self, loop: asyncio.AbstractEventLoop) -> httpx.AsyncClient:
        if self._loop is not loop:
            if self._loop is not None:
                if not self._loop.is_closed():
                    raise UsageError(OTHER_LOOP, vendor=self.name)
                self.typed, self._default_transport = self._new_typed()  # the old loop is gone, and its connections
            self._loop = loop
            self._lane = None
            # requests beyond the pool's size wait here, not in httpcore's queue (rescanned per request)
            from ._gate import Gate  # asyncio's: loaded with the first async call

            self._slots = Gate(self.max_connections)
        http: httpx.AsyncClient = self.typed.get_async_httpx_client()
        if self._lane is None and self._default_transport is not None:
            from ._aio import Lane

            self._lane = Lane(self._default_transport, http, ACCEPT_ENCODING)
        return http

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            for secret in self._secrets:
                LOG_SCRUBBER.discard(secret)
        await close_on_its_loop(self._loop, self.typed.get_async_httpx_client().aclose, self.core.timeout, self.name)


CLOSE_TURN: Final = 0.05
"""How often ``aclose`` looks whether another thread's loop it asked to run a close has ended
meanwhile (a loop closed drops what it had queued, the close with it): a guess, a tenth of a
blink, at a cost of twenty wake-ups a second for as long as the close waits."""


async def close_on_its_loop(
    loop: asyncio.AbstractEventLoop | None,
    close: Callable[[], Awaitable[None]],
    timeout: float,
    vendor: str | None = None,
) -> None:
    """``close()`` awaited on ``loop``, the one its connections were made on: here, or on that
    loop's own thread when it runs there (an ``aclose`` from another thread's loop: httpx and
    aiohttp raised a bare RuntimeError, the client left half closed). A loop that has ended took
    its connections with it (closed here, as before). A UsageError when the close cannot be
    done there: a loop open but not running (:data:`~videojobs._base.OTHER_LOOP`), or one that
    does not run it within ``timeout`` seconds (its thread waiting for this one, say) or
    cancels it (its ``asyncio.run`` ending)."""
    import asyncio

    if loop is None or loop.is_closed() or loop is asyncio.get_running_loop():
        await close()
        return
    if not loop.is_running():
        raise UsageError(OTHER_LOOP, vendor=vendor)

    async def there() -> None:
        await close()

    coroutine = there()
    try:
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    except RuntimeError:  # closed since the check: its connections went with it
        coroutine.close()
        await close()
        return
    waiting = asyncio.wrap_future(future)
    end = time.monotonic() + timeout
    done: set[asyncio.Future[None]] = set()
    while not done and not loop.is_closed() and time.monotonic() < end:  # a loop closed drops what it had queued
        done, _ = await asyncio.wait({waiting}, timeout=min(CLOSE_TURN, max(0.0, end - time.monotonic())))
    if done and not waiting.cancelled():
        waiting.result()  # the close's own error, if it had one
        return
    if future.cancel():  # not started, and now never will be: closed, not warned of as never awaited
        coroutine.close()
    if loop.is_closed():  # ended before it ran the close: its connections went with it
        await close()
        return
    raise UsageError(
        f"this AsyncClient's connections belong to an event loop on another thread that did not close them "
        f"({'it cancelled the close' if done else f'not within {timeout:g} s'}): aclose() it on that loop",
        vendor=vendor,
    )


H = TypeVar("H", VendorClient, AsyncVendorClient)


def open_session(
    handle_class: type[H],
    slug: str,
    *,
    api_keys: Mapping[str, str],
    base_urls: Mapping[str, str],
    environ: Mapping[str, str],
    timeout: float,
    max_retries: int,
    rate_limit: float | None,
    adaptive: bool,
    clock: Clock,
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
    verify: bool | ssl.SSLContext,
    max_connections: int,
    max_response_bytes: int,
) -> H:
    """One vendor's handle on a client: its settings resolved, its core and typed client made."""
    cls = adapter_class(slug)
    settings = resolve_settings(cls, api_keys, base_urls, environ)
    adapter = cls()
    core = VendorCore(
        adapter,
        timeout=timeout,
        max_retries=max_retries,
        rate=AdaptiveRate(clock.now(), ceiling=rate_limit, adaptive=adaptive),
        budget=RetryBudget(),
        clock=clock,
    )
    new_typed = functools.partial(
        typed_client,
        adapter,
        settings,
        asynchronous=handle_class is AsyncVendorClient,
        transport=transport,
        verify=verify,
        timeout=timeout,
        max_connections=max_connections,
    )
    return handle_class(
        core, settings, new_typed, max_response_bytes=max_response_bytes, max_connections=max_connections
    )


def typed_client(
    adapter: VendorAdapter,
    settings: VendorSettings,
    *,
    asynchronous: bool,
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
    verify: bool | ssl.SSLContext,
    timeout: float,
    max_connections: int,
) -> tuple[Any, httpx.BaseTransport | httpx.AsyncBaseTransport | None]:
    """The vendor's generated client on the chosen transport, and that transport when it is the
    default one (the exchange then reads it through its lane: ``_deadline.Lane``, ``_aio.Lane``)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    if (
        verify is True
        and transport is None  # a caller's own transport does what it does (and reads no environment proxy)
        and not speaks_tls(settings.base_url)
        and not speaks_tls(environment_proxy_url(settings.base_url))  # read only for a plain-HTTP vendor
    ):
        verify = closed_context()  # plain HTTP all the way: no roots to load (see _tls)
    default: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None
    httpx_args: dict[str, object] = {"limits": limits}
    if transport is None and asynchronous:
        from ._aio import aiohttp_transport

        transport = default = aiohttp_transport(
            verify=verify, max_connections=max_connections, base_url=settings.base_url
        )
    elif transport is None:
        from ._deadline import deadline_transport, environment_proxies

        # the proxy the environment names for this vendor (what httpx and urllib read, whatever
        # environ= says), given to httpx as the only one: it reads no other (an unused SOCKS
        # ALL_PROXY was an ImportError as it built a transport for each). Through a proxy,
        # httpx's own transport (each socket operation is then bounded, not the whole attempt).
        proxy = environment_proxy_url(settings.base_url) if environment_proxies(os.environ) else None
        httpx_args["trust_env"] = False
        if proxy is None:
            transport = default = deadline_transport(verify=verify, limits=limits)
        else:
            httpx_args["proxy"] = proxy
    if transport is None:  # httpx makes its transport (an environment proxy's), a TLS context with it
        verify = tls_context(verify)
    if transport is not None:
        httpx_args["transport"] = transport
    typed = adapter.client_class(
        base_url=settings.base_url,
        token=settings.api_key,
        timeout=httpx.Timeout(timeout),
        verify_ssl=verify,
        follow_redirects=False,  # never carry the key to wherever a redirect points
        httpx_args=httpx_args,
    )
    http = typed.get_async_httpx_client() if asynchronous else typed.get_httpx_client()
    http.cookies = cookie_jar()  # keeps none, on both faces (the generated client passes its own cookies=)
    return typed, default
