"""Attacks on videojobs.celery's callbacks (surface ``callbacks``), on real parts: a redis-server,
``celery worker`` processes (the tests' app, ``tests/celery_app.py``) and the sandbox under uvicorn.

``run(name)`` starts its own parts, attacks and stops them (``scripts/attacks.py`` runs each in a
fresh process); ``tests/test_celery_callbacks.py`` runs the same scenarios on one shared
:class:`Rig`. Each returns ``{"outcome", "typed", "safe"}`` plus the figures it measured.

Safe means: the attack ends in bounded retries and bounded time, in a typed error or a record
(:class:`videojobs.celery.FailedCallback`), other jobs' callbacks are unaffected (each called
exactly once), and every key the integration wrote has a TTL.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCALE = 100.0  # a 100-second job plays in one second
QUEUE = "videojobs-test"  # the test app's queue (task_default_queue)
ATTACK_CALLBACKS = "2,0.1,0.5,1.0"
"""The rig's callbacks: 2 retries (3 attempts), 0.1 s backoff, soft limit 0.5 s, hard limit 1 s."""

ATTACKS: dict[str, float] = {
    "callback_raises": 10.0,
    "callback_hangs": 15.0,
    "double_track": 10.0,
    "track_redis_down": 5.0,
    "track_redis_silent": 8.0,
    "track_broker_down": 5.0,
    "poisoned_deliver_ttl": 10.0,
    "track_redis_refuses": 5.0,
}


class Workers:
    """``celery worker`` processes, each in its own process group (so kill -9 takes its children
    too), logging to ``folder/w<i>.log``. Nothing restarts one that dies."""

    def __init__(self, env: dict[str, str], folder: Path, count: int, concurrency: int = 2) -> None:
        self.env, self.folder, self.concurrency = env, folder, concurrency
        self.names: list[str] = []
        self.procs = [self._start(i) for i in range(count)]

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        self.names.append(f"w{index}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        args = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-P", "prefork",
                "-c", str(self.concurrency), "-n", f"{self.names[-1]}@%h",
                "-Q", QUEUE, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]  # fmt: skip
        with open(self.folder / f"w{index}.log", "ab") as log:
            return subprocess.Popen(args, cwd=ROOT, env=self.env, start_new_session=True,
                                    stdout=log, stderr=subprocess.STDOUT)  # fmt: skip

    def wait_ready(self, app: Any, limit: float = 60.0) -> bool:
        """Whether every worker answered a ping (Celery's remote control) within ``limit`` seconds:
        started, connected to the broker, consuming."""
        import socket

        waiting = {f"{name}@{socket.gethostname()}" for name in self.names}
        deadline = time.monotonic() + limit
        while waiting and time.monotonic() < deadline:
            for reply in app.control.ping(destination=sorted(waiting), timeout=0.5):
                waiting -= set(reply)
        return not waiting

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("w*.log")))

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.procs)

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


def app_module(redis_url: str, callbacks: str | None = None) -> ModuleType:
    """``tests.celery_app`` as a producer, set for ``redis_url`` (the workers import it the same way)."""
    os.environ["VIDEOJOBS_TEST_REDIS"] = redis_url
    if callbacks is not None:
        os.environ["VIDEOJOBS_TEST_CALLBACKS"] = callbacks
    else:
        os.environ.pop("VIDEOJOBS_TEST_CALLBACKS", None)
    module = importlib.import_module("tests.celery_app")
    if redis_url != module.REDIS or os.environ.get("VIDEOJOBS_TEST_CALLBACKS") != callbacks:
        module = importlib.reload(module)  # imported earlier with other settings: read them again
    return module


