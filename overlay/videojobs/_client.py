"""``Client`` and ``AsyncClient``: thin twins over ``_base``; only the I/O differs."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx
import stamina

from ._adapter import VendorAdapter
from ._base import (
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
from ._exceptions import aremember_response, remember_response, translating
from ._status import JobStatus

__all__ = ["AsyncClient", "AsyncVendorClient", "Client", "VendorClient"]

logger = logging.getLogger("videojobs")


def _retrying(max_retries: int) -> Any:
    return stamina.retry_context(
        on=retry_decision,
        attempts=max_retries + 1,
        timeout=None,
        wait_initial=RETRY_WAIT_INITIAL,
        wait_max=RETRY_WAIT_MAX,
        wait_jitter=RETRY_JITTER,
    )


class _VendorBase:
    """One vendor on one client: its adapter, settings and (lazily) its typed client."""

    def __init__(self, adapter: VendorAdapter, settings: VendorSettings, typed: Any, max_retries: int) -> None:
        self.adapter = adapter
        self.settings = settings
        self.typed = typed  # the generated AuthenticatedClient, for vendor-specific calls
        self.max_retries = max_retries

    @property
    def name(self) -> str:
        return self.adapter.name

    def _log(self, status: JobStatus, status_code: int) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s: HTTP %d, %s (%s)", self.name, status.task_id, status_code, status.state, status.vendor_state
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} base_url={self.settings.base_url!r}>"


class VendorClient(_VendorBase):
    """``Client.vendor(slug)``: one vendor's status calls, and its typed client in ``.typed``."""

    def status(self, task_id: str) -> JobStatus:
        """The job's status; retries connection errors, timeouts, 429 and 5xx."""
        task_id = check_task_id(self.name, task_id)
        for attempt in _retrying(self.max_retries):
            with attempt:
                return self._once(task_id)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    def _once(self, task_id: str) -> JobStatus:
        with translating(self.name, lambda response, exc: unparsable(self.adapter, task_id, response, exc)):
            response = self.adapter.fetch(self.typed, task_id)
        status = interpret(
            self.adapter, task_id, int(response.status_code), response.content, response.headers, response.parsed
        )
        self._log(status, int(response.status_code))
        return status

    def close(self) -> None:
        self.typed.get_httpx_client().close()


class AsyncVendorClient(_VendorBase):
    """``AsyncClient.vendor(slug)``: the async twin of :class:`VendorClient`."""

    async def status(self, task_id: str) -> JobStatus:
        """The job's status; retries connection errors, timeouts, 429 and 5xx."""
        task_id = check_task_id(self.name, task_id)
        async for attempt in _retrying(self.max_retries):
            with attempt:
                return await self._once(task_id)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _once(self, task_id: str) -> JobStatus:
        with translating(self.name, lambda response, exc: unparsable(self.adapter, task_id, response, exc)):
            response = await self.adapter.afetch(self.typed, task_id)
        status = interpret(
            self.adapter, task_id, int(response.status_code), response.content, response.headers, response.parsed
        )
        self._log(status, int(response.status_code))
        return status

    async def aclose(self) -> None:
        await self.typed.get_async_httpx_client().aclose()


class Client(BaseClient):
    """Status of jobs at every vendor, synchronously.

    >>> with videojobs.Client(api_keys={"vozo": "..."}) as client:
    ...     client.status("vozo:task-123").state
    """

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
        verify: bool | ssl.SSLContext = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            api_keys=api_keys,
            base_urls=base_urls,
            timeout=timeout,
            max_retries=max_retries,
            verify=verify,
            environ=environ,
        )
        self._transport = transport
        self._vendors: dict[str, VendorClient] = {}

    def vendor(self, slug: str) -> VendorClient:
        """The handle for one vendor (created on first use, with one pooled connection set)."""
        handle = self._vendors.get(slug)
        if handle is None:
            cls, settings = self._settings(slug)
            adapter = cls()
            typed = self._typed_client(adapter, settings, self._transport, remember_response)
            handle = self._vendors[slug] = VendorClient(adapter, settings, typed, self.max_retries)
        return handle

    def status(self, ref: str) -> JobStatus:
        """The status of ``"<vendor>:<task id>"``."""
        slug, task_id = split_ref(ref)
        return self.vendor(slug).status(task_id)

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


class AsyncClient(BaseClient):
    """Status of jobs at every vendor, on asyncio. The twin of :class:`Client`."""

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool | ssl.SSLContext = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            api_keys=api_keys,
            base_urls=base_urls,
            timeout=timeout,
            max_retries=max_retries,
            verify=verify,
            environ=environ,
        )
        self._transport = transport
        self._vendors: dict[str, AsyncVendorClient] = {}

    def vendor(self, slug: str) -> AsyncVendorClient:
        """The handle for one vendor (created on first use, with one pooled connection set)."""
        handle = self._vendors.get(slug)
        if handle is None:
            cls, settings = self._settings(slug)
            adapter = cls()
            typed = self._typed_client(adapter, settings, self._transport, aremember_response)
            handle = self._vendors[slug] = AsyncVendorClient(adapter, settings, typed, self.max_retries)
        return handle

    async def status(self, ref: str) -> JobStatus:
        """The status of ``"<vendor>:<task id>"``."""
        slug, task_id = split_ref(ref)
        return await self.vendor(slug).status(task_id)

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
