"""``make bench`` section 9: videojobs.celery's polls per second with 1 and 2 worker processes
against the sandbox, and what each poll costs the broker (Redis commands and CPU).

Real parts: a redis-server (the tests' helper), ``celery worker`` processes running the tests'
app (``tests/celery_app.py``: a user's app with videojobs installed) and the sandbox under
uvicorn in its own process. Jobs that never end are polled back to back (FixedPolicy(0.01))
for a fixed window; polls per second is what the sandbox answered in that window.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _redis_stats(client: Any) -> tuple[int, float]:
    stats = client.info("commandstats")
    calls = sum(int(v["calls"]) for v in stats.values())
    cpu = client.info("cpu")
    return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def run(server_cls: Any, key: str, jobs: int, window: float, processes: list[int]) -> list[dict[str, Any]]:
    import importlib

    import httpx
    import redis

    from tests.redis_server import RedisServer, environment

    rows = []
    folder = Path(tempfile.mkdtemp(prefix="videojobs-bench-redis-"))
    store = RedisServer(folder).start()
    try:
        os.environ["VIDEOJOBS_TEST_REDIS"] = store.url
        app_module = importlib.import_module("tests.celery_app")
        app_module = importlib.reload(app_module)
        from videojobs import FixedPolicy
        from videojobs.celery import track

        r = redis.Redis.from_url(store.url)
        for count in processes:
            r.flushall()
            server = server_cls(time_scale=1.0)
            env = environment(store.url, server.root, 1.0)
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-P", "prefork", "-c", str(count),
                 "-Q", "videojobs-test", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "ERROR"],
                cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                for i in range(jobs):  # 11 days long: polled for the whole window
                    track(f"vozo:cb{count}-{i}-q0-d1000000", timeout=3600, policy=FixedPolicy(0.01), app=app_module.app)
                time.sleep(3.0)  # the worker starts and warms up
                before = httpx.get(f"{server.root}/sandbox/health").json()["served"]["vozo"]
                calls0, cpu0 = _redis_stats(r)
                time.sleep(window)
                after = httpx.get(f"{server.root}/sandbox/health").json()["served"]["vozo"]
                calls1, cpu1 = _redis_stats(r)
            finally:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()
                server.close()
            polls = after - before
            rows.append({
                "processes": count,
                "polls_per_s": polls / window,
                "redis_commands_per_poll": (calls1 - calls0) / max(1, polls),
                "redis_cpu_us_per_poll": (cpu1 - cpu0) / max(1, polls) * 1e6,
                "redis_memory_mib": float(r.info("memory")["used_memory"]) / 2**20,
                "jobs": jobs,
            })  # fmt: skip
    finally:
        store.stop()
    del key
    return rows
