"""Waiting, without I/O: the clock protocol, one job's wait state, and the per-vendor rate limiter."""

from __future__ import annotations

import contextlib
import functools
import math
import reprlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from ._base import MAX_SECONDS, check_callback, check_policy, check_timeout, check_whole
from ._exceptions import CallbackError, NetworkError, UsageError, VideoJobsError, callback_errors, not_awaited

if TYPE_CHECKING:  # a Client is made without them: policies and statuses (attrs) load with the first wait
    from ._policy import AdaptivePolicy, History, PollingPolicy
    from ._status import JobStatus, WaitTimeout

__all__ = [
    "DEFAULT_MAX_FAILED_POLLS",
    "MIN_ATTEMPT",
    "Clock",
    "NotSent",
    "OnPollError",
    "OnUpdate",
    "SystemClock",
    "Waiter",
    "call_on_update",
    "check_wait_args",
]

MIN_ATTEMPT: Final = 0.05
"""Seconds of its time a call must have left to send an attempt at all: a slot that comes as the
call's time runs out would spend a rate token on an attempt doomed to time out (the call ends
with "no request slot" instead), and a retry that could not start with this much left is not
made (the call ends with the error that asked for it)."""


class NotSent(NetworkError):
    """Internal: a request was not sent, its time having run out while it waited for a request
    slot (or less than ``MIN_ATTEMPT`` being left once it had one). A status call that ends on it
    ends with the error its retry was for, if it was a retry, else with a plain NetworkError
    (``status_plan``): it never leaves a call under this name."""


DEFAULT_MAX_FAILED_POLLS: Final = 10
"""A wait ends with the last error after this many polls in a row failed (network, 5xx, 429, malformed)."""

FAILED_POLL_BACKOFF: Final = 1.0
FAILED_POLL_BACKOFF_CAP: Final = 60.0
"""After n failed polls in a row the next waits at least ``1 * 2**(n-1)`` s, at most 60 s (and never
less than the policy asks): a vendor that is down is asked less often than its policy would, and
the default ten failures in a row span about four minutes of outage (1+2+...+32+60+60+60 s), so a
one-minute outage costs no job. The doubling is the usual exponential backoff (AWS, gRPC)."""

OnUpdate = Callable[["JobStatus"], object]
OnPollError = Callable[[VideoJobsError, int], object]
"""``on_poll_error(error, failed_in_a_row)``: a poll failed and the wait goes on (``error.ref`` says which job)."""


@functools.cache
def _policies() -> tuple[type[AdaptivePolicy], type[History]]:
    """The default policy and History, imported by the first wait and kept (``_policy`` stands on
    attrs, which ``import videojobs`` and ``Client()`` leave out): a wait pays a cache hit, not an import."""
    from ._policy import AdaptivePolicy, History

    return AdaptivePolicy, History


