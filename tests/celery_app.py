"""The Celery app the tests' workers run (``celery -A tests.celery_app worker``): a user's app,
with videojobs installed and a callback that records each delivery in Redis."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from celery import Celery

import videojobs
from videojobs.celery import install

REDIS = os.environ.get("VIDEOJOBS_TEST_REDIS", "redis://127.0.0.1:6379/0")
SANDBOX = os.environ.get("VIDEOJOBS_TEST_SANDBOX", "http://127.0.0.1:8710")

app = Celery("videojobs_test", broker=REDIS)
app.conf.update(
    # a killed worker's messages come back after 5 s; kombu looks for them every second (default
    # 100 s). Above everything a message may be held for: a retried callback's longest backoff
    # (0.25 x 2^2 x 1.5 = 1.5 s) and then its hard time limit (3 s), which install() checks
    # together, and a poll's countdown (0.6 s at most at the tests' scale; 1 then 2 s after a
    # job's two 502s). The lock over the restore (a killed worker may hold it) lasts 4 s.
    # (make bench's fleet runs with Celery's own default for Redis, an hour: VIDEOJOBS_TEST_VISIBILITY)
    broker_transport_options={
        "visibility_timeout": float(os.environ.get("VIDEOJOBS_TEST_VISIBILITY", "5")),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 4,
    },
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,  # ride out a Redis restart
    worker_prefetch_multiplier=4,
    task_default_queue="videojobs-test",
    worker_hijack_root_logger=False,
)


def client() -> videojobs.Client:
    from videojobs.sandbox import Sandbox

    sandbox = Sandbox()
    return videojobs.Client(
        api_keys=sandbox.api_keys(),
        base_urls=sandbox.base_urls(SANDBOX),
        max_retries=0,
        adaptive=False,
        request_timeout=2,
    )  # the sandbox is on loopback: it answers in milliseconds


# The callbacks' retries and time limits: "retries,backoff,soft,hard" (the attacks set short ones).
# By default long enough for a callback to ride out a Redis restart (its own client retries; the
# tests' Redis is back within a fraction of a second), and below the visibility timeout (5 s).
CALLBACKS = [float(x) for x in os.environ.get("VIDEOJOBS_TEST_CALLBACKS", "3,0.25,2,3").split(",")]

install(
    app,
    client_factory=client,
    sweep_grace=5.0,  # above a poll's longest run (its 2 s timeout) and a callback's (3 s hard limit)
    callback_retries=int(CALLBACKS[0]),
    callback_backoff=CALLBACKS[1],
    callback_soft_time_limit=CALLBACKS[2],
    callback_time_limit=CALLBACKS[3],
)


def _redis() -> Any:
    """A client that rides out a Redis restart, as a user's callback should."""
    from videojobs.celery._store import connect

    return connect(REDIS)


@app.task(name="tests.record", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def record(self: Any, result: dict[str, Any]) -> None:
    """Counts the runs of each job's callback (``test:runs:<ref>``) and notes its final state."""
    run = uuid.uuid4().hex  # a run, not a command: a write the client repeats after a lost answer counts once
    r = _redis()
    ref = result["ref"]
    r.sadd(f"test:sends:{ref}", self.request.id)
    exception = result.get("exception")
    r.hset("test:final", ref, json.dumps({"state": result.get("state"), "exception": exception and exception["type"]}))
    r.sadd(f"test:runs:{ref}", run)  # last: a run cut short before this is not counted


@app.task(name="tests.explode", bind=True, ignore_result=True)
def explode(self: Any, result: dict[str, Any]) -> None:
    """A callback that always raises, with control characters and a long message."""
    _redis().sadd(f"test:runs:{result['ref']}", uuid.uuid4().hex)
    raise RuntimeError("callback exploded \x1b]0;pwned\x07" + "x" * 5000)


@app.task(name="tests.hang", bind=True, ignore_result=True)
def hang(self: Any, result: dict[str, Any]) -> None:
    """A callback that never returns, and swallows its soft time limit: only the hard one ends it."""
    import time

    from celery.exceptions import SoftTimeLimitExceeded

    _redis().sadd(f"test:runs:{result['ref']}", uuid.uuid4().hex)
    while True:
        try:
            time.sleep(3600)
        except SoftTimeLimitExceeded:
            continue
