"""One poll per task message: the state a message carries, and what a worker does with it.

A message is small and bounded (a few hundred bytes): the job, its hop number, the policy, the
user's callback and the job's :class:`~videojobs._wait.Waiter` (``to_dict``: its History, its
deadline, the failures in a row): the same wait as in one process, carried between polls.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping
from typing import Any, Final

import attrs

from .._exceptions import TRANSIENT, CallbackError, MalformedResponseError, UsageError, VideoJobsError
from .._policy import AdaptivePolicy, FixedPolicy, PollingPolicy
from .._status import JobStatus, outcome_dict
from .._wait import FAILED_POLL_BACKOFF_CAP, Waiter

__all__ = [
    "MAX_HOPS",
    "MAX_HOP_MESSAGE",
    "MAX_MESSAGE",
    "MAX_TIMEOUT",
    "Again",
    "Done",
    "PollState",
    "decide",
    "next_due",
    "paced",
    "payload",
    "policy_from",
    "policy_spec",
    "timed_out",
]

MAX_TIMEOUT: Final = 30 * 24 * 3600.0
"""The longest ``track(timeout=)``: a job's record lives until its deadline plus ``JOB_TTL``, so a
deadline (from a caller, or from a forged message) never keeps a key for longer than this."""
CLOCK_SKEW: Final = 24 * 3600.0
"""How far ahead of a worker's clock the caller's may be: a 30-day job's first poll, on a worker
whose clock is behind by a little more than the delivery took, read as past MAX_TIMEOUT and was
dropped as not one of ours. A forged deadline still keeps a key at most a day longer."""
MAX_HOPS: Final = 2**31
"""The most hops a chain counts: a job polled every 10 ms for MAX_TIMEOUT makes 2.6e8. Redis's
Lua compares hop numbers as doubles, exact far past this (2**53: a forged hop past it would
compare equal to the next one, and the chain would stall)."""
POLICY_KINDS: Final = frozenset(("adaptive", "fixed", "import"))

MAX_MESSAGE: Final = 64 * 1024
"""The largest poll message ``track()`` sends, in bytes: ``on_done`` travels in every hop's
message and in the job's Redis record (a 5 MB one made each poll carry it both ways)."""
MAX_HOP_MESSAGE: Final = 2 * MAX_MESSAGE
"""The largest poll message a worker takes: what ``track()`` allows, plus the wait state the hops
add (16 samples of History and the last error's message: a few KB), with room to spare. A
larger one was not written by ``track()`` and a worker (a 5 MB ``last_error`` was claimed, kept
in Redis for a day and sent on at every hop)."""

DUE_SLACK: Final = 5.0
"""Seconds a poll's successor is expected within, at least (see :func:`next_due`): a paced or
hinted poll a few seconds late needs no write to say so."""


def policy_spec(policy: PollingPolicy | str | None) -> dict[str, Any]:
    """A policy as message data: the two built-ins by their fields, any other by the import path
    of a policy object (checked now, in the caller's process, so a wrong path fails ``track()``)."""
    if policy is None:
        return {"kind": "adaptive"}
    if isinstance(policy, AdaptivePolicy):
        return {"kind": "adaptive", **attrs.asdict(policy)}
    if isinstance(policy, FixedPolicy):
        return {"kind": "fixed", "seconds": policy.seconds}
    if isinstance(policy, str) and ":" in policy:
        _imported(policy)
        return {"kind": "import", "path": policy}
    raise UsageError(
        "a tracked job's policy travels in its task message: AdaptivePolicy, FixedPolicy, or the "
        f"import path of a policy object ('package.module:name'), not {type(policy).__name__}"
    )


def policy_from(spec: Mapping[str, Any]) -> PollingPolicy:
    """The policy :func:`policy_spec` wrote; UsageError when an import path names no policy object."""
    fields = {k: v for k, v in spec.items() if k != "kind"}
    if spec["kind"] == "fixed":
        return FixedPolicy(**fields)
    if spec["kind"] == "import":
        return _imported(str(fields["path"]))
    return AdaptivePolicy(**fields)


def _imported(path: str) -> PollingPolicy:
    module, _, name = path.partition(":")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UsageError(f"policy {path!r} could not be imported: {type(exc).__name__}: {exc}") from exc
    # a class has next_delay too, unbound: it would fail at the first poll (TypeError), so name it now
    if isinstance(found, type) or not callable(getattr(found, "next_delay", None)):
        raise UsageError(
            f"policy {path!r} is {'a class' if isinstance(found, type) else type(found).__name__}, not a policy "
            "object with next_delay(history): name an instance (e.g. SLOW = FixedPolicy(30) in your module)"
        )
    policy: PollingPolicy = found
    return policy


