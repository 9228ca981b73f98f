"""One poll per task message: the state a message carries, and what a worker does with it.

A message is small and bounded (a few hundred bytes): the job, its deadline, the hop number,
the failures in a row, the policy, the user's callback and a compact :class:`History`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any, Final

import attrs

from .._exceptions import (
    TRANSIENT,
    MalformedResponseError,
    RateLimitError,
    UsageError,
    VideoJobsError,
)
from .._policy import AdaptivePolicy, FixedPolicy, History, PollingPolicy
from .._status import JobStatus, WaitTimeout, outcome_dict
from .._wait import DEFAULT_MAX_FAILED_POLLS, FAILED_POLL_BACKOFF, FAILED_POLL_BACKOFF_CAP

__all__ = ["Again", "Done", "PollState", "decide", "paced", "payload", "policy_from", "policy_spec", "timed_out"]

PACING_JITTER: Final = 0.5
"""A poll paced by the shared rate waits up to 50 % longer than asked, so the many polls that
were told the same moment do not all arrive at it."""


def policy_spec(policy: PollingPolicy | str | None) -> dict[str, Any]:
    """A policy as message data: the two built-ins by their fields, any other by import path."""
    if policy is None:
        return {"kind": "adaptive"}
    if isinstance(policy, AdaptivePolicy):
        return {"kind": "adaptive", **attrs.asdict(policy)}
    if isinstance(policy, FixedPolicy):
        return {"kind": "fixed", "seconds": policy.seconds}
    if isinstance(policy, str) and ":" in policy:
        return {"kind": "import", "path": policy}
    raise UsageError(
        "a tracked job's policy travels in its task message: AdaptivePolicy, FixedPolicy, or the "
        f"import path of a policy object ('package.module:name'), not {type(policy).__name__}"
    )


def policy_from(spec: Mapping[str, Any]) -> PollingPolicy:
    fields = {k: v for k, v in spec.items() if k != "kind"}
    if spec["kind"] == "fixed":
        return FixedPolicy(**fields)
    if spec["kind"] == "import":
        import importlib

        module, _, name = str(fields["path"]).partition(":")
        policy: PollingPolicy = getattr(importlib.import_module(module), name)
        return policy
    return AdaptivePolicy(**fields)


@attrs.frozen(kw_only=True)
class PollState:
    """What one poll message carries (``to_message`` / ``from_message``: plain JSON)."""

    ref: str
    started: float  # Unix seconds when tracking began
    deadline: float  # Unix seconds
    hop: int = 0
    failed: int = 0  # polls in a row that failed
    max_failed: int = DEFAULT_MAX_FAILED_POLLS
    policy: dict[str, Any] = attrs.field(factory=lambda: {"kind": "adaptive"})
    on_done: dict[str, Any] | None = None  # the callback's signature, as Celery serializes it
    history: dict[str, Any] | None = None

    def to_message(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> PollState:
        known = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in message.items() if k in known})

    def next(self, **changes: Any) -> PollState:
        return attrs.evolve(self, hop=self.hop + 1, **changes)


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
    body["exception"] = None if error is None else error.to_dict()
    body["polls"] = polls
    return body


def decide(state: PollState, now: float, answer: JobStatus | VideoJobsError) -> Again | Done:
    """After one status call: the next poll, or the end. Pure: no I/O, no clock of its own."""
    history = History.from_dict(state.history) if state.history else History()
    polls = history.polls + 1
    if isinstance(answer, JobStatus):
        history.record(now - state.started, answer)
        if answer.is_terminal:
            return Done(payload(state.ref, answer, None, polls))
        delay = float(policy_from(state.policy).next_delay(history))
        delay = max(delay, answer.poll_after or 0.0)
        failed = 0
    elif isinstance(answer, (*TRANSIENT, MalformedResponseError)):
        failed = state.failed + 1
        if failed >= state.max_failed:
            return Done(payload(state.ref, _last(history), answer, polls))
        backoff = min(FAILED_POLL_BACKOFF_CAP, FAILED_POLL_BACKOFF * 2.0 ** (failed - 1))
        retry_after = answer.retry_after if isinstance(answer, RateLimitError) else None
        # as in one process (Waiter): never sooner than the policy, the backoff or Retry-After
        delay = max(float(policy_from(state.policy).next_delay(history)), backoff, retry_after or 0.0)
        history.polls += 1
    else:  # a permanent error (401, 404, a bad reference): nothing to wait for
        return Done(payload(state.ref, _last(history), answer, polls))
    if now + delay >= state.deadline:
        timeout = WaitTimeout(
            f"task {state.ref.partition(':')[2]} did not finish within {state.deadline - state.started:g} s",
            last_status=_last(history),
            vendor=state.ref.partition(":")[0],
        )
        return Done(payload(state.ref, _last(history), timeout, polls))
    return Again(state.next(failed=failed, history=history.to_dict()), delay)


def paced(state: PollState, wait: float, rng: random.Random) -> Again:
    """The vendor's shared rate has no token now: the same poll later (a new hop, same history)."""
    return Again(state.next(), wait * (1.0 + PACING_JITTER * rng.random()))


def timed_out(state: PollState) -> Done:
    """The deadline passed before this poll could run."""
    history = History.from_dict(state.history) if state.history else History()
    error = WaitTimeout(
        f"task {state.ref.partition(':')[2]} did not finish within {state.deadline - state.started:g} s",
        last_status=history.last,
        vendor=state.ref.partition(":")[0],
    )
    return Done(payload(state.ref, history.last, error, history.polls))


def _last(history: History) -> JobStatus | None:
    return history.last


def now() -> float:
    return time.time()
