"""videojobs: one status protocol over AI video vendors' task-status APIs.

    import videojobs
    with videojobs.Client() as client:              # keys from VOZO_API_KEY, DUOMI_API_KEY, ...
        status = client.status("vozo:task-123")     # "<vendor>:<task id>"
        status.state, status.progress, status.video_url

Where things are, from the top floor down (each module imports only modules below it):

- ``_client.py``      the faces: Client and AsyncClient check each call's arguments and hand down
- ``_batch.py``       many jobs at once: wait_all's drivers (sender coroutines, or thread pools),
                      download_all (each job once)
- ``_sessions.py``    one vendor on one client: VendorClient, AsyncVendorClient (its core, typed
                      client, transport choice and, async, its event loop)
- ``_fetch.py``       downloads' network I/O, blocking and asyncio (runs the download plan)
- ``_calls.py``       the plans of a status call and a wait (retries, backoff, pacing), sans I/O,
                      their sync and async drivers, and a vendor's asyncio slot queue (its pace)
- ``_exchange.py``    one request's I/O: send, read the bytes bounded by size and deadline, scrub
- ``_files.py``       downloads' disk I/O: Transfer (the .part, never through a link, the final link)
- ``_base.py``        checks before any request: references, keys, base URLs, a client's arguments
- ``_schedule.py``    pure: wait_all's scheduler (every plan to its next wait, sleepers, the line)
- ``_translate.py``   pure: a vendor's answer → JobStatus or typed error (the one translation point)
- ``_download.py``    pure: file names, the download plan (expired links), answer checks, resume proof
- ``_wait.py``        pure: one job's wait (Waiter), the Clock protocol
- ``_registry.py``    vendor slug → adapter class, from the one list (entry points), on first use
- ``vendors/<slug>.py`` one adapter per vendor: the only vendor-specific code
- ``_adapter.py``     the VendorAdapter protocol, BaseAdapter and Fields, the field helpers
- ``_policy.py``      polling policies: FixedPolicy, AdaptivePolicy (the default), History
- ``_status.py``      JobStatus, State, JobError, Download: what every answer becomes (and the
                      two errors that carry one: WaitTimeout, JobFailedError)
- ``_ratecontrol.py`` per-vendor rate control (CUBIC token bucket) and the retry budget
- ``_exceptions.py``  the error hierarchy (drawn in its docstring); imports only ``_text`` (pure)
- ``_plan.py``        the one plan walker (status calls, waits and downloads are plans)
- ``_deadline.py``    the sync clients' transport: httpcore's pool, every socket op cut to a deadline
- ``_aio.py``         the async clients' transport: httpx on aiohttp
- ``_tls.py``         the TLS context of ``verify=True``, one per process, shared by every transport
- ``_gate.py``        asyncio slots (a vendor's connections, max_downloads' saves): FIFO
- ``_scrub.py``       keys scrubbed from answers, errors and log records (LOG_SCRUBBER)
- ``celery/``         waiting on Celery workers with Redis; ``sandbox/`` every vendor simulated offline;
                      ``_cli.py`` the ``videojobs`` command

Adding a sixth vendor: see the docstring of ``_registry.py``.
"""

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._adapter import BaseAdapter, Fields, VendorAdapter
    from ._client import AsyncClient, Client
    from ._exceptions import (
        APIError,
        AuthenticationError,
        CallbackError,
        ConfigurationError,
        DownloadError,
        InvalidReferenceError,
        LinkExpiredError,
        MalformedResponseError,
        NetworkError,
        NotFoundError,
        RateLimitError,
        ServerError,
        UsageError,
        VideoJobsError,
    )
    from ._policy import AdaptivePolicy, FixedPolicy, History, PollingPolicy
    from ._registry import known_vendors, register_vendor
    from ._sessions import AsyncVendorClient, VendorClient
    from ._status import Download, DownloadProgress, JobError, JobFailedError, JobStatus, State, WaitTimeout
    from ._wait import Clock, SystemClock

__version__ = "0.1.0"

_LAZY: Final = {
    **dict.fromkeys(["AsyncClient", "Client"], "_client"),
    **dict.fromkeys(
        [
            "APIError",
            "AuthenticationError",
            "CallbackError",
            "ConfigurationError",
            "DownloadError",
            "InvalidReferenceError",
            "LinkExpiredError",
            "MalformedResponseError",
            "NetworkError",
            "NotFoundError",
            "RateLimitError",
            "ServerError",
            "UsageError",
            "VideoJobsError",
        ],
        "_exceptions",
    ),
    **dict.fromkeys(["known_vendors", "register_vendor"], "_registry"),
    **dict.fromkeys(["Clock", "SystemClock"], "_wait"),
    **dict.fromkeys(["BaseAdapter", "Fields", "VendorAdapter"], "_adapter"),
    **dict.fromkeys(["AdaptivePolicy", "FixedPolicy", "History", "PollingPolicy"], "_policy"),
    **dict.fromkeys(["AsyncVendorClient", "VendorClient"], "_sessions"),
    **dict.fromkeys(
        ["Download", "DownloadProgress", "JobError", "JobFailedError", "JobStatus", "State", "WaitTimeout"], "_status"
    ),
}
"""Every public name, its module loaded on first use (PEP 562), as the first status call loads them
anyway: ``import videojobs`` and ``Client()`` need neither attrs (statuses, policies, adapters)
nor httpx (the sessions), so importing costs a fraction of ``import httpx`` (``scripts/bench.py
--only import``). And the sandbox (``videojobs.sandbox``), the vendors' stand-in, loads this
package's ``__init__`` and nothing of the client's: ``tests/test_layout.py`` checks both."""

__all__ = [
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


if not TYPE_CHECKING:  # hidden from type checkers, which read the imports above (a typo stays an error)

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # once: later lookups find it here
        return value


def __dir__() -> list[str]:
    """The public names and the module's own dunders: not ``Final``, ``TYPE_CHECKING`` or ``_LAZY``."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
