"""The Celery app ``make bench`` section 9 runs (``celery -A scripts.celery_bench_app worker``):
the tests' app (``tests/celery_app.py``: a user's app with videojobs installed, the same worker
settings and client) plus the task a user would write by hand instead of ``videojobs.celery``:
``status()``, then ``apply_async(countdown=...)`` of itself, ``acks_late``. No claims, no shared
rate, no sweeper: what it costs is the floor the fleet is measured against."""

from __future__ import annotations

import os
import time
from typing import Any

import videojobs
from tests.celery_app import app, client

__all__ = ["app", "handwritten"]

HANDWRITTEN_TASK = "bench.handwritten"
FAILED_COUNTDOWN = 1.0  # a failed poll tries again after a second

_clients: dict[int, videojobs.Client] = {}


@app.task(name=HANDWRITTEN_TASK, bind=True, acks_late=True, ignore_result=True)
def handwritten(self: Any, ref: str, deadline: float, every: float) -> str:
    pid = os.getpid()  # prefork: a client per child process
    if pid not in _clients:
        _clients.clear()
        _clients[pid] = client()
    try:
        status = _clients[pid].status(ref)
    except videojobs.VideoJobsError:
        countdown = FAILED_COUNTDOWN
    else:
        if status.is_terminal:
            return "done"
        countdown = every
    if time.time() + countdown >= deadline:
        return "timed out"
    self.apply_async((ref, deadline, every), countdown=countdown)
    return "again"
