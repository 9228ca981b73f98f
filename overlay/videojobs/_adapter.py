"""The vendor adapter protocol, and the helpers every adapter maps fields with.

An adapter is the only vendor-specific code in the overlay. It says which generated
package and function to call and how that vendor's typed model becomes a
:class:`JobStatus`; everything else (keys, retries, errors, waiting) is shared.

A sixth vendor is:

1. ``specs/<slug>/`` (its page, spec, patches, config) and ``make generate``;
2. ``overlay/videojobs/vendors/<slug>.py``: a ``BaseAdapter`` subclass naming its generated
   client and endpoint module, its state table, and ``to_status`` (copy ``vozo.py``);
3. one line in ``videojobs._registry.registry``;
4. one renderer in ``videojobs/sandbox/_vendors.py`` (its answers, for the sandbox);
5. one ``VendorCase`` in ``tests/cases.py`` (the conformance suites do the rest).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, ClassVar, Protocol, runtime_checkable

from ._status import JobStatus, State

__all__ = ["BadField", "BaseAdapter", "EnvelopeError", "VendorAdapter"]


class BadField(Exception):
    """Raised by an adapter when the answer is not the shape the spec promises."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EnvelopeError(Exception):
    """Raised by an adapter whose vendor wraps errors in a 200 answer (JimmyAI's ``code``).

    ``status_hint`` is the HTTP status the vendor's code stands for, when it says.
    """

    def __init__(self, code: str | None, message: str, status_hint: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_hint = status_hint


@runtime_checkable
class VendorAdapter(Protocol):
    """What the overlay needs from one vendor. Implemented by ``videojobs.vendors.<slug>``."""

    name: ClassVar[str]
    """The vendor's slug: ``vozo``. Also the prefix of its env variables (``VOZO_API_KEY``)."""

    default_base_url: ClassVar[str]
    """The server URL in the vendor's spec."""

    states: ClassVar[Mapping[str, State]]
    """Every status value the vendor documents (and known aliases) → State."""

    def new_client(self, *, base_url: str, token: str, timeout: float, verify: Any, httpx_args: dict[str, Any]) -> Any:
        """The generated ``AuthenticatedClient``, built with the key (it sets the header itself)."""
        ...

    def fetch(self, client: Any, task_id: str) -> Any:
        """Call the generated ``sync_detailed``; return its ``Response``."""
        ...

    async def afetch(self, client: Any, task_id: str) -> Any:
        """Call the generated ``asyncio_detailed``; return its ``Response``."""
        ...

    def to_status(self, task_id: str, model: Any) -> JobStatus:
        """Map the typed 200 model to a JobStatus; raise BadField or EnvelopeError."""
        ...

    def envelope_error(self, body: Any) -> EnvelopeError | None:
        """For a 2xx body the generated client could not parse: the vendor's error in it, if any."""
        ...


class BaseAdapter:
    """Shared parts of the adapters. Subclasses set the class variables and ``to_status``."""

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    states: ClassVar[Mapping[str, State]]
    client_class: ClassVar[type[Any]]
    endpoint: ClassVar[ModuleType]
    """The generated endpoint module; only its ``*_detailed`` functions are called, so the
    status code is always seen."""

    def fetch(self, client: Any, task_id: str) -> Any:
        return self.endpoint.sync_detailed(task_id, client=client)

    async def afetch(self, client: Any, task_id: str) -> Any:
        return await self.endpoint.asyncio_detailed(task_id, client=client)

    def new_client(self, *, base_url: str, token: str, timeout: float, verify: Any, httpx_args: dict[str, Any]) -> Any:
        import httpx

        return self.client_class(
            base_url=base_url,
            token=token,
            timeout=httpx.Timeout(timeout),
            verify_ssl=verify,
            follow_redirects=False,  # never carry the key to wherever a redirect points
            httpx_args=httpx_args,
        )

    def envelope_error(self, body: Any) -> EnvelopeError | None:
        return None

    def state(self, vendor_state: Any) -> tuple[State, str]:
        """``(State, the vendor's word)``; a value not in the table is UNKNOWN, never an error."""
        word = str(getattr(vendor_state, "value", vendor_state))
        return self.states.get(word, State.UNKNOWN), word

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# --- field helpers: UNSET and None become None; a wrong type is BadField ------------------------


def is_unset(value: Any) -> bool:
    # Every generated package has its own Unset class; they share the name and falsiness.
    return value is None or type(value).__name__ == "Unset"


def opt_str(value: Any, field: str) -> str | None:
    if is_unset(value):
        return None
    if not isinstance(value, str):
        raise BadField(field, f"expected a string, got {type(value).__name__}")
    return value


def opt_number(value: Any, field: str) -> float | None:
    if is_unset(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadField(field, f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise BadField(field, f"expected a finite number, got {value!r}")
    return number


def percent(value: Any, field: str) -> float | None:
    """A 0-100 progress as 0.0-1.0 (clamped: vendors overshoot)."""
    number = opt_number(value, field)
    return None if number is None else min(1.0, max(0.0, number / 100.0))


def fraction(value: Any, maximum: Any, field: str) -> float | None:
    """``value / maximum`` as 0.0-1.0 (Colossyan's progress / maximumProgress)."""
    number, top = opt_number(value, field), opt_number(maximum, f"maximum of {field}")
    if number is None or top is None or top <= 0:
        return None
    return min(1.0, max(0.0, number / top))


_MS_THRESHOLD = 100_000_000_000  # a Unix time above this (year 5138 in seconds) is in milliseconds


def unix_time(value: Any, field: str) -> datetime | None:
    """A Unix timestamp (seconds, or milliseconds when implausibly large) as an aware UTC datetime."""
    number = opt_number(value, field)
    if number is None:
        return None
    if number > _MS_THRESHOLD:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise BadField(field, f"not a usable Unix time: {value!r}") from exc


def final_progress(state: State, progress: float | None) -> float | None:
    """A succeeded job is at 1.0, whatever the vendor last said."""
    return 1.0 if state is State.SUCCEEDED else progress