def next_due(spec: Mapping[str, Any]) -> float:
    """Seconds within which the next poll comes when nothing unusual happens: the policy's longest
    delay (an import path's is unknown: the failure backoff's cap), at least ``DUE_SLACK``. A poll
    whose next one comes later says so (one more write); else the sweeper reads this."""
    if spec["kind"] == "fixed":
        bound = float(spec["seconds"])
    elif spec["kind"] == "adaptive":
        bound = float(spec.get("max_delay", AdaptivePolicy().max_delay))
    else:
        bound = FAILED_POLL_BACKOFF_CAP
    return max(DUE_SLACK, bound)


@attrs.frozen(kw_only=True)
class PollState:
    """What one poll message carries (``to_message`` / ``from_message``: plain JSON)."""

    ref: str
    waiter: dict[str, Any]  # Waiter.to_dict(): start, timeout, failures in a row, History
    hop: int = 0
    polls: int = 0  # status calls made so far (answered or failed)
    policy: dict[str, Any] = attrs.field(factory=lambda: {"kind": "adaptive"})
    on_done: dict[str, Any] | None = None  # the callback's signature, as Celery serializes it
    booked: float | None = None  # this hop holds a slot of the vendor's shared rate, booked at this cut
    slot: float | None = None  # when that slot is due (the fleet's clock): a hop back sooner keeps its place
    rate: float | None = None  # the rate it was booked at: after a cut, the share the new rate is of it keeps its slot

    @classmethod
    def start(
        cls,
        ref: str,
        *,
        started: float,
        timeout: float,
        max_failed: int,
        policy: dict[str, Any],
        on_done: dict[str, Any] | None = None,
    ) -> PollState:
        """A job's first poll (``started`` and every time after: Unix seconds)."""
        waiter = Waiter(ref, start=started, timeout=timeout, policy=None, max_failed_polls=max_failed)
        return cls(ref=ref, waiter=waiter.to_dict(), policy=policy, on_done=on_done)

    @property
    def deadline(self) -> float:
        return float(self.waiter["start"]) + float(self.waiter["timeout"])

    def to_message(self) -> dict[str, Any]:
        # shallow: the fields are JSON already (attrs.asdict would copy the Waiter's History deeply,
        # which was most of a poll's own CPU)
        return {field.name: getattr(self, field.name) for field in _FIELDS}

    @classmethod
    def from_message(cls, message: object, now: float) -> PollState:
        """The state a poll message carries, checked before anything is claimed or sent: one that
        is not ours (forged, corrupt, another app's) is a UsageError that says why; unknown keys
        are dropped. The job's wait state is checked by reading it as a Waiter."""
        return cls.received(message, now)[0]

    @classmethod
    def received(cls, message: object, now: float) -> tuple[PollState, Waiter | None, str]:
        """:meth:`from_message`, with what checking it read, for the hop to use rather than read
        again: the job's Waiter with the message's policy (None for a policy by import path,
        which :func:`decide` reads) and the state as JSON (what the store keeps of the hop)."""
        if not isinstance(message, Mapping):
            raise UsageError(f"a poll message is a JSON object, not {type(message).__name__}")
        try:
            state = cls(**{k: v for k, v in message.items() if k in _NAMES})
        except TypeError as exc:  # a field missing
            raise UsageError(f"a poll message lacks a field ({exc})") from exc
        waiter = state._check(now)
        try:
            text = json.dumps(state.to_message())
        except (TypeError, ValueError, RecursionError) as exc:  # not JSON: not a message a broker carried
            raise UsageError(f"a poll message is not JSON ({type(exc).__name__})") from exc
        if len(text) > MAX_HOP_MESSAGE:
            raise UsageError(f"a poll message is {len(text):,} bytes, more than the {MAX_HOP_MESSAGE:,} a poll carries")
        return state, waiter, text

    def _check(self, now: float) -> Waiter | None:
        def whole(name: str, value: object) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_HOPS:
                raise UsageError(f"a poll message's {name} is a whole number 0-{MAX_HOPS}, not {value!r:.40}")

        def number(name: str, value: object) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UsageError(f"a poll message's {name} is a finite number, not {value!r:.40}")
            return float(value)

        if not isinstance(self.ref, str):
            raise UsageError(f"a poll message's ref is a string, not {type(self.ref).__name__}")
        whole("hop", self.hop)
        whole("polls", self.polls)
        if not isinstance(self.waiter, Mapping):
            raise UsageError(f"a poll message's waiter is an object, not {type(self.waiter).__name__}")
        if self.waiter.get("ref") != self.ref:  # its wait carried on under another job's name
            raise UsageError(f"a poll message's waiter is another job's ({self.waiter.get('ref')!r:.60}), not its own")
        whole("failed_in_a_row", self.waiter.get("failed_in_a_row"))
        start, timeout = number("start", self.waiter.get("start")), number("timeout", self.waiter.get("timeout"))
        if not 0 < timeout <= MAX_TIMEOUT or start + timeout > now + MAX_TIMEOUT + CLOCK_SKEW:  # a caller ahead
            raise UsageError(
                f"a poll message's deadline is more than {MAX_TIMEOUT:.0f} s away (track() allows that much)"
            )
        if not isinstance(self.policy, Mapping) or self.policy.get("kind") not in POLICY_KINDS:
            raise UsageError(f"a poll message's policy is one of {sorted(POLICY_KINDS)}, not {self.policy!r:.60}")
        policy: PollingPolicy | None = None
        if self.policy["kind"] != "import":  # an import path is read by decide(), which ends a wrong one typed
            try:
                policy = policy_from(self.policy)
                next_due(self.policy)
            except (TypeError, ValueError, KeyError) as exc:
                raise UsageError(f"a poll message's policy is not one: {type(exc).__name__}: {exc}") from exc
        try:  # the whole wait state reads, before anything is claimed (timed_out() reads it unguarded)
            waiter = Waiter.from_dict(self.waiter, policy=policy)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # a forged message, another version's
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"a poll message's wait state is corrupt ({type(exc).__name__}: {exc!s:.60})") from exc
        if self.on_done is not None and not isinstance(self.on_done, Mapping):
            raise UsageError(f"a poll message's on_done is a signature, not {type(self.on_done).__name__}")
        if self.booked is not None:
            number("booked", self.booked)
        if self.slot is not None:
            number("slot", self.slot)
        if self.rate is not None:
            number("rate", self.rate)
        return None if policy is None else waiter

    def next(self, **changes: Any) -> PollState:
        return attrs.evolve(self, hop=self.hop + 1, **changes)


