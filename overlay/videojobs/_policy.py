"""Polling policies: small pure objects that say how long to wait before the next poll.

``policy.next_delay(history)`` gets a :class:`History` of the wait (a bounded summary: the
latest answer, when the run began, recent progress samples) and returns seconds. The wait
loop sleeps ``max(delay, Retry-After, the vendor's poll-after hint)``, never past its deadline.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, Final, Protocol, runtime_checkable

import attrs

from ._base import check_seconds
from ._status import JobStatus, State

__all__ = ["AdaptivePolicy", "FixedPolicy", "History", "PollingPolicy"]

MAX_SAMPLES: Final = 64
"""Progress samples a History keeps: at the densest polling (every few seconds) that is minutes,
more than any policy's window; a day-long wait costs the same memory as a minute-long one."""


class History:
    """What a policy sees of one wait, in constant memory (O(1) per poll).

    ``elapsed`` and every time here are seconds since the wait started.
    """

    __slots__ = ("elapsed", "first_running", "last", "last_queued", "polls", "samples")

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.polls = 0
        self.last: JobStatus | None = None
        self.last_queued: float | None = None
        self.first_running: float | None = None
        self.samples: deque[tuple[float, float]] | tuple[()] = ()
        """``(time, progress)`` of the latest running answers that had progress, oldest first (a
        deque of at most MAX_SAMPLES from the first: 760 bytes a job a vendor that reports no
        progress never needs, 76 MB of a 100,000-job wait)."""

    def record(self, elapsed: float, status: JobStatus) -> None:
        self.elapsed = elapsed
        self.polls += 1
        self.last = status
        if status.state is State.QUEUED:
            if self.first_running is None:
                self.last_queued = elapsed
        elif status.state is State.RUNNING:
            if self.first_running is None:
                self.first_running = elapsed
            if status.progress is not None:
                self._samples().append((elapsed, status.progress))

    def _samples(self) -> deque[tuple[float, float]]:
        samples = self.samples
        if not isinstance(samples, deque):
            samples = self.samples = deque(maxlen=MAX_SAMPLES)
        return samples

    @classmethod
    def of(cls, answers: list[tuple[float, JobStatus]]) -> History:
        """A History of ``(elapsed, status)`` answers, oldest first (for tests and simulations)."""
        history = cls()
        for elapsed, status in answers:
            history.record(elapsed, status)
        return history

    @property
    def run_start(self) -> float:
        """When the run began: midway between the last queued poll and the first running one."""
        if self.first_running is None:
            return self.elapsed
        if self.last_queued is None:
            return self.first_running
        return (self.last_queued + self.first_running) / 2

    def recent_rate(self, window: float) -> float | None:
        """Progress per second from the oldest sample within ``window`` seconds to the latest (None if flat)."""
        if not self.samples:
            return None
        now, progress = self.samples[-1]
        for t, p in self.samples:
            if t < now and now - t <= window:
                return (progress - p) / (now - t) if progress > p else None
        return None

    def to_dict(self, samples: int = 16) -> dict[str, Any]:
        """A compact, JSON-ready summary (a task message carries it between polls): the latest
        answer's state and progress, the run's start and at most ``samples`` progress samples."""
        last = self.last
        return {
            "elapsed": round(self.elapsed, 3),
            "polls": self.polls,
            "last": None if last is None else [last.vendor, last.task_id, last.state.value, last.progress],
            "last_queued": self.last_queued,
            "first_running": self.first_running,
            "samples": [[round(t, 3), p] for t, p in list(self.samples)[-samples:]],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """The History :meth:`to_dict` summarized (what a policy reads of it is all there)."""
        history = cls()
        history.elapsed = float(data["elapsed"])
        history.polls = int(data["polls"])
        if data.get("last") is not None:
            vendor, task_id, state, progress = data["last"]
            history.last = JobStatus(vendor=vendor, task_id=task_id, state=State(state), progress=progress)
        history.last_queued = data.get("last_queued")
        history.first_running = data.get("first_running")
        if data.get("samples"):
            history._samples().extend((float(t), float(p)) for t, p in data["samples"])
        return history

    def __repr__(self) -> str:
        return f"<History polls={self.polls} elapsed={self.elapsed:.1f}s last={self.last!r}>"


@runtime_checkable
class PollingPolicy(Protocol):
    def next_delay(self, history: History) -> float:
        """Seconds to wait before the next poll."""
        ...


QUEUED_SHARE: Final = 0.8
"""A queued job cannot finish within min_run of leaving the queue: poll at 80 % of that, so the
first running answer comes before the earliest possible end (tuned in the policy simulation)."""

NEAR_DONE: Final = 0.99
"""Progress at which vendors park a job until the file is written (the sandbox's population and
the pages' 99 % examples): from here the end cannot be predicted, so poll at near_delay."""


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    """A positive, finite real number (seconds, or a ratio): a :class:`UsageError` naming the field
    (``FixedPolicy("5")`` was a bare TypeError, and ``FixedPolicy(inf)`` failed after a poll)."""
    check_seconds(f"{type(instance).__name__}.{attribute.name}", value, "positive and finite")


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
        status = history.last
        if status is None:
            return self.min_delay
        now = history.elapsed
        if status.state is State.QUEUED:
            delay = self.min_run * QUEUED_SHARE
        elif status.progress is None or status.state is not State.RUNNING:
            delay = self.growth * max(now, self.min_delay)
        else:
            delay = self._with_progress(history, now, status.progress)
        return min(self.max_delay, max(self.min_delay, delay))

    def _with_progress(self, history: History, now: float, progress: float) -> float:
        if progress >= NEAR_DONE:
            return self.near_delay  # sitting at 99 %: the end is near but cannot be dated
        start = history.run_start
        rate = history.recent_rate(self.window)
        if rate is None and now > start and progress > 0:
            rate = progress / (now - start)
        if not rate:
            ran = now - start
            if ran < self.min_run:  # no rate yet: the run is at least min_run long, and we have seen part of it
                return max(self.near_delay, (self.min_run - ran) * QUEUED_SHARE)
            # progress that does not move (a vendor that says 0 % until the end, a stalled job)
            # dates nothing: as a job without progress (it polled every near_delay, for ever)
            return self.growth * max(now, self.min_delay)
        remaining = (1.0 - progress) / rate
        if remaining <= 2 * self.near_delay:
            return self.near_delay
        # early in a run the rate says little (progress starts slowly): never wait longer
        # than run_share of the time it has run, so a short job cannot be overshot by much
        ran = max(now - start, self.near_delay)
        return max(self.near_delay, min(self.lead * remaining, self.run_share * ran))
