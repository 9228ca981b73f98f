"""Polling policies: small pure objects that say how long to wait before the next poll.

``policy.next_delay(history)`` gets the wait's history, ``(seconds since the wait started,
JobStatus)`` pairs, newest last, and returns seconds. The wait loop sleeps
``max(delay, Retry-After, the vendor's poll-after hint)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from ._status import JobStatus, State

__all__ = ["AdaptivePolicy", "FixedPolicy", "History", "PollingPolicy"]

History = Sequence[tuple[float, JobStatus]]


@runtime_checkable
class PollingPolicy(Protocol):
    def next_delay(self, history: History) -> float:
        """Seconds to wait before the next poll."""
        ...


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


@attrs.frozen
class FixedPolicy:
    """Poll every ``seconds`` (what the vendors' pages advise, with 3-5 s)."""

    seconds: float = attrs.field(validator=_positive)

    def next_delay(self, history: History) -> float:
        return self.seconds


@attrs.frozen(kw_only=True)
class AdaptivePolicy:
    """The default: predict the end, poll sparsely far from it and densely near it.

    - Queued: a job runs for at least ``min_run`` seconds once it leaves the queue, so
      nothing can finish within that time: poll about that often.
    - Running with progress: the progress rate over the last ``window`` seconds (or since
      the run began) predicts the end; wait ``lead`` of the predicted remaining time, but
      never more than ``run_share`` of the time the job has run (progress starts slowly, so
      early predictions run long), and ``near_delay`` once the end is near or progress
      sits at 99 %.
    - Running without progress (Vozo): wait ``growth`` times the time waited so far, so the
      detection lag stays a bounded share of the job's length.

    Every delay is clamped to ``[min_delay, max_delay]``.
    """

    min_delay: float = attrs.field(default=1.0, validator=_positive)
    max_delay: float = attrs.field(default=60.0, validator=_positive)
    near_delay: float = attrs.field(default=3.5, validator=_positive)
    min_run: float = attrs.field(default=10.0, validator=_positive)
    lead: float = attrs.field(default=0.7, validator=_positive)
    growth: float = attrs.field(default=0.22, validator=_positive)
    window: float = attrs.field(default=20.0, validator=_positive)
    run_share: float = attrs.field(default=1.5, validator=_positive)

    def scaled(self, factor: float) -> AdaptivePolicy:
        """The same policy for jobs that run ``factor`` times faster (the sandbox's time scale)."""
        return attrs.evolve(
            self,
            min_delay=self.min_delay / factor,
            max_delay=self.max_delay / factor,
            near_delay=self.near_delay / factor,
            min_run=self.min_run / factor,
            window=self.window / factor,
        )

    def next_delay(self, history: History) -> float:
        if not history:
            return self.min_delay
        now, status = history[-1]
        if status.state is State.QUEUED:
            delay = self.min_run * 0.8
        elif status.progress is None or status.state is not State.RUNNING:
            delay = self.growth * max(now, self.min_delay)
        else:
            delay = self._with_progress(history, now, status.progress)
        return min(self.max_delay, max(self.min_delay, delay))

    def _with_progress(self, history: History, now: float, progress: float) -> float:
        if progress >= 0.99:
            return self.near_delay  # sitting at 99 %: the end is near but cannot be dated
        start = _run_start(history)
        rate = _recent_rate(history, now, progress, self.window)
        if rate is None and now > start and progress > 0:
            rate = progress / (now - start)
        if not rate:
            # no rate yet: the run is at least min_run long, and we have seen part of it
            return max(self.near_delay, (self.min_run - (now - start)) * 0.8)
        remaining = (1.0 - progress) / rate
        if remaining <= 2 * self.near_delay:
            return self.near_delay
        # early in a run the rate says little (progress starts slowly): never wait longer
        # than run_share of the time it has run, so a short job cannot be overshot by much
        ran = max(now - start, self.near_delay)
        return max(self.near_delay, min(self.lead * remaining, self.run_share * ran))


def _recent_rate(history: History, now: float, progress: float, window: float) -> float | None:
    """Progress per second between the oldest poll within ``window`` and now (None if flat or too few)."""
    for t, s in history:
        if s.state is State.RUNNING and s.progress is not None and t < now and now - t <= window:
            return (progress - s.progress) / (now - t) if progress > s.progress else None
    return None


def _run_start(history: History) -> float:
    """When the run began: midway between the last queued poll and the first running one."""
    last_queued = None
    for t, s in history:
        if s.state is State.QUEUED:
            last_queued = t
        elif s.state is State.RUNNING:
            return t if last_queued is None else (last_queued + t) / 2
    return history[-1][0]