@runtime_checkable
class Clock(Protocol):
    """What waits, backoffs and rate limits read time from and sleep on (inject one in tests).

    Request deadlines are real time whatever the clock: a socket does not run on a fake one.
    """

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    """``time.monotonic``, ``time.sleep`` and ``asyncio.sleep``: the default clock."""

    now = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    async def asleep(self, seconds: float) -> None:
        import asyncio  # imported on first use: ``import videojobs`` leaves asyncio out

        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class Stop:
    """A client's close as its waits' sleeps see it: on the system clock a wait sleeping between
    two polls wakes at once when its client is closed (its next poll then says the client is
    closed): a service that closed its client, then joined its workers, waited up to a poll's
    delay (a minute with the default policy). On another clock (a simulation's, a sandbox's
    scaled one) a sleep runs whole. ``wait_all`` schedulers register to be told."""

    __slots__ = ("_asleep_on", "_clock", "_event", "_lock", "_told")

    def __init__(self, clock: Clock) -> None:
        import threading  # with the first client: ``import videojobs`` leaves it out

        self._clock = clock
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._told: set[Callable[[], None]] = set()  # wait_all schedulers', and asleep's futures' wakers
        self._asleep_on = type(clock) is SystemClock  # only the system clock's sleeps can be cut short

    def is_set(self) -> bool:
        return self._event.is_set()

    @staticmethod
    def error(vendor: str) -> UsageError:
        """What a job whose wait the close cut short ends with."""
        return UsageError("the client was closed while this job was waited for", vendor=vendor)

    def set(self) -> None:
        """The client is closed: every sleeper is woken (once). A callback that fails (its loop
        closed under it) is passed over: the close goes on, and so do the others."""
        with self._lock:
            self._event.set()
            told, self._told = list(self._told), set()
        for tell in told:
            with contextlib.suppress(Exception):
                tell()

    def tell(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (thread-safe, quick) when the client is closed, at once if it is;
        returns what forgets it."""
        with self._lock:
            if not self._event.is_set():
                self._told.add(callback)
                return functools.partial(self._told.discard, callback)
        callback()
        return _nothing

    def sleep(self, seconds: float) -> None:
        """The clock's sleep, ended early by the close."""
        if self._asleep_on:
            self._event.wait(seconds)
        else:
            self._clock.sleep(seconds)

    def sleeper(self, vendor: str) -> Callable[[float], None]:
        """One job's sleep (a wait's, a download's backoff): :meth:`sleep`, then, once the client
        is closed, its error raised (a wait paced by its vendor asked again at once, and again)."""

        def sleep(seconds: float) -> None:
            self.sleep(seconds)
            if self._asleep_on and self._event.is_set():
                raise Stop.error(vendor)

        return sleep

    def asleeper(self, vendor: str) -> Callable[[float], Awaitable[None]]:
        """The asyncio twin of :meth:`sleeper`."""

        async def asleep(seconds: float) -> None:
            await self.asleep(seconds)
            if self._asleep_on and self._event.is_set():
                raise Stop.error(vendor)

        return asleep

    def fail_on_close(self, future: Any, vendor: str) -> Callable[[], None]:
        """End ``future`` (a vendor's slot queue wait) with the close's error once the client is
        closed, on its loop; returns what forgets it."""
        loop = future.get_loop()

        def closed() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_fail, future, vendor)

        return self.tell(closed)

    async def asleep(self, seconds: float) -> None:
        """The clock's asleep, ended early by the close."""
        if not self._asleep_on:
            await self._clock.asleep(seconds)
            return
        import asyncio

        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, _done, woken)
        forget = self.tell(lambda: _wake(loop, woken))
        try:
            await woken
        finally:
            timer.cancel()
            forget()


def _done(future: Any) -> None:
    if not future.done():
        future.set_result(None)


def _wake(loop: Any, future: Any) -> None:
    """``_done`` on the future's loop, from any thread (a closed loop has nobody left to wake)."""
    if not loop.is_closed():
        loop.call_soon_threadsafe(_done, future)


def _nothing() -> None:
    pass


def _fail(future: Any, vendor: str) -> None:
    if not future.done():
        future.set_exception(Stop.error(vendor))


def check_wait_args(
    timeout: float | None,
    max_failed_polls: int,
    *,
    policy: object = None,
    on_poll_error: object = None,
    on_update: object = None,
) -> float | None:
    """A wait's own arguments, checked before any request: the timeout in seconds, or None."""
    check_whole("max_failed_polls", max_failed_polls, 1)
    check_policy(policy)
    check_callback("on_poll_error", on_poll_error)
    check_callback("on_update", on_update)
    return check_timeout("timeout", timeout)


