"""Waiting, without I/O: the state machine the sync and async wait loops share, and the rate limiter."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Final

from ._exceptions import TRANSIENT, UsageError, VideoJobsError, WaitTimeout
from ._policy import AdaptivePolicy, PollingPolicy
from ._status import JobStatus

__all__ = ["DEFAULT_RATE", "TRANSIENT", "RateLimiter", "Waiter"]

DEFAULT_RATE: Final = 10.0
"""Requests per second per vendor on one client, unless ``rate_limits`` says otherwise."""

DEFAULT_MAX_FAILED_POLLS: Final = 10
"""A wait ends with the last error after this many polls in a row failed transiently."""

OnUpdate = Callable[[JobStatus], object]


class Waiter:
    """One job being waited for: its history, the policy, the deadline.

    The loop is: ``poll`` → ``observe(status, now)`` or ``failed(exc, now)`` → sleep
    ``next_sleep(now)`` seconds, or stop when it returns None (the deadline has passed).
    """

    def __init__(
        self,
        ref: str,
        *,
        start: float,
        timeout: float | None,
        policy: PollingPolicy | None,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
    ) -> None:
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
        ):
            raise UsageError(f"timeout must be a positive number of seconds or None, not {timeout!r}")
        self.ref = ref
        self.start = start
        self.deadline = math.inf if timeout is None else start + timeout
        self.timeout = timeout
        self.policy: PollingPolicy = policy if policy is not None else AdaptivePolicy()
        self.history: list[tuple[float, JobStatus]] = []
        self.last: JobStatus | None = None
        self.polls = 0
        self.failed_in_a_row = 0
        self.max_failed_polls = max_failed_polls
        self._floor = 0.0  # Retry-After or the vendor's poll-after hint, for the next sleep

    def observe(self, status: JobStatus, now: float) -> bool:
        """Record an answer; True when state or progress changed (or it is the first)."""
        self.polls += 1
        self.failed_in_a_row = 0
        changed = self.last is None or (status.state, status.progress) != (self.last.state, self.last.progress)
        self.last = status
        self.history.append((now - self.start, status))
        self._floor = status.poll_after or 0.0
        return changed

    def failed(self, exc: VideoJobsError) -> None:
        """Record a transient failure; re-raise once they have gone on too long."""
        self.polls += 1
        self.failed_in_a_row += 1
        if self.failed_in_a_row >= self.max_failed_polls:
            raise exc
        self._floor = getattr(exc, "retry_after", None) or 0.0

    def next_sleep(self, now: float) -> float | None:
        """Seconds to sleep before the next poll; None when the deadline has passed."""
        left = self.deadline - now
        if left <= 0:
            return None
        delay = max(self.policy.next_delay(self.history), self._floor)
        if not (delay >= 0 and math.isfinite(delay)):
            raise ValueError(f"{type(self.policy).__name__}.next_delay returned {delay!r}")
        return min(delay, left)

    def timed_out(self) -> WaitTimeout:
        last = self.last
        where = ""
        if last is not None:
            where = f"; last seen {last.state.value}" + (
                f" at {last.progress:.0%}" if last.progress is not None else ""
            )
        vendor = self.ref.partition(":")[0]
        return WaitTimeout(
            f"{self.ref} did not finish within {self.timeout:g} s{where}",
            vendor=vendor,
            last_status=last,
        )


class RateLimiter:
    """Requests per second for one vendor, shared by every call on a client (GCRA, thread-safe).

    ``reserve(now)`` books the next slot and says how long to wait for it; it never blocks.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if not rate > 0:
            raise ValueError(f"a rate limit must be a positive number of requests per second, not {rate!r}")
        self.rate = rate
        self.interval = 1.0 / rate
        self.tolerance = self.interval * (max(1.0, burst if burst is not None else rate) - 1.0)
        self._tat = -math.inf  # theoretical arrival time of the next request
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        with self._lock:
            tat = max(self._tat, now)
            delay = max(0.0, tat - self.tolerance - now)
            self._tat = tat + self.interval
            return delay
