"""The Celery app the tests' workers run (``celery -A tests.celery_app worker``): a user's app,
with videojobs installed and a callback that records each delivery in Redis."""

from __future__ import annotations

import json
import os
from typing import Any

from celery import Celery

import videojobs
from videojobs.celery import install

REDIS = os.environ.get("VIDEOJOBS_TEST_REDIS", "redis://127.0.0.1:6379/0")
SANDBOX = os.environ.get("VIDEOJOBS_TEST_SANDBOX", "http://127.0.0.1:8710")

app = Celery("videojobs_test", broker=REDIS)
app.conf.update(
    # a killed worker's messages come back after 8 s; kombu looks for them every 2 s (default 100 s)
    broker_transport_options={
        "visibility_timeout": 8,
        "unacked_restore_interval": 2,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 10,
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
        api_keys=sandbox.api_keys(), base_urls=sandbox.base_urls(SANDBOX), max_retries=0, adaptive=False, timeout=4
    )


install(app, client_factory=client, sweep_grace=10.0)  # a poll takes at most 4 s here (its timeout)


@app.task(name="tests.record", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def record(self: Any, result: dict[str, Any]) -> None:
    """Each send of a job's callback is a task of its own id: the set counts sends, not runs."""
    import redis

    r = redis.Redis.from_url(REDIS)
    ref = result["ref"]
    r.sadd(f"test:sends:{ref}", self.request.id)
    exception = result.get("exception")
    r.hset("test:final", ref, json.dumps({"state": result.get("state"), "exception": exception and exception["type"]}))
