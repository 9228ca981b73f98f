"""What ``Client`` and ``AsyncClient`` share: everything but the I/O.

Parsing references, resolving keys and base URLs, interpreting an answer, deciding what
to retry: pure functions and one base class, so the sync and async twins differ only in
``def``/``async def`` and ``with``/``async with``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
from collections.abc import Mapping
from typing import Any, Final

import attrs
import httpx

from ._adapter import BadField, EnvelopeError, VendorAdapter
from ._exceptions import (
    TRANSIENT,
    APIError,
    ConfigurationError,
    InvalidReferenceError,
    MalformedResponseError,
    RateLimitError,
    VideoJobsError,
    api_error,
    error_class,
    parse_retry_after,
    snippet,
)
from ._registry import adapter_class, registry
from ._status import JobStatus
from ._wait import DEFAULT_RATE, RateLimiter

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "BaseClient",
    "VendorSettings",
    "check_task_id",
    "interpret",
    "retry_decision",
    "split_ref",
]

logger = logging.getLogger("videojobs")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_MAX_RETRIES: Final = 2
MAX_RETRY_AFTER: Final = 60.0
"""A Retry-After longer than this is not waited out inside one call: the RateLimitError is raised."""
RETRY_WAIT_INITIAL: Final = 0.5
RETRY_WAIT_MAX: Final = 8.0
RETRY_JITTER: Final = 0.5
DEFAULT_MAX_CONNECTIONS: Final = 10
"""Connections per vendor. httpcore's pool scans all its connections on every request
(encode/httpcore#928, pydantic/httpx2#1169), so more connections cost CPU on every poll;
10 keep-alive connections per vendor carry hundreds of polls per second on loopback."""
POLL_AFTER_HEADER: Final = "openai-poll-after-ms"
"""OpenAI-compatible servers' hint, in milliseconds, honoured on every poll that sends it."""


# --- references and task ids ---------------------------------------------------------------------


def split_ref(ref: str) -> tuple[str, str]:
    """``"vozo:task-123"`` → ``("vozo", "task-123")``, split on the first colon."""
    if not isinstance(ref, str):
        raise InvalidReferenceError(f"a job reference is a string '<vendor>:<task id>', not {type(ref).__name__}")
    slug, sep, task_id = ref.partition(":")
    if not sep or not slug:
        raise InvalidReferenceError(
            f"{ref!r} is not a job reference: expected '<vendor>:<task id>', e.g. 'vozo:task-123'"
        )
    if slug not in registry:
        raise ConfigurationError(f"unknown vendor {slug!r} in {ref!r}; known vendors: {', '.join(registry)}")
    return slug, check_task_id(slug, task_id)


def check_task_id(vendor: str, task_id: str) -> str:
    """Refuse ids that cannot be sent as one path segment; everything else is percent-encoded."""
    if not isinstance(task_id, str):
        raise InvalidReferenceError(f"task id must be a string, not {type(task_id).__name__}", vendor=vendor)
    if task_id in ("", ".", ".."):
        what = "empty" if not task_id else f"{task_id!r} (it would be normalized out of the URL path)"
        raise InvalidReferenceError(f"task id is {what}", vendor=vendor)
    if _CONTROL.search(task_id):
        raise InvalidReferenceError(f"task id {task_id!r} contains control characters", vendor=vendor)
    return task_id


# --- settings: keyword arguments, then the environment, then the spec ---------------------------


@attrs.frozen(kw_only=True)
class VendorSettings:
    """What one vendor is reached with. The key never shows in ``repr()``."""

    name: str
    base_url: str
    api_key: str = attrs.field(repr=False)


def env_name(vendor: str, what: str) -> str:
    return f"{vendor.upper()}_{what}"


def resolve_settings(
    adapter: type[VendorAdapter],
    api_keys: Mapping[str, str],
    base_urls: Mapping[str, str],
    environ: Mapping[str, str],
) -> VendorSettings:
    vendor = adapter.name
    key_var, url_var = env_name(vendor, "API_KEY"), env_name(vendor, "BASE_URL")
    key = api_keys.get(vendor) or environ.get(key_var)
    if not key:
        raise ConfigurationError(f"no API key: pass api_keys={{{vendor!r}: ...}} or set {key_var}", vendor=vendor)
    if not isinstance(key, str) or any(ch.isspace() or ord(ch) < 0x20 for ch in key):
        raise ConfigurationError(f"the API key (from api_keys or {key_var}) contains whitespace", vendor=vendor)
    base_url = base_urls.get(vendor) or environ.get(url_var) or adapter.default_base_url
    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(
            f"base URL {base_url!r} (from base_urls or {url_var}) is not a URL", vendor=vendor
        ) from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"base URL {base_url!r} (from base_urls or {url_var}) must be an absolute http(s) URL", vendor=vendor
        )
    return VendorSettings(name=vendor, base_url=str(base_url).rstrip("/"), api_key=key)


