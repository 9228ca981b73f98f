"""Waiting for jobs on Celery, with Redis: ``pip install 'videojobs[celery]'``.

``wait_all`` on one event loop stays the embedded default. When jobs outlive processes (many
jobs, workers that restart, deploys in the middle of a 20-minute render), let your Celery
workers follow them::

    from celery import Celery
    from videojobs.celery import install, track

    app = Celery("renders", broker="redis://localhost:6379/0")
    install(app)                                    # registers "videojobs.poll" and "videojobs.deliver"

    @app.task
    def video_ready(result: dict) -> None:          # status.to_dict() + "exception" (or None)
        ...

    track("vozo:task-123", on_done=video_ready.s(), timeout=3600)

and run ``celery -A renders worker`` as usual (Celery's events and Flower work unchanged).

What it guarantees:

- **One poll per message.** A task message calls ``status()`` once, then re-enqueues itself with
  ``countdown`` = the polling policy's next delay (its History carried compactly in the message)
  or, after a failure, an exponential backoff (1, 2, 4 ... 60 s): one message per job in flight,
  whatever the vendor does, so a dead vendor does not multiply messages.
- **Nothing lost:** ``acks_late`` and ``reject_on_worker_lost``: a worker killed mid-poll gives its
  message back (with Redis as broker, after ``broker_transport_options["visibility_timeout"]``,
  which must exceed the longest countdown: the policy's ``max_delay``, 60 s by default).
- **Nothing doubled:** every hop of a job's poll chain is claimed in Redis by the delivery that
  runs it (an atomic script), so a message delivered twice runs once and the chain never forks.
  The callback is noted in the job's record, then run by a ``videojobs.deliver`` task (a callback
  task this app knows runs inside it; any other is sent on), claimed the same way and marked sent.
- **Nothing lost, even by the broker:** Redis as a broker can drop a message (one popped from the
  queue as Redis went down, before it was recorded as unacknowledged). Each job's next message is
  kept in its record until it runs; one worker every ``SWEEP_EVERY`` seconds sends again what is
  overdue by ``sweep_grace`` (and a callback noted but never marked sent). The one gap left: a
  worker killed while the callback runs, or before it is marked sent, runs it again when its
  message comes back (at least once, as any ``acks_late`` task), under the same task id
  (``videojobs-done-<ref>``), so the callback can tell.
- **Shared rate control:** each vendor's rate lives in Redis (token bucket, AIMD: cut to 70 % on
  a 429, grown back with answers, Retry-After pauses the vendor for every worker), so N workers
  together keep to one vendor's limit. No limit until the vendor throttles, as in one process.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any

import attrs

from .._exceptions import RateLimitError, UsageError, VideoJobsError
from .._policy import PollingPolicy
from ._poll import Again, Done, PollState, decide, paced, policy_spec, timed_out
from ._store import JOB_TTL, Store, connect

__all__ = ["DELIVER_TASK", "POLL_TASK", "install", "track"]

POLL_TASK = "videojobs.poll"
DELIVER_TASK = "videojobs.deliver"
DEFAULT_TIMEOUT = 24 * 3600.0


def _default_client() -> Any:
    import videojobs

    # the task re-enqueues itself after a failure (its backoff, its budget): no retries inside a
    # poll, and no rate limit of the process's own: the shared one in Redis paces every worker
    return videojobs.Client(max_retries=0, adaptive=False)


SWEEP_GRACE = 120.0
"""Seconds past due before a job's next poll (or its callback) counts as lost and is sent again,
and before a claimed poll whose worker went quiet may be taken over: longer than any poll runs
(a request's timeout and its retries) and than a queue's usual backlog."""
SWEEP_EVERY = 10.0
"""One worker in the cluster sweeps for lost messages this often (a Redis lock), after a poll."""


@attrs.frozen
class _Settings:
    url: str
    prefix: str
    grace: float
    factory: Callable[[], Any]


def install(
    app: Any,
    *,
    client_factory: Callable[[], Any] | None = None,
    redis_url: str | None = None,
    prefix: str = "videojobs",
    sweep_grace: float = SWEEP_GRACE,
) -> Any:
    """Register ``videojobs.poll`` on ``app`` (your own Celery app); return the task.

    ``client_factory()`` makes each worker process's :class:`videojobs.Client` (default: keys
    from the environment, ``max_retries=0``, ``adaptive=False``); ``redis_url`` is where the
    claims, rates and pending messages live (default: the app's broker URL, which must then be
    Redis); ``sweep_grace``: see :data:`SWEEP_GRACE`.
    """
    url = redis_url or str(app.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(f"videojobs.celery keeps its claims and rates in Redis: pass redis_url= (broker is {url!r})")
    if not sweep_grace > 0:
        raise UsageError(f"sweep_grace must be seconds > 0, not {sweep_grace!r}")
    settings = _Settings(url, prefix, float(sweep_grace), client_factory or _default_client)
    per_process: dict[int, tuple[Any, Store]] = {}

    def resources() -> tuple[Any, Store]:
        pid = os.getpid()  # prefork: each child makes its own client and connection
        if pid not in per_process:
            per_process.clear()
            per_process[pid] = (settings.factory(), Store(connect(settings.url), settings.prefix))
        return per_process[pid]

    def poll(self: Any, message: dict[str, Any]) -> str:
        client, store = resources()
        outcome = _poll(self, message, client, store, settings.grace)
        if store.sweep_turn(SWEEP_EVERY):
            _sweep(self, store, settings.grace)
        return outcome

    options = {
        "name": POLL_TASK,
        "bind": True,
        "acks_late": True,  # acknowledged once the next message (or the callback) is out
        "reject_on_worker_lost": True,  # a killed worker's message goes back to the queue
        "acks_on_failure_or_timeout": False,  # nor is it acknowledged when the broker was unreachable
        "ignore_result": True,
    }
    task = app.task(**options)(poll)
    task.videojobs_settings = settings  # what track() needs to note the first message

    def deliver(self: Any, ref: str, record: str) -> str:
        return _deliver(self, ref, record, resources()[1], settings.grace)

    app.task(**{**options, "name": DELIVER_TASK})(deliver)

    def start_sweeper(**_: Any) -> None:
        """In each worker process: sweep every SWEEP_EVERY s, even when no poll runs (when every
        remaining message was lost, no poll would ever come to do it)."""
        import threading

        def loop() -> None:
            while True:
                time.sleep(SWEEP_EVERY * (0.5 + random.random()))
                try:
                    _client, store = resources()
                    if store.sweep_turn(SWEEP_EVERY):
                        _sweep(task, store, settings.grace)
                except Exception:  # the broker or Redis away: the next turn tries again
                    logging.getLogger("videojobs.celery").warning("sweep failed", exc_info=True)

        threading.Thread(target=loop, name="videojobs-sweeper", daemon=True).start()

    from celery import signals

    signals.worker_process_init.connect(start_sweeper, weak=False)  # prefork children
    signals.worker_ready.connect(start_sweeper, weak=False)  # the solo and threads pools run tasks here
    return task


def _poll(task: Any, message: dict[str, Any], client: Any, store: Store, grace: float) -> str:
    state = PollState.from_message(message)
    delivery = task.request.delivery_info or {}
    tag = str(delivery.get("delivery_tag") or task.request.id)
    ttl = max(0.0, state.deadline - time.time()) + JOB_TTL
    claimed = store.claim(state.ref, state.hop, tag, ttl, grace)
    if claimed != 1:
        return "duplicate" if claimed == 0 else "already delivered"
    if time.time() >= state.deadline:
        return _finish(task, store, state, timed_out(state), ttl)
    vendor = state.ref.partition(":")[0]
    wait = store.acquire(vendor)
    if wait > 0:
        return _again(task, store, paced(state, wait, random.Random()), ttl)
    try:
        answer: Any = client.status(state.ref)
    except VideoJobsError as exc:
        answer = exc
        if isinstance(exc, RateLimitError):
            store.throttled(vendor, exc.retry_after)
    else:
        store.answered(vendor)
    outcome = decide(state, time.time(), answer)
    if isinstance(outcome, Done):
        return _finish(task, store, state, outcome, ttl)
    return _again(task, store, outcome, ttl)


PUBLISH_RETRY = {"max_retries": 15, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}
PUBLISH_WINDOW = 30.0  # about how long those retries can take in all
"""Publishing rides out a broker that is away for up to half a minute (a Redis restart); past
that the task fails unacknowledged, and its message (or the job's noted one) is sent again."""


def _publish_poll(task: Any, message: dict[str, Any], countdown: float) -> None:
    task.app.send_task(POLL_TASK, args=(message,), countdown=countdown, retry=True, retry_policy=PUBLISH_RETRY)


def _again(task: Any, store: Store, again: Again, ttl: float) -> str:
    message = again.state.to_message()
    store.expect(again.state.ref, again.state.hop, json.dumps(message), time.time() + again.countdown, ttl)
    _publish_poll(task, message, again.countdown)
    return f"next poll in {again.countdown:.2f} s"


def _publish_delivery(task: Any, ref: str, record: str) -> None:
    task.app.send_task(DELIVER_TASK, args=(ref, record), retry=True, retry_policy=PUBLISH_RETRY)


def _finish(task: Any, store: Store, state: PollState, done: Done, ttl: float) -> str:
    record = json.dumps({"on_done": state.on_done, "payload": done.payload})
    if not store.finishing(state.ref, record, ttl):
        return "already delivered"
    _publish_delivery(task, state.ref, record)
    return "done"


def _deliver(task: Any, ref: str, record: str, store: Store, grace: float) -> str:
    """Run the user's callback, once: its message is ours, so a lost one is swept and sent again.

    A callback task registered on this app runs here, in this task (``apply``): it is done when
    this message is acknowledged. One the app does not know is sent on (``apply_async``)."""
    delivery = task.request.delivery_info or {}
    tag = str(delivery.get("delivery_tag") or task.request.id)
    if not store.delivering(ref, tag, grace):
        return "already delivered"
    noted = json.loads(record)
    if noted["on_done"] is not None:
        from celery import signature

        callback = signature(noted["on_done"], app=task.app)
        # one task id per job's callback: a run repeated after a crash (at least once, as any
        # acks_late task) is recognizable as the same callback by its id
        callback_id = f"videojobs-done-{ref}"
        if callback.task in task.app.tasks:
            callback.apply(args=(noted["payload"],), task_id=callback_id, throw=True)
        else:
            callback.apply_async((noted["payload"],), task_id=callback_id, retry=True, retry_policy=PUBLISH_RETRY)
    store.sent(ref)
    return "delivered"


def _sweep(task: Any, store: Store, grace: float) -> int:
    """Send again what a broker lost: polls (and callbacks) overdue by more than ``grace``."""
    now = time.time()
    resent = 0
    for ref, record in store.overdue(now - grace):
        done = record.get(b"done")
        if done in (b"sending", b"delivering"):  # the callback's message was lost, or its worker died
            if float(record.get(b"sending_at", b"0")) > now - grace - PUBLISH_WINDOW:
                continue  # or its sender may still be retrying its publish: give it the whole window
            store.postpone(ref, now + grace)
            _publish_delivery(task, ref, record[b"payload"].decode())
            resent += 1
        elif done is None and b"next" in record:
            store.postpone(ref, now + grace)  # one resend per grace period, whoever runs it
            _publish_poll(task, json.loads(record[b"next"]), 0.0)
            resent += 1
        else:
            store.forget(ref)
    return resent


def track(
    ref: str,
    *,
    on_done: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
    policy: PollingPolicy | str | None = None,
    max_failed_polls: int | None = None,
    app: Any = None,
) -> Any:
    """Start following ``ref``: its first poll is enqueued now. ``on_done`` (a Celery signature)
    is called once with the final status as JSON when the job ends, times out, or cannot be
    followed (a permanent error). Returns the first poll's ``AsyncResult``."""
    from celery import current_app

    from .._base import split_ref
    from .._wait import DEFAULT_MAX_FAILED_POLLS, check_wait_args

    split_ref(ref)
    failed = DEFAULT_MAX_FAILED_POLLS if max_failed_polls is None else max_failed_polls
    check_wait_args(timeout, failed)
    started = time.time()
    state = PollState(
        ref=ref,
        started=started,
        deadline=started + float(timeout),
        max_failed=failed,
        policy=policy_spec(policy),
        on_done=None if on_done is None else dict(on_done),
    )
    celery_app = app or getattr(on_done, "app", None) or current_app
    settings: _Settings | None = getattr(celery_app.tasks.get(POLL_TASK), "videojobs_settings", None)
    if settings is None:
        raise UsageError("call videojobs.celery.install(app) before track() (no videojobs.poll task on this app)")
    message = state.to_message()
    store = Store(connect(settings.url), settings.prefix)
    store.expect(ref, 0, json.dumps(message), started, float(timeout) + JOB_TTL)  # swept if the broker loses it
    return celery_app.send_task(POLL_TASK, args=(message,), retry=True, retry_policy=PUBLISH_RETRY)