class Rig:
    """Redis, the sandbox and workers, started in ``__enter__`` and stopped in ``__exit__``."""

    def __init__(
        self,
        folder: Path | None = None,
        *,
        persist: bool = False,
        workers: int = 1,
        concurrency: int = 2,
        callbacks: str | None = ATTACK_CALLBACKS,
        sandbox: dict[str, Any] | None = None,
    ) -> None:
        from tests.redis_server import RedisServer

        self.folder = folder or Path(tempfile.mkdtemp(prefix="videojobs-rig-"))
        self.redis = RedisServer(self.folder / "redis", persist=persist)
        self.count, self.concurrency, self.callbacks = workers, concurrency, callbacks
        self.sandbox_options = {"time_scale": SCALE, **(sandbox or {})}
        self.workers: Workers | None = None
        self._serving: Any = None

    def __enter__(self) -> Rig:
        import redis

        from tests.redis_server import environment
        from tests.servers import serve

        self.redis.start()
        self.r = redis.Redis.from_url(self.redis.url)
        self.app = app_module(self.redis.url, self.callbacks)
        self._serving = serve(**self.sandbox_options)
        self.sandbox, root = self._serving.__enter__()
        env = environment(self.redis.url, root, SCALE)
        if self.callbacks is not None:
            env["VIDEOJOBS_TEST_CALLBACKS"] = self.callbacks
        else:
            env.pop("VIDEOJOBS_TEST_CALLBACKS", None)
        self.workers = Workers(env, self.folder, self.count, self.concurrency)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        try:
            if self.workers is not None:
                self.workers.stop()
        finally:
            try:
                if self._serving is not None:
                    self._serving.__exit__(None, None, None)
            finally:
                self.redis.stop()

    @property
    def attempts(self) -> int:
        """A callback's attempts: 1 + its retries."""
        return 1 + int(float((self.callbacks or "3").split(",")[0]))

    # --- what tests read ---------------------------------------------------------------------------

    def track(self, refs: list[str], on_done: Any, timeout: float = 120.0) -> None:
        from videojobs._policy import AdaptivePolicy
        from videojobs.celery import track

        for ref in refs:
            track(ref, on_done=on_done, timeout=timeout, policy=AdaptivePolicy().scaled(SCALE), app=self.app.app)

    def runs(self, ref: str) -> int:
        return int(self.r.scard(f"test:runs:{ref}"))

    def recorded(self, refs: list[str]) -> int:
        return sum(1 for ref in refs if self.r.hexists("test:final", ref))

    def state(self, ref: str) -> str | None:
        done = self.r.hget(f"videojobs:job:{ref}", "done")
        return None if done is None else done.decode()

    def drained(self) -> bool:
        """No message queued, none held unacknowledged (a countdown's too), no poll or callback due."""
        return self.r.llen(QUEUE) == 0 and self.r.hlen("unacked") == 0 and self.r.zcard("videojobs:due") == 0


def until(condition: Callable[[], bool], limit: float, step: float = 0.05) -> bool:
    """Whether ``condition()`` came true within ``limit`` seconds (checked every ``step``)."""
    deadline = time.monotonic() + limit
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


def keys_without_ttl(r: Any, prefix: str = "videojobs:") -> list[str]:
    """Every key under ``prefix`` that would live for ever (SCAN + TTL: -1)."""
    return [key.decode() for key in r.scan_iter(match=f"{prefix}*", count=1000) if r.ttl(key) == -1]


def longest_ttl(r: Any, prefix: str = "videojobs:") -> int:
    return max((int(r.ttl(key)) for key in r.scan_iter(match=f"{prefix}*", count=1000)), default=0)


def _tag() -> str:
    return uuid.uuid4().hex[:8]


# --- the scenarios -------------------------------------------------------------------------------------


def callback_raises(rig: Rig) -> dict[str, Any]:
    """A callback that always raises (its message full of terminal escapes and 5,000 characters),
    among callbacks that work: tried a bounded number of times, then recorded failed, listed, logged."""
    from videojobs.celery import REASON_LIMIT, failed_callbacks

    tag = _tag()
    bad = f"duomi:{tag}-bad-q0-d10"
    good = [f"vozo:{tag}-ok{i}-q0-d{20 + 5 * i}" for i in range(6)]
    started, started_at = time.monotonic(), datetime.now(UTC)
    rig.track([bad], rig.app.explode.s())
    rig.track(good, rig.app.record.s())
    ended = until(lambda: rig.state(bad) == "failed" and rig.recorded(good) == len(good), 12)
    elapsed = time.monotonic() - started
    until(rig.drained, 5)
    listed = [f for f in failed_callbacks(rig.app.app) if f.ref == bad]
    entry = listed[0] if listed else None
    logged = until(lambda: f"callback of {bad} failed for good" in rig.workers.log(), 3)  # type: ignore[union-attr]
    safe = (
        ended
        and entry is not None
        and rig.runs(bad) == entry.attempts == rig.attempts
        and all(rig.runs(ref) == 1 for ref in good)
        and started_at <= entry.failed_at <= datetime.now(UTC)  # aware UTC, as a JobStatus's times
        and len(entry.reason) <= REASON_LIMIT
        and "\x1b" not in entry.reason
        and entry.result is not None
        and entry.result["ref"] == bad
        and logged
        and not keys_without_ttl(rig.r)
    )
    return {
        "outcome": (
            f"FailedCallback: {entry.attempts} attempts in {elapsed:.1f} s, then failed: {entry.reason[:50]}..."
            if entry
            else f"no FailedCallback after {elapsed:.1f} s (state {rig.state(bad)}, {rig.runs(bad)} runs)"
        ),
        "typed": entry is not None,
        "safe": bool(safe),
        "seconds_to_failed": elapsed,
        "runs": rig.runs(bad),
    }


