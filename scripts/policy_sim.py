"""Polling policies measured by simulation, on the sandbox's own job population.

No clock and no I/O: each job is polled at the times the policy asks for and its status
read from its script, so a run over thousands of jobs takes well under a second and
always gives the same figures.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

import attrs

from videojobs._policy import History, PollingPolicy
from videojobs._status import JobStatus, State
from videojobs.sandbox._jobs import Script, random_script, snapshot

__all__ = ["PolicyFigures", "population", "simulate"]

_STATES = {
    "queued": State.QUEUED,
    "running": State.RUNNING,
    "succeeded": State.SUCCEEDED,
    "failed": State.FAILED,
    "canceled": State.CANCELED,
}


@attrs.frozen(kw_only=True)
class PolicyFigures:
    jobs: int
    requests_per_job: float
    p95_lag: float  # seconds from the job's end to the poll that saw it
    p95_lag_share: float  # the same as a share of the job's length (creation to end)
    mean_lag: float


def population(n: int, seed: int = 2026) -> list[Script]:
    rng = random.Random(seed)
    return [random_script(rng) for _ in range(n)]


def _p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def simulate(policy: PollingPolicy, scripts: Sequence[Script], *, progress: bool = True) -> PolicyFigures:
    """Poll every job from its creation until a poll sees it end."""
    requests = 0
    lags: list[float] = []
    shares: list[float] = []
    for script in scripts:
        t = 0.0
        history = History()
        while True:
            snap = snapshot(script, t)
            requests += 1
            state = _STATES[snap.phase]
            status = JobStatus(
                vendor="sim",
                task_id="job",
                state=state,
                progress=(snap.progress if progress else None) if state is not State.SUCCEEDED else 1.0,
            )
            history.record(t, status)
            if state.is_terminal:
                lag = t - script.total
                lags.append(lag)
                shares.append(lag / script.total)
                break
            t += policy.next_delay(history)
    return PolicyFigures(
        jobs=len(scripts),
        requests_per_job=requests / len(scripts),
        p95_lag=_p95(lags),
        p95_lag_share=_p95(shares),
        mean_lag=statistics.fmean(lags),
    )