class Waiter:
    """One job being waited for: its history, the policy, the deadline, the failures in a row.

    The loop is: poll → ``observe(status, now)`` or ``failed(exc)`` → sleep
    ``next_sleep(now)`` seconds, or stop with ``timed_out()`` when it returns None.
    """

    def __init__(
        self,
        ref: str,
        *,
        start: float,
        timeout: float | None,
        policy: PollingPolicy | None,
        max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
        on_poll_error: OnPollError | None = None,
    ) -> None:
        adaptive, history = _policies()
        self.timeout = check_wait_args(timeout, max_failed_polls, policy=policy, on_poll_error=on_poll_error)
        self.on_poll_error = on_poll_error
        self.ref = ref
        self.vendor, _, self.task_id = ref.partition(":")
        self.start = start
        self.deadline = math.inf if self.timeout is None else start + self.timeout
        self.policy: PollingPolicy = policy if policy is not None else adaptive()
        self.history = history()
        self.failed_in_a_row = 0
        self.max_failed_polls = max_failed_polls
        self.last_error: VideoJobsError | None = None
        self._floor = 0.0  # Retry-After or the vendor's poll-after hint, for the next sleep

    @property
    def last(self) -> JobStatus | None:
        return self.history.last

    def to_dict(self) -> dict[str, Any]:
        """The wait as plain JSON, to go on in another process (a task message carries it between
        polls, as :meth:`History.to_dict`). The policy and ``on_poll_error`` stay out: pass them to
        :meth:`from_dict`; the last error is kept as its message (what :meth:`timed_out` says)."""
        return {
            "ref": self.ref,
            "start": self.start,
            "timeout": self.timeout,
            "max_failed_polls": self.max_failed_polls,
            "failed_in_a_row": self.failed_in_a_row,
            "floor": self._floor,
            "last_error": None if self.last_error is None else self.last_error.message,
            "history": self.history.to_dict(),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, policy: PollingPolicy | None, on_poll_error: OnPollError | None = None
    ) -> Waiter:
        """The Waiter :meth:`to_dict` wrote, with ``policy`` (None: the default)."""
        waiter = cls(
            str(data["ref"]),
            start=float(data["start"]),
            timeout=data["timeout"],
            policy=policy,
            max_failed_polls=int(data["max_failed_polls"]),
            on_poll_error=on_poll_error,
        )
        waiter.history = _policies()[1].from_dict(data["history"])
        waiter.failed_in_a_row = int(data["failed_in_a_row"])
        waiter._floor = float(data["floor"])
        if data.get("last_error") is not None:
            waiter.last_error = VideoJobsError(str(data["last_error"]), vendor=waiter.vendor)
        return waiter

    def observe(self, status: JobStatus, now: float) -> bool:
        """Record an answer; True when state or progress changed (or it is the first)."""
        last = self.history.last
        changed = last is None or (status.state, status.progress) != (last.state, last.progress)
        self.history.record(now - self.start, status)
        self.failed_in_a_row = 0
        self.last_error = None
        self._floor = status.poll_after or 0.0
        return changed

    def failed(self, exc: VideoJobsError) -> None:
        """Record a failed poll; re-raise it once they have gone on too long."""
        self.failed_in_a_row += 1
        self.last_error = exc
        if self.failed_in_a_row >= self.max_failed_polls:
            raise exc
        if self.on_poll_error is not None:
            exc.ref = self.ref
            try:
                not_awaited(self.on_poll_error(exc, self.failed_in_a_row))
            except callback_errors() as error:  # the caller's callback: whatever it raises ends this wait, typed
                raise CallbackError(
                    f"on_poll_error raised {type(error).__name__} for {self.ref}; the wait for it stopped",
                    vendor=self.vendor,
                ) from error
        backoff = min(FAILED_POLL_BACKOFF_CAP, FAILED_POLL_BACKOFF * 2.0 ** (self.failed_in_a_row - 1))
        from ._ratecontrol import pause_for  # a failed poll's path: a new client does not load rate control

        # a vendor's Retry-After, as long as the pause it keeps for every call (up to a day asked,
        # each failed poll slept it: ten days at the default max_failed_polls)
        self._floor = max(backoff, pause_for(getattr(exc, "retry_after", None)))

    def next_sleep(self, now: float) -> float | None:
        """Seconds to sleep before the next poll (never past the deadline); None once it has passed."""
        left = self.deadline - now
        if left <= 0:
            return None
        name = type(self.policy).__name__
        try:
            given = self.policy.next_delay(self.history)
        except callback_errors() as exc:  # the caller's policy: whatever it raises ends this wait, typed
            raise CallbackError(
                f"{name}.next_delay raised {type(exc).__name__} while waiting for {self.ref}", vendor=self.vendor
            ) from exc
        # a number: whatever float() takes (numpy's, Decimal, Fraction) but a string, bytes or a
        # bool; finite once a float (10**400 is not: it overflows)
        try:
            delay = math.nan if isinstance(given, (str, bytes, bool)) else float(given)
        except (TypeError, ValueError, OverflowError):
            delay = math.nan
        if not (delay >= 0 and math.isfinite(delay)):
            raise CallbackError(
                f"{name}.next_delay returned {reprlib.repr(given)}, not seconds >= 0", vendor=self.vendor
            )
        return min(max(delay, self._floor), left, MAX_SECONDS)  # past it, time.sleep overflows time_t

    def timed_out(self) -> WaitTimeout:
        from ._status import WaitTimeout

        last = self.last
        where = ""
        if last is not None:
            where = f"; last seen {last.state.value}" + (
                f" at {last.progress:.0%}" if last.progress is not None else ""
            )
        if self.last_error is not None:
            where += f"; the last poll failed: {self.last_error.message}"
        return WaitTimeout(
            f"task {self.task_id} did not finish within {self.timeout or 0:g} s{where}",
            vendor=self.vendor,
            last_status=last,
        )


def call_on_update(on_update: OnUpdate | None, status: JobStatus) -> None:
    """The caller's ``on_update(status)``; whatever it raises ends this wait, as a :class:`CallbackError`."""
    if on_update is None:
        return
    try:
        not_awaited(on_update(status))
    except callback_errors() as exc:  # the caller's callback: whatever it raises ends this wait, typed
        raise CallbackError(
            f"on_update raised {type(exc).__name__} for {status.ref}; the wait for it stopped", vendor=status.vendor
        ) from exc
