"""videojobs: one status protocol over AI video vendors' task-status APIs.

    import videojobs
    with videojobs.Client() as client:              # keys from VOZO_API_KEY, DUOMI_API_KEY, ...
        status = client.status("vozo:task-123")     # "<vendor>:<task id>"
        status.state, status.progress, status.video_url

Where things are:

- ``_status.py``      JobStatus, State, JobError: what every answer becomes
- ``_exceptions.py``  the error hierarchy (drawn in its docstring) and the one translation point
- ``_adapter.py``     the VendorAdapter protocol and the field helpers adapters use
- ``_registry.py``    vendor slug → adapter class, imported on first use
- ``_base.py``        what the sync and async clients share (no I/O)
- ``_client.py``      Client and AsyncClient (status, wait, watch, wait_all, download)
- ``_download.py``    downloads without I/O: names, the plan (expired links), the .part transfer
- ``_fetch.py``       downloads' I/O, blocking and asyncio
- ``_policy.py``      polling policies: FixedPolicy, AdaptivePolicy (the default)
- ``_wait.py``        the wait loop's state machine and the per-vendor rate limiter
- ``sandbox/``        every vendor simulated offline (embedded or under uvicorn)
- ``vendors/<slug>.py`` one adapter per vendor: the only vendor-specific code

Adding a sixth vendor: see the docstring of ``_adapter.py``.
"""

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