def callback_hangs(rig: Rig) -> dict[str, Any]:
    """A callback that never returns and swallows its soft time limit, among callbacks that work:
    the others are all called while it hangs; its process is killed at the hard limit and replaced
    (each time), and after its attempts it is recorded failed; the worker lives on."""
    from videojobs.celery import failed_callbacks

    tag = _tag()
    hung = f"vozo:{tag}-hang-q0-d5"
    good = [f"jimmyai:{tag}-ok{i}-q0-d{30 + 5 * i}" for i in range(6)]
    started = time.monotonic()
    rig.track([hung], rig.app.hang.s())
    rig.track(good, rig.app.record.s())
    others_first: list[bool] = []

    def settled() -> bool:
        hang_failed = rig.state(hung) == "failed"  # read first: the others must be done by then
        if not others_first and rig.recorded(good) == len(good):
            others_first.append(not hang_failed)
            others_at.append(time.monotonic() - started)
        return hang_failed and bool(others_first)

    others_at: list[float] = []
    ended = until(settled, 15)
    elapsed = time.monotonic() - started
    until(rig.drained, 5)
    entry = next((f for f in failed_callbacks(rig.app.app) if f.ref == hung), None)
    killed = rig.workers.log().count("Hard time limit") if rig.workers else 0  # Celery's own ERROR line
    safe = (
        ended
        and others_first == [True]
        and entry is not None
        and entry.attempts == rig.attempts
        and rig.runs(hung) == rig.attempts
        and all(rig.runs(ref) == 1 for ref in good)
        and rig.workers is not None
        and rig.workers.alive()
        and not keys_without_ttl(rig.r)
    )
    return {
        "outcome": (
            f"FailedCallback after {elapsed:.1f} s ({killed} hard time limits): {entry.reason[:60]}; "
            f"the {len(good)} others called in {others_at[0]:.1f} s"
            if entry and others_at
            else f"not ended after {elapsed:.1f} s: state {rig.state(hung)}, others {rig.recorded(good)}/{len(good)}"
        ),
        "typed": entry is not None,
        "safe": bool(safe),
        "seconds_to_failed": elapsed,
        "seconds_others": others_at[0] if others_at else None,
    }


def double_track(rig: Rig) -> dict[str, Any]:
    """``track()`` twice while the job runs, then once more after it ended: each later call
    raises AlreadyTrackedError and changes nothing; the first callback runs once, the others never."""
    from videojobs.celery import AlreadyTrackedError

    ref = f"colossyan:{_tag()}-twice-q0-d30"
    rig.track([ref], rig.app.record.s())
    errors: list[AlreadyTrackedError] = []
    for _ in range(2):
        try:
            rig.track([ref], rig.app.explode.s())
        except AlreadyTrackedError as exc:
            errors.append(exc)
        if not until(lambda: rig.state(ref) == "sent", 10):
            break
    safe = [e.state for e in errors] == ["tracked", "ended"] and rig.runs(ref) == 1 and not keys_without_ttl(rig.r)
    return {
        "outcome": (", then ".join(f"{type(e).__name__}({e.state})" for e in errors) or "no error")
        + f"; the first callback ran {rig.runs(ref)} time(s), the second never",
        "typed": len(errors) == 2,
        "safe": bool(safe),
    }


def _closed_port() -> int:
    from tests.redis_server import free_port

    return free_port()  # bound and released: nothing listens there


