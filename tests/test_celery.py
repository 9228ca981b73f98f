"""videojobs.celery with real parts: a redis-server, ``celery worker`` processes and the sandbox
under uvicorn, all started and stopped here. Every job's callback must come exactly once, with
the right final state, through a killed worker and a Redis restart; two workers together keep
to a throttling vendor's limit.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("celery")
redis = pytest.importorskip("redis")

from tests.redis_server import RedisServer, environment  # noqa: E402
from tests.servers import serve  # noqa: E402
from videojobs import known_vendors  # noqa: E402
from videojobs._policy import AdaptivePolicy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCALE = 100.0  # a 100-second job plays in one second
POLICY = AdaptivePolicy().scaled(SCALE)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def app(redis_server: RedisServer) -> Any:
    """The test app as a producer (the workers import the same module with the same settings)."""
    redis.Redis.from_url(redis_server.url).flushall()
    os.environ["VIDEOJOBS_TEST_REDIS"] = redis_server.url
    module = importlib.import_module("tests.celery_app")
    if redis_server.url != module.REDIS:  # imported earlier with another server: read the setting again
        module = importlib.reload(module)
    return module


class Workers:
    """``celery worker`` processes, each in its own process group (so kill -9 takes its children too)."""

    def __init__(self, env: dict[str, str], count: int, concurrency: int = 2) -> None:
        self.env, self.concurrency = env, concurrency
        self.procs = [self._start(i) for i in range(count)]

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-P", "prefork",
                "-c", str(self.concurrency), "-n", f"w{index}-{os.getpid()}@%h", "-Q", "videojobs-test",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]  # fmt: skip
        return subprocess.Popen(args, cwd=ROOT, env=self.env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def kill(self, index: int) -> None:
        os.killpg(self.procs[index].pid, signal.SIGKILL)
        self.procs[index].wait()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _expected(ref: str) -> tuple[str | None, str | None]:
    """(final state, exception type) that a job id spells out in the sandbox's language."""
    task = ref.partition(":")[2]
    if "-e404" in task:
        return None, "NotFoundError"
    if "-fail" in task:
        return "failed", None
    if "-cancel" in task:  # only Colossyan has a word for it ("deleted"); the others report a failure
        return ("canceled" if ref.startswith("colossyan:") else "failed"), None
    return "succeeded", None


def _mixed(count: int, prefix: str) -> list[str]:
    vendors = known_vendors()
    refs = []
    for i in range(count):
        outcome = ["", "-fail", "-cancel", "", "-e502x2", "", "-e404", ""][i % 8]
        refs.append(f"{vendors[i % len(vendors)]}:{prefix}{i}-q{i % 3}-d{30 + i % 50}{outcome}")
    return refs


def _wait_for_callbacks(r: Any, refs: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if r.hlen("test:final") >= len(refs):
            break
        time.sleep(0.25)
    time.sleep(2.0)  # a doubled callback would arrive about now
    return {k.decode(): json.loads(v) for k, v in r.hgetall("test:final").items()}


def _check_exactly_once(r: Any, refs: list[str], finals: dict[str, dict[str, Any]]) -> None:
    missing = sorted(set(refs) - set(finals))
    assert not missing, f"{len(missing)} jobs got no callback, e.g. {missing[:5]}"
    sends = {ref: r.scard(f"test:sends:{ref}") for ref in refs}
    doubled = {ref: n for ref, n in sends.items() if n != 1}
    assert not doubled, f"callbacks sent more than once: {list(doubled.items())[:5]}"
    wrong = {}
    for ref in refs:
        state, exception = _expected(ref)
        got = finals[ref]
        if got["exception"] != exception or (exception is None and got["state"] != state):
            wrong[ref] = got
    assert not wrong, f"wrong final states: {list(wrong.items())[:5]}"


def _track_all(app: Any, refs: list[str], timeout: float = 600) -> None:
    from videojobs.celery import track

    for ref in refs:
        track(ref, on_done=app.record.s(), timeout=timeout, policy=POLICY, app=app.app)


def test_every_job_called_back_exactly_once_across_two_workers(app: Any, redis_server: RedisServer) -> None:
    refs = _mixed(2000, "m")
    with serve(time_scale=SCALE) as (_sb, root):
        workers = Workers(environment(redis_server.url, root, SCALE), count=2)
        try:
            _track_all(app, refs)
            finals = _wait_for_callbacks(redis.Redis.from_url(redis_server.url), refs, timeout=240)
        finally:
            workers.stop()
    _check_exactly_once(redis.Redis.from_url(redis_server.url), refs, finals)


def _interrupted(app: Any, redis_server: RedisServer, refs: list[str], share: float, interrupt: Any) -> None:
    """Run ``refs`` on two workers; ``interrupt(workers)`` once ``share`` of them have called back."""
    r = redis.Redis.from_url(redis_server.url)
    with serve(time_scale=SCALE) as (_sb, root):
        workers = Workers(environment(redis_server.url, root, SCALE), count=2)
        try:
            _track_all(app, refs)
            deadline = time.monotonic() + 60
            while r.hlen("test:final") < len(refs) * share and time.monotonic() < deadline:
                time.sleep(0.1)
            assert r.hlen("test:final") < len(refs), "the run ended before the interruption: make it longer"
            interrupt(workers)
            finals = _wait_for_callbacks(redis.Redis.from_url(redis_server.url), refs, timeout=240)
        finally:
            workers.stop()
    _check_exactly_once(redis.Redis.from_url(redis_server.url), refs, finals)


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(app: Any, redis_server: RedisServer) -> None:
    # kill -9, children and all, in the middle of the run
    _interrupted(app, redis_server, _mixed(600, "k"), 0.25, lambda workers: workers.kill(0))


def test_two_workers_keep_to_a_throttling_vendors_limit(app: Any, redis_server: RedisServer) -> None:
    from videojobs import FixedPolicy
    from videojobs.celery import track

    refs = [f"duomi:t{i}-q0-d1500" for i in range(60)]  # 15 s each, polled far faster than 10/s allows
    r = redis.Redis.from_url(redis_server.url)
    with serve(time_scale=SCALE, rate_limits={"duomi": 10.0}) as (sb, root):
        workers = Workers(environment(redis_server.url, root, SCALE), count=2)
        try:
            for ref in refs:
                track(ref, on_done=app.record.s(), timeout=600, policy=FixedPolicy(0.05), app=app.app)
            finals = _wait_for_callbacks(r, refs, timeout=240)
        finally:
            workers.stop()
        served, throttled = sum(j.polls for j in sb.jobs.values()), sb.throttled["duomi"]
    _check_exactly_once(r, refs, finals)
    assert throttled / (served + throttled) <= 0.05, (served, throttled)
    assert r.hget("videojobs:rate:duomi", "rate") is not None  # the shared rate was set


def test_a_redis_restart_mid_run_is_ridden_out(app: Any, redis_server: RedisServer) -> None:
    # SIGTERM, then the same port and append-only file
    _interrupted(app, redis_server, _mixed(300, "r"), 0.2, lambda workers: redis_server.restart())