def check_vendor_mapping(name: str, mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of a per-vendor mapping argument, refusing unknown slugs (typos)."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ConfigurationError(f"{name} must be a mapping of vendor slug to value, not {type(mapping).__name__}")
    unknown = sorted(set(mapping) - set(registry))
    if unknown:
        raise ConfigurationError(f"{name} names unknown vendor(s) {unknown}; known vendors: {', '.join(registry)}")
    return dict(mapping)


# --- interpreting an answer (pure) ----------------------------------------------------------------


def envelope_api_error(
    vendor: str, exc: EnvelopeError, status_code: int, raw: bytes, headers: Mapping[str, str]
) -> APIError:
    cls = error_class(exc.status_hint) if exc.status_hint else APIError
    if cls is RateLimitError:
        return RateLimitError(
            exc.message,
            vendor=vendor,
            status_code=status_code,
            code=exc.code,
            raw=raw,
            retry_after=parse_retry_after(headers.get("retry-after")),
        )
    return cls(exc.message, vendor=vendor, status_code=status_code, code=exc.code, raw=raw)


def interpret(
    adapter: VendorAdapter,
    task_id: str,
    status_code: int,
    raw: bytes,
    headers: Mapping[str, str],
    parsed: Any,
) -> JobStatus:
    """The JobStatus for an answer the generated client parsed, or the typed error it stands for."""
    vendor = adapter.name
    if not 200 <= status_code < 300:
        raise api_error(vendor, status_code, raw, headers)
    if parsed is None:
        raise MalformedResponseError(
            f"task {task_id}: HTTP {status_code} is not an answer the spec describes",
            vendor=vendor,
            status_code=status_code,
            raw=raw,
        )
    try:
        status = adapter.to_status(task_id, parsed)
    except BadField as exc:
        raise MalformedResponseError(
            f"task {task_id}: {exc.field} is not what the spec promises ({exc.reason})",
            vendor=vendor,
            status_code=status_code,
            raw=raw,
        ) from exc
    except EnvelopeError as exc:
        raise envelope_api_error(vendor, exc, status_code, raw, headers) from exc
    hint = headers.get(POLL_AFTER_HEADER)
    if hint is not None and (seconds := poll_after_seconds(hint)) is not None:
        status = attrs.evolve(status, poll_after=seconds)
    return status


def poll_after_seconds(header: str) -> float | None:
    """``openai-poll-after-ms`` in seconds; None when it is not a sane number."""
    try:
        ms = float(header)
    except ValueError:
        return None
    return ms / 1000.0 if 0 <= ms < 3_600_000 else None


def unparsable(adapter: VendorAdapter, task_id: str, response: httpx.Response, exc: BaseException) -> VideoJobsError:
    """What an answer the generated client could not parse stands for."""
    vendor, status_code, raw = adapter.name, response.status_code, response.content
    if not 200 <= status_code < 300:
        return api_error(vendor, status_code, raw, response.headers)
    try:
        body: Any = json.loads(raw)
    except ValueError:
        return MalformedResponseError(
            f"task {task_id}: the answer is not JSON: {snippet(raw)!r}", vendor=vendor, status_code=status_code, raw=raw
        )
    envelope = adapter.envelope_error(body)
    if envelope is not None:
        return envelope_api_error(vendor, envelope, status_code, raw, response.headers)
    return MalformedResponseError(
        f"task {task_id}: the answer is not the shape the spec promises ({type(exc).__name__}: {exc})",
        vendor=vendor,
        status_code=status_code,
        raw=raw,
    )


# --- retries --------------------------------------------------------------------------------------


def retry_decision(exc: Exception) -> bool | float:
    """stamina's backoff hook: retry connection errors, timeouts, 429 and 5xx; honour Retry-After.

    Returns False (do not retry), True (retry after exponential backoff with jitter) or the
    number of seconds the vendor asked us to wait.
    """
    if isinstance(exc, RateLimitError):
        if exc.retry_after is None:
            return True
        return exc.retry_after if exc.retry_after <= MAX_RETRY_AFTER else False
    return isinstance(exc, TRANSIENT)


# --- the base both clients stand on -----------------------------------------------------------


class BaseClient:
    """Configuration and per-vendor handles; no I/O."""

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        verify: bool | ssl.SSLContext = True,
        rate_limits: Mapping[str, float | None] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ConfigurationError(f"max_connections must be a whole number >= 1, not {max_connections!r}")
        self.max_connections = max_connections
        self._rate_limits: dict[str, float | None] = check_vendor_mapping("rate_limits", rate_limits)
        for slug, rate in self._rate_limits.items():
            if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0):
                raise ConfigurationError(
                    f"rate_limits[{slug!r}] must be requests per second > 0, or None, not {rate!r}"
                )
        self._api_keys: dict[str, str] = check_vendor_mapping("api_keys", api_keys)
        self._base_urls: dict[str, str] = check_vendor_mapping("base_urls", base_urls)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be a whole number >= 0, not {max_retries!r}")
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self._verify = verify
        self._environ = os.environ if environ is None else environ
        self._closed = False

    def _settings(self, slug: str) -> tuple[type[VendorAdapter], VendorSettings]:
        if self._closed:
            raise ConfigurationError(f"this {type(self).__name__} is closed")
        cls = adapter_class(slug)
        return cls, resolve_settings(cls, self._api_keys, self._base_urls, self._environ)

    def _limiter(self, slug: str) -> RateLimiter | None:
        rate = self._rate_limits.get(slug, DEFAULT_RATE)
        return None if rate is None else RateLimiter(rate)

    def _httpx_args(self, transport: Any, hook: Any) -> dict[str, Any]:
        # A small pool per vendor: httpcore rescans every pooled connection on each request,
        # so a large pool costs CPU per request (see DEFAULT_MAX_CONNECTIONS).
        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections)
        args: dict[str, Any] = {"event_hooks": {"response": [hook]}, "limits": limits}
        if transport is not None:
            args["transport"] = transport
        return args

    def _typed_client(self, adapter: VendorAdapter, settings: VendorSettings, transport: Any, hook: Any) -> Any:
        return adapter.new_client(
            base_url=settings.base_url,
            token=settings.api_key,
            timeout=self.timeout,
            verify=self._verify,
            httpx_args=self._httpx_args(transport, hook),
        )