def track_redis_down(rig: Rig | None = None) -> dict[str, Any]:
    """``track()`` with Redis unreachable (a closed port; the URL carries a password)."""
    return _track_unreachable(_closed_port())


def track_redis_silent(rig: Rig | None = None) -> dict[str, Any]:
    """``track()`` with a "Redis" that takes the connection and never answers (a listening
    socket nobody reads): bounded by the caller's socket timeout and one retry."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshakes; nothing ever reads or writes
        return _track_unreachable(silent.getsockname()[1])


def _track_unreachable(port: int) -> dict[str, Any]:
    from celery import Celery

    from videojobs.celery import UnreachableError, install, track

    app = Celery("redis-down", broker=f"redis://:hunter2secret@127.0.0.1:{port}/0", set_as_current=False)
    install(app)
    started = time.monotonic()
    try:
        track("vozo:down-1", timeout=60, app=app)
    except UnreachableError as exc:
        elapsed = time.monotonic() - started
        text = str(exc)
        safe = "hunter2secret" not in text and "Redis" in text and f"127.0.0.1:{port}" in text
        return {"outcome": f"UnreachableError in {elapsed:.2f} s: {text[:90]}", "typed": True, "safe": safe,
                "seconds": elapsed}  # fmt: skip
    except Exception as exc:  # what the attack looks for: anything else escaping
        return {"outcome": f"{type(exc).__name__}: {exc}"[:120], "typed": False, "safe": False}
    return {"outcome": "track() returned", "typed": False, "safe": False}


def track_broker_down(rig: Rig) -> dict[str, Any]:
    """``track()`` with Redis (the store) up and the broker unreachable: a typed error, and no record left."""
    from celery import Celery

    from videojobs.celery import UnreachableError, install, track

    port = _closed_port()
    app = Celery("broker-down", broker=f"redis://:hunter2secret@127.0.0.1:{port}/0", set_as_current=False)
    install(app, redis_url=rig.redis.url, prefix="brokerdown")
    ref = f"vozo:{_tag()}-brokerdown"
    started = time.monotonic()
    try:
        track(ref, timeout=60, app=app)
    except UnreachableError as exc:
        elapsed = time.monotonic() - started
        text = str(exc)
        left = [k.decode() for k in rig.r.scan_iter(match="brokerdown:*")]
        safe = "hunter2secret" not in text and "broker" in text and f"127.0.0.1:{port}" in text and not left
        return {"outcome": f"UnreachableError in {elapsed:.2f} s: {text[:90]}", "typed": True, "safe": safe,
                "seconds": elapsed, "left": left}  # fmt: skip
    except Exception as exc:  # what the attack looks for: anything else escaping
        return {"outcome": f"{type(exc).__name__}: {exc}"[:120], "typed": False, "safe": False}
    return {"outcome": "track() returned", "typed": False, "safe": False}


def track_redis_refuses(rig: Rig) -> dict[str, Any]:
    """Redis answers, with an error (here a database number it does not have; out of memory and a
    read-only replica answer the same way): ``track()`` and ``failed_callbacks()`` raised redis-py's
    bare ResponseError, and a broker's (wrapped by kombu) read "did not answer". A typed
    StoreRefusedError now, naming Redis or the broker, and nothing left behind."""
    from celery import Celery

    from videojobs.celery import StoreRefusedError, failed_callbacks, install, track

    nowhere = rig.redis.url.rsplit("/", 1)[0] + "/99"
    app = Celery("redis-refuses", broker=rig.redis.url, set_as_current=False)
    install(app, redis_url=nowhere, prefix="refuses")
    broker = Celery("broker-refuses", broker=nowhere, set_as_current=False)  # kombu wraps what Redis said
    install(broker, redis_url=rig.redis.url, prefix="refuses")
    outcomes, typed = [], True
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("Redis", lambda: track(f"vozo:{_tag()}-refused", timeout=60, app=app)),
        ("Redis", lambda: failed_callbacks(app)),
        ("the broker", lambda: track(f"vozo:{_tag()}-refused", timeout=60, app=broker)),
    ]
    for what, call in calls:
        try:
            call()
        except StoreRefusedError as exc:
            outcomes.append(f"StoreRefusedError: {str(exc)[:80]}")
            typed = typed and str(exc).startswith(what) and "DB index is out of range" in str(exc)
        except Exception as exc:  # what the attack looks for: anything else escaping
            outcomes.append(f"{type(exc).__name__}: {exc}"[:120])
            typed = False
        else:
            outcomes.append("returned")
            typed = False
    left = [k.decode() for k in rig.r.scan_iter(match="refuses:*")]
    return {"outcome": " | ".join(outcomes), "typed": typed, "safe": typed and not left}


def poisoned_deliver_ttl(rig: Rig) -> dict[str, Any]:
    """Forged messages straight on the queue: ``deliver`` for a job never tracked, for one still
    running (with another callback), with no arguments, with a number for a ref; ``poll`` with a
    deadline in a billion years and with garbage (both dropped before any claim: no key for
    them). Nothing forged runs, and every key has a TTL."""
    from videojobs.celery import DELIVER_TASK, MAX_TIMEOUT, POLL_TASK
    from videojobs.celery._poll import PollState
    from videojobs.celery._store import JOB_TTL

    tag = _tag()
    running = f"ezmodel:{tag}-running-q0-d200"
    stranger = f"vozo:{tag}-never-tracked"
    far = f"vozo:{tag}-far-q0-d10"
    rig.track([running], rig.app.record.s())
    forged = json.dumps({"on_done": dict(rig.app.explode.s()), "payload": {"ref": stranger}})
    send = rig.app.app.send_task
    send(DELIVER_TASK, args=(stranger, forged))
    send(DELIVER_TASK, args=(running, forged))
    send(DELIVER_TASK, args=())
    send(DELIVER_TASK, args=(12345,))
    now = time.time()
    far_poll = PollState.start(far, started=now, timeout=10, max_failed=10, policy={"kind": "adaptive"}).to_message()
    far_poll["waiter"] = {**far_poll["waiter"], "timeout": 3e16}  # forged: track() takes at most MAX_TIMEOUT
    send(POLL_TASK, args=(far_poll,))
    send(POLL_TASK, args=({"garbage": True},))
    torn = f"vozo:{tag}-torn-q0-d10"  # a wait state without its history (another version's, or forged)
    torn_poll = PollState.start(torn, started=now, timeout=10, max_failed=10, policy={"kind": "adaptive"}).to_message()
    torn_poll["waiter"] = {k: v for k, v in torn_poll["waiter"].items() if k != "history"}
    send(POLL_TASK, args=(torn_poll,))
    ended = until(lambda: rig.recorded([running]) == 1, 10)
    drained = until(rig.drained, 5)
    dropped = not rig.r.exists(f"videojobs:job:{far}", f"videojobs:chain:{far}", f"videojobs:chain:{torn}")
    unbounded = keys_without_ttl(rig.r)
    longest = longest_ttl(rig.r)
    safe = (
        ended
        and drained
        and dropped
        and not unbounded
        and longest <= MAX_TIMEOUT + JOB_TTL
        and rig.runs(stranger) == 0
        and rig.runs(running) == 1
        and not rig.r.exists(f"videojobs:job:{stranger}")
    )
    return {
        "outcome": f"forged deliveries ran nothing; {len(unbounded)} keys without TTL, longest TTL {longest / 86400:.0f} d",
        "typed": ended,
        "safe": bool(safe),
        "without_ttl": unbounded,
    }


SCENARIOS: dict[str, Callable[[Rig], dict[str, Any]]] = {
    "callback_raises": callback_raises,
    "callback_hangs": callback_hangs,
    "double_track": double_track,
    "track_redis_down": track_redis_down,
    "track_redis_silent": track_redis_silent,
    "track_broker_down": track_broker_down,
    "poisoned_deliver_ttl": poisoned_deliver_ttl,
    "track_redis_refuses": track_redis_refuses,
}
NEEDS_WORKERS = {"callback_raises", "callback_hangs", "double_track", "poisoned_deliver_ttl"}


def run(name: str) -> dict[str, Any]:
    """Perform attack ``name`` in this process, on parts of its own."""
    if name in ("track_redis_down", "track_redis_silent"):
        return SCENARIOS[name](None)  # type: ignore[arg-type]
    if name in NEEDS_WORKERS:
        with Rig() as rig:
            return SCENARIOS[name](rig)
    with Rig(workers=0) as rig:
        return SCENARIOS[name](rig)