_FIELDS: Final = attrs.fields(PollState)
_NAMES: Final = frozenset(field.name for field in _FIELDS)


@attrs.frozen
class Again:
    """Poll again in ``countdown`` seconds with ``state``."""

    state: PollState
    countdown: float


@attrs.frozen
class Done:
    """The job's wait ended: send the callback ``payload``."""

    payload: dict[str, Any]


def payload(ref: str, status: JobStatus | None, error: VideoJobsError | None, polls: int) -> dict[str, Any]:
    """What the user's ``on_done`` gets: one shape for every outcome (``outcome_dict``: the job's
    last status, or its keys with None, and ``exception``), plus ``polls``."""
    body = outcome_dict(ref, status if status is not None else error)  # type: ignore[arg-type]  # one is set
    if error is not None and error.ref is None:
        error.ref = ref  # an error about one job says which, as wait_all's do (a 404's, a timeout's said None)
    body["exception"] = None if error is None else error.to_dict()
    body["polls"] = polls
    return body


def decide(
    state: PollState, now: float, answer: JobStatus | VideoJobsError, waiter: Waiter | None = None
) -> Again | Done:
    """After one status call: the next poll, or the end. The Waiter decides, as in one process
    (policy, poll-after hint, failure backoff, Retry-After, failure budget, deadline); pure: no
    I/O, no clock of its own. A poll whose next one would come at or past the deadline ends now.
    ``waiter``: the state's, as :meth:`PollState.received` read it (this call uses it up); else
    read here."""
    polls = state.polls + 1
    try:
        try:
            if waiter is None:
                waiter = Waiter.from_dict(state.waiter, policy=policy_from(state.policy))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:  # UsageError is a ValueError: kept
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"the poll message's wait state is corrupt ({type(exc).__name__})") from exc
    except UsageError as exc:  # a policy by import path that this worker cannot load, a corrupt state
        exc.ref = state.ref
        return Done(payload(state.ref, None, exc, polls))
    if isinstance(answer, JobStatus):
        waiter.observe(answer, now)
        if answer.is_terminal:
            return Done(payload(state.ref, answer, None, polls))
    elif isinstance(answer, (*TRANSIENT, MalformedResponseError)):
        try:
            waiter.failed(answer)
        except VideoJobsError:  # the failure budget ran out: the wait ends with this error
            return Done(payload(state.ref, waiter.last, answer, polls))
    else:  # a permanent error (401, 404, a bad reference): nothing to wait for
        return Done(payload(state.ref, waiter.last, answer, polls))
    try:
        delay = waiter.next_sleep(now)
    except CallbackError as exc:  # the policy raised or returned no number of seconds
        return Done(payload(state.ref, waiter.last, exc, polls))
    if delay is None or now + delay >= waiter.deadline:
        return Done(payload(state.ref, waiter.last, waiter.timed_out(), polls))
    return Again(state.next(polls=polls, waiter=waiter.to_dict(), booked=None, slot=None, rate=None), delay)


def paced(state: PollState, wait: float, booked: float | None, slot: float | None, rate: float | None = None) -> Again:
    """The vendor's shared rate says wait: the same poll (a new hop, same wait state) after
    ``wait``, holding the slot it ``booked``, due at ``slot``, at ``rate`` (None: nothing booked)."""
    held = booked is not None
    return Again(state.next(booked=booked, slot=slot if held else None, rate=rate if held else None), wait)


def timed_out(state: PollState) -> Done:
    """The deadline passed before this poll could run."""
    waiter = Waiter.from_dict(state.waiter, policy=None)
    return Done(payload(state.ref, waiter.last, waiter.timed_out(), state.polls))
