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
  ``countdown`` = what the job's :class:`~videojobs._wait.Waiter` says, as in one process (the
  policy's next delay, the vendor's poll-after hint, after a failure an exponential backoff of
  1, 2, 4 ... 60 s or its Retry-After; the Waiter travels in the message, a few hundred bytes):
  one message per job in flight, whatever the vendor does, so a dead vendor does not multiply
  messages. A poll costs Redis one round trip (two commands) before the call, and one more after
  it only when something changed (a throttle, the end, a next poll later than expected).
- **Nothing lost:** ``acks_late`` and ``reject_on_worker_lost``: a worker killed mid-poll gives its
  message back (with Redis as broker, after ``broker_transport_options["visibility_timeout"]``;
  a poll's countdown is cut to below it, ``COUNTDOWN_MARGIN``, whatever the policy or a
  Retry-After asks, so a held message never comes back while it waits).
- **Nothing doubled:** every hop of a job's poll chain is claimed in Redis by the delivery that
  runs it (an atomic script), so a message delivered twice runs once and the chain never forks.
  The callback is noted in the job's record, then run by a ``videojobs.deliver`` task (a callback
  task this app knows runs inside it; any other is sent on), claimed the same way and marked sent.
- **Nothing lost, even by the broker:** Redis as a broker can drop a message (one popped from the
  queue as Redis went down, before it was recorded as unacknowledged). Each claim keeps its hop's
  message in the job's chain, with when the next hop is due at the latest (the policy's longest
  delay, or the later time the poll chose); on a timer of its own, one worker every
  ``SWEEP_EVERY`` seconds sends again the hop of a chain that went quiet for ``sweep_grace`` past
  that (its delivery takes the quiet claim over), and a callback noted but never marked sent. The one gap left: a
  worker killed while the callback runs, or before it is marked sent, runs it again when its
  message comes back (at least once, as any ``acks_late`` task), under the same task id
  (``videojobs-done-<ref>``), so the callback can tell.
- **A callback that fails ends:** one that raises, or outlives its soft time limit, is tried again
  ``callback_retries`` times with a doubling backoff; one that outlives its hard time limit has its
  pool process replaced (Celery's ``time_limit``) and counts as a failed attempt, as does one whose
  worker died under it. Then the job's record says ``failed`` and why, a WARNING says so, and
  :func:`failed_callbacks` lists it. Other jobs' callbacks run meanwhile on the other processes.
- **Shared rate control:** the parts of one process (``videojobs._ratecontrol.SharedPace``: CUBIC's
  curve, cut to 85 % on a 429 and grown back along it, and a token bucket; a Retry-After pauses
  the vendor for every worker, for at most ``MAX_PAUSE``), with each vendor's numbers in Redis, so N workers together keep
  to one vendor's limit. A poll that must wait books its slot and is sent with the countdown the
  bucket says (it calls the vendor when it comes back), and a paced vendor's next slot is booked
  with each answer. A slot further out than the broker holds a message (its visibility timeout)
  is kept, not given up: the poll comes back sooner, hears the time left and is sent on again.
  A cut keeps the share of the slots booked before it that its rate allows (each poll carries
  the rate its slot was booked at), and a pause books behind its end: only the rest of the
  queue goes back to the broker (``SharedPace.book``). A rate grown since a queue was booked is
  booked among its slots, near the front: the vendor sees the rate held within a second.
  No Redis command on a poll until the vendor throttles, and no limit then but each worker
  process's own slow start (``._local.WorkerPaces``: a poll sleeps until its process's ramp lets
  it call). The vendor's first cut is published (``Store.cuts``; each worker process holds one
  more Redis connection, subscribed to it) and every worker process hears of it at once,
  follows the pace and adds its share of what it saw the vendor accept to that cut (a notice
  missed is made up for within ``PACE_REFRESH``). A later cut starts from what the whole fleet
  sent, counted in Redis as its calls go, less the 429s reported before it.
- **Every key expires** (see ``_store``), and a worker says at start, as a WARNING, when the Redis
  that holds its state does not persist (a restart then loses every job in flight).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import attrs

from .._base import check_seconds, check_whole
from .._exceptions import ConfigurationError, NetworkError, RateLimitError, UsageError, VideoJobsError
from .._policy import PollingPolicy
from .._ratecontrol import FIRST_BURST
from .._text import printable, their_words
from .._wait import DEFAULT_MAX_FAILED_POLLS
from ._local import WorkerPaces
from ._poll import MAX_MESSAGE, MAX_TIMEOUT, Again, Done, PollState, decide, next_due, paced, policy_spec, timed_out
from ._store import JOB_TTL, Claim, Delivery, Store, call_mark, connect, connect_quickly

__all__ = [
    "CALLBACK_BACKOFF",
    "CALLBACK_RETRIES",
    "CALLBACK_SOFT_TIME_LIMIT",
    "CALLBACK_TIME_LIMIT",
    "DELIVER_TASK",
    "POLL_TASK",
    "AlreadyTrackedError",
    "FailedCallback",
    "StoreRefusedError",
    "UnreachableError",
    "failed_callbacks",
    "install",
    "persistence_problem",
    "track",
]

POLL_TASK = "videojobs.poll"
DELIVER_TASK = "videojobs.deliver"
DEFAULT_TIMEOUT = 24 * 3600.0
"""``track(timeout=)``'s default: a tracked job's whole wait, one day (the README's vocabulary table says so)."""

_log = logging.getLogger("videojobs.celery")


class AlreadyTrackedError(UsageError):
    """``track()`` of a job that is already tracked, or that ended less than ``JOB_TTL`` (a day)
    after its deadline: its record is left as it was, and the new callback is not attached.

    ``state`` is ``"tracked"`` (its callback is still to come), ``"ended"`` (its callback is
    being sent or was sent) or ``"failed"`` (its callback failed: see :func:`failed_callbacks`)."""

    def __init__(self, message: str, *, ref: str, state: str) -> None:
        super().__init__(message, vendor=ref.partition(":")[0])
        self.ref, self.state = ref, state


class UnreachableError(NetworkError):
    """Redis (where ``track()`` notes the job) or the broker (where its first poll goes) did not
    answer within a few seconds. The message names which, and its URL without credentials.
    Nothing of the job is left behind (unless Redis went away too between noting the job and
    sending its first poll: then the sweeper sends that poll once Redis is back, and a second
    ``track()`` raises :class:`AlreadyTrackedError`)."""


class StoreRefusedError(VideoJobsError):
    """Redis answered ``track()`` or ``failed_callbacks()`` with an error of its own: out of memory
    (``maxmemory`` with ``noeviction``, a broker's usual setting), a read-only replica after a
    failover, a database number it does not have. The message names Redis, its URL without
    credentials, and Redis's words. As with :class:`UnreachableError`, nothing of the job is
    left behind."""


@attrs.frozen
class FailedCallback:
    """A job whose callback failed for good (:func:`failed_callbacks`)."""

    ref: str
    reason: str  # the last attempt's error: its type and message (keys scrubbed, at most REASON_LIMIT characters)
    attempts: int
    failed_at: datetime  # aware, UTC (as a JobStatus's times)
    # what the callback was to be called with (status.to_dict() + "exception"); compared, not hashed
    # (a dict: hashing it made the record unusable in a set)
    result: dict[str, Any] | None = attrs.field(hash=False)


def _utc(stamp: bytes) -> datetime:
    """A time a script wrote (Unix seconds), as every time a user reads: aware, UTC (the epoch if
    it is not a usable number: the record was written by hand)."""
    try:
        return datetime.fromtimestamp(float(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        return datetime.fromtimestamp(0, UTC)


def _default_client() -> Any:
    import videojobs

    # the task re-enqueues itself after a failure (its backoff, its budget): no retries inside a
    # poll, and no rate limit of the process's own: the shared one in Redis paces every worker
    return videojobs.Client(max_retries=0, adaptive=False)


SWEEP_GRACE = 120.0
"""Seconds past due before a job's next poll (or its callback) counts as lost and is sent again,
and before a claimed poll whose worker went quiet may be taken over: longer than any poll runs
(a request's timeout and its retries), than a callback may run (its hard time limit) and than a
queue's usual backlog."""
SWEEP_EVERY = 10.0
"""One worker in the cluster sweeps for lost messages this often (a Redis lock), on a timer of
its own in each worker process (never on a poll's path); more often when ``sweep_grace`` is short
(every half grace), so a lost message is found within 1.5 graces of falling quiet."""
PACE_REFRESH: Final = 1.0
"""Each worker process reads again, this often, the shared pace of the vendors it polls: a vendor
another worker found throttling is paced here within a second even when the notice of its first
cut was missed (Redis restarting as it was published)."""

START_WAIT: Final = 1.0
"""The longest a poll sleeps for its process's slow start, seconds (four tokens at
``START_RATE``): a prefork process's one poll at a time waits a token's time at most; the threads
of a threads or gevent pool share the ramp, and one still waiting after this goes back to the
broker (a hop that calls no vendor), its countdown somewhere in the time the polls waiting need
at the ramp's rate."""
NOTICE_WAIT: Final = 10.0
"""Seconds a worker process's listener waits for a notice of a vendor's first cut before it asks
again (the wait ends as a notice comes; a subscription that broke says so at once, one gone
deaf (a link dropped without a word) at its next PING: ``CutNotices``)."""
NOTICE_RETRY_CAP: Final = 300.0
"""The longest a listener waits before subscribing again, seconds: it doubles from a second while
subscribing fails (a Redis user not allowed the channel fails for good; each try is a round trip
and, the first time, a WARNING)."""

CALLBACK_RETRIES: Final = 3
"""A callback that fails is tried again this many times (Celery's own ``Task.max_retries``)."""
CALLBACK_BACKOFF: Final = 10.0
CALLBACK_BACKOFF_CAP: Final = 300.0
"""Seconds before the first retry of a failed callback, doubled for each next one (10, 20, 40 s:
a database the callback writes to gets over a minute to come back), plus up to half again at
random so callbacks that failed together do not all come back together; at most the cap, which
stays below Redis's default ``visibility_timeout`` (3600 s) with room to spare."""
CALLBACK_SOFT_TIME_LIMIT: Final = 60.0
CALLBACK_TIME_LIMIT: Final = 90.0
"""Celery's ``soft_time_limit`` and ``time_limit`` of ``videojobs.deliver``, which runs the
callback: at the soft one the callback gets ``SoftTimeLimitExceeded`` (and the attempt fails);
at the hard one its pool process is killed and replaced. A callback is meant to note the result
and hand long work to a task of its own; both stay below ``SWEEP_GRACE``, so no other delivery
takes over a callback that is still allowed to run."""
REDIS_VISIBILITY_TIMEOUT: Final = 3600.0
"""kombu's Redis transport default ``visibility_timeout``: a message unacknowledged this long is
delivered again. A callback's time limit and its longest backoff must stay below it."""
REASON_LIMIT: Final = 500
"""Characters of a failed callback's error kept in its record and its log line."""


@attrs.frozen
class _Settings:
    url: str
    prefix: str
    grace: float
    factory: Callable[[], Any]
    attempts: int  # 1 + callback_retries
    backoff: float
    time_limit: float
    longest: float = math.inf  # the longest countdown a poll is published with (below the visibility timeout)


def install(
    app: Any,
    *,
    client_factory: Callable[[], Any] | None = None,
    redis_url: str | None = None,
    prefix: str = "videojobs",
    sweep_grace: float = SWEEP_GRACE,
    callback_retries: int = CALLBACK_RETRIES,
    callback_backoff: float = CALLBACK_BACKOFF,
    callback_soft_time_limit: float = CALLBACK_SOFT_TIME_LIMIT,
    callback_time_limit: float = CALLBACK_TIME_LIMIT,
) -> Any:
    """Register ``videojobs.poll`` and ``videojobs.deliver`` on ``app`` (your own Celery app);
    return the poll task.

    ``client_factory()`` makes each worker process's :class:`videojobs.Client` (default: keys
    from the environment, ``max_retries=0``, ``adaptive=False``); ``redis_url`` is where the
    claims, rates and pending messages live (default: the app's broker URL, which must then be
    Redis); ``sweep_grace``: see :data:`SWEEP_GRACE`; ``callback_retries``, ``callback_backoff``:
    see :data:`CALLBACK_RETRIES`, :data:`CALLBACK_BACKOFF`; ``callback_soft_time_limit`` and
    ``callback_time_limit`` (seconds): see :data:`CALLBACK_TIME_LIMIT`.

    To run callbacks on workers of their own (so a slow one never waits behind polls, nor polls
    behind it), route them: ``app.conf.task_routes = {"videojobs.deliver": {"queue": "callbacks"}}``.
    """
    url = redis_url or str(app.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(
            f"videojobs.celery keeps its claims and rates in Redis: pass redis_url= (broker is {_safe_url(url)!r})"
        )
    try:  # read once here: redis-py's ValueError quotes what it could not read (a password's start)
        from redis.connection import parse_url

        parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError:
        raise ConfigurationError(f"videojobs.celery's Redis URL {_safe_url(url)!r} is not one redis-py reads") from None
    check_seconds("sweep_grace", sweep_grace)
    check_seconds("callback_backoff", callback_backoff)
    check_seconds("callback_soft_time_limit", callback_soft_time_limit)
    check_seconds("callback_time_limit", callback_time_limit)
    check_whole("callback_retries", callback_retries, 0)
    if not callback_soft_time_limit <= callback_time_limit < sweep_grace:
        raise UsageError(
            "callback_soft_time_limit <= callback_time_limit < sweep_grace, or a callback still running "
            f"would be taken over by another worker (got {callback_soft_time_limit:g}, "
            f"{callback_time_limit:g}, {sweep_grace:g})"
        )
    visibility = _visibility_timeout(app)
    # a retried callback's message waits out its backoff (jitter: up to 1.5 times it) unacknowledged,
    # then runs: both count against the visibility timeout, one after the other
    longest_wait = callback_time_limit + (
        1.5 * _backoff(callback_backoff, callback_retries) if callback_retries else 0.0
    )
    if visibility is not None and longest_wait >= visibility:
        raise UsageError(
            f"the broker delivers a message again after its visibility_timeout ({visibility:g} s): a callback's "
            f"longest backoff and then its time limit ({longest_wait:g} s) must stay below it (raise "
            "broker_transport_options['visibility_timeout'], or lower callback_backoff or callback_time_limit)"
        )
    settings = _Settings(
        url=url,
        prefix=prefix,
        grace=float(sweep_grace),
        factory=client_factory or _default_client,
        attempts=1 + callback_retries,
        backoff=float(callback_backoff),
        time_limit=float(callback_time_limit),
        longest=math.inf if visibility is None else visibility - min(COUNTDOWN_MARGIN, visibility / 4),
    )
    per_process: dict[int, tuple[Any, Store, WorkerPaces]] = {}
    made = [threading.Lock()]  # a task and the timer's thread ask at once: one store a process
    if hasattr(os, "register_at_fork"):  # not on Windows (no fork there either)
        os.register_at_fork(after_in_child=lambda: made.__setitem__(0, threading.Lock()))

    def resources() -> tuple[Any, Store, WorkerPaces]:
        pid = os.getpid()  # prefork: each child makes its own client and connection
        with made[0]:
            if pid not in per_process:
                per_process.clear()
                store = Store(connect(settings.url), settings.prefix)
                store.sync_clock()  # the fleet's one clock, from this process's first task
                per_process[pid] = (settings.factory(), store, WorkerPaces())
            return per_process[pid]

    def poll(self: Any, message: dict[str, Any]) -> str:
        with _store_errors(settings.url):
            client, store, local = resources()
            return _poll(self, message, client, store, local, settings.grace, settings.longest)

    options = {
        "name": POLL_TASK,
        "bind": True,
        "acks_late": True,  # acknowledged once the next message (or the callback) is out
        "reject_on_worker_lost": True,  # a killed worker's message goes back to the queue
        # a poll that fails (the broker unreachable as it sent the next) is not acknowledged but
        # rejected without requeue (Celery's on_failure): the message goes, and the sweeper sends
        # the hop again from its record once it is overdue
        "acks_on_failure_or_timeout": False,
        "ignore_result": True,
    }
    task = app.task(**options)(poll)
    task.videojobs_settings = settings  # what track() and failed_callbacks() need

    def deliver(self: Any, ref: str, record: str | None = None) -> str:
        del record  # what older versions sent: the callback is read from the job's record
        with _store_errors(settings.url):
            client, store, _local = resources()
            return _deliver(self, ref, store, settings, client)

    limits = {"soft_time_limit": float(callback_soft_time_limit), "time_limit": float(callback_time_limit)}
    app.task(**{**options, **limits, "name": DELIVER_TASK})(deliver)

    def start_sweeper(**_: Any) -> None:
        """In each worker process, on a timer of its own: read the vendors' shared paces again
        every PACE_REFRESH s, and ask for the sweep's turn every SWEEP_EVERY s or half a grace (one worker in the
        cluster gets it), even when no poll runs (when every remaining message was lost, no poll
        would ever come to do it)."""
        every = min(SWEEP_EVERY, settings.grace / 2)

        def loop() -> None:
            next_sweep = time.monotonic() + every * random.random()
            while True:
                time.sleep(PACE_REFRESH * (0.5 + random.random()))
                # each on its own: a refresh that fails (Redis away, a key set by hand) stopped every sweep
                try:
                    _client, store, _local = resources()
                    store.keep_clock()
                    store.refresh_paces()
                except Exception:  # Redis away: the next turn tries again
                    _log.warning("reading the shared paces failed", exc_info=True)
                if time.monotonic() < next_sweep:
                    continue
                next_sweep = time.monotonic() + every * (0.5 + random.random())
                try:
                    _client, store, _local = resources()
                    if store.sweep_turn(every):
                        _sweep(task, store, settings.grace)
                except Exception:  # the broker or Redis away: the next turn tries again
                    _log.warning("sweep failed", exc_info=True)

        threading.Thread(target=loop, name="videojobs-sweeper", daemon=True).start()
        threading.Thread(target=_listen_for_cuts, args=(resources,), name="videojobs-cuts", daemon=True).start()

    def check_persistence(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", app) is app:  # another app's worker in this process: not ours to say
            _warn_if_not_persistent(settings.url)
            _warn_if_no_time_limits(getattr(sender, "pool", None), settings.time_limit)

    from celery import signals

    signals.worker_process_init.connect(start_sweeper, weak=False)  # prefork children
    signals.worker_ready.connect(start_sweeper, weak=False)  # the solo and threads pools run tasks here
    signals.worker_ready.connect(check_persistence, weak=False)
    return task


COUNTDOWN_MARGIN: Final = 60.0
"""Seconds a poll's countdown stays below the broker's visibility timeout (a quarter of it, when
that is shorter): a message held longer is delivered again while the first copy waits."""


def _signature(on_done: Any) -> dict[str, Any] | None:
    """``on_done`` as its message carries it: a Celery signature (``task.s(...)``), or None."""
    if on_done is None:
        return None
    from celery.canvas import Signature

    if isinstance(on_done, Mapping) and not isinstance(on_done, Signature):  # one that came as data
        from celery import signature

        data = dict(on_done)
        if not isinstance(data.get("task"), str) or not data["task"]:
            raise UsageError("on_done is a mapping that is no Celery signature (it names no task)")
        # what celery.signature() takes as given and the worker's merge reads: a hand-written
        # {"task": ..., "args": [...]} has no "options", and failed at every delivery, not here
        for key, kinds in (("args", (list, tuple)), ("kwargs", Mapping), ("options", Mapping)):
            value = data.get(key)
            if value is not None and not isinstance(value, kinds):
                kind = "list" if key == "args" else "mapping"
                raise UsageError(f"on_done's {key!r} must be a {kind}, not {type(value).__name__}")
            data[key] = list(value or ()) if key == "args" else dict(value or {})
        data["immutable"] = bool(data.get("immutable", False))
        try:
            on_done = signature(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"on_done is a mapping that is no Celery signature ({type(exc).__name__})") from exc
    if not isinstance(on_done, Signature):
        hint = " (a task: pass task.s() or task.s(arg))" if hasattr(on_done, "s") else ""
        raise UsageError(f"on_done must be a Celery signature such as task.s(), not {type(on_done).__name__}{hint}")
    return dict(on_done)


def _warn_if_no_time_limits(pool: Any, time_limit: float) -> None:
    """The solo and threads pools do not enforce a task's time limit (Celery kills a prefork
    child; nothing stops a thread), nor do gevent and eventlet on a callback that never yields
    (their timeout fires at a switch): a callback running past the broker's visibility timeout
    is delivered again and runs twice, and its record says it was sent. Said once, as an ERROR."""
    module = type(pool).__module__ if pool is not None else ""
    if module.endswith((".solo", ".thread", ".gevent", ".eventlet")):  # green pools: only when the callback yields
        _log.error(
            "this worker's pool (%s) does not enforce callback_time_limit (%g s) on a callback that blocks: one that runs past the "
            "broker's visibility timeout would be delivered again and run twice. Run videojobs.deliver on a "
            "prefork worker (task_routes: {'videojobs.deliver': {'queue': 'callbacks'}})",
            module.rsplit(".", 1)[-1],
            time_limit,
        )


def _visibility_timeout(app: Any) -> float | None:
    """The broker's visibility timeout when it is Redis (None for another broker)."""
    broker = str(app.conf.broker_url or "")
    if not broker.startswith(("redis://", "rediss://", "unix://", "sentinel://")):  # kombu's Redis transport, all
        return None
    options = app.conf.broker_transport_options or {}
    value = options.get("visibility_timeout", REDIS_VISIBILITY_TIMEOUT)
    # NaN passed every check against it (a comparison with NaN is False), and then cut no countdown
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise UsageError(
            f"broker_transport_options['visibility_timeout'] is a positive number of seconds, not {value!r:.40}"
        )
    return float(value)


def _backoff(base: float, attempt: int) -> float:
    """Seconds before trying a callback again after its ``attempt``-th failure, before jitter (the
    store's script computes it, so this is what install() checks against the visibility timeout)."""
    return float(min(CALLBACK_BACKOFF_CAP, base * 2.0 ** (attempt - 1)))


def _safe_url(url: str) -> str:
    """``url`` without its user name and password (``redis://:secret@host:6379/0`` → ``redis://host:6379/0``).
    An "@" after a "/", "?" or "#" is ambiguous (a password holding one, as an AWS secret key
    often does, or a query's): then nothing after the scheme is shown."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest and "@" not in re.split(r"[/?#]", rest, maxsplit=1)[0]:
        return f"{scheme}://..."
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:  # not a URL at all: say nothing of it
        return "<unparsable URL>"


def _poll(
    task: Any,
    message: dict[str, Any],
    client: Any,
    store: Store,
    local: WorkerPaces,
    grace: float,
    longest: float = math.inf,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """One hop: one round trip to claim it (and book the vendor's shared rate when it is paced),
    the status call, and a second round trip only when something changed (a throttle, the end,
    a next poll later than the claim said). Before the fleet's first throttle of the vendor, the
    call waits (asleep) for this process's slow start."""
    now = store.now()
    try:
        state, waiter, text = PollState.received(message, now)
    except UsageError as exc:  # not ours, or corrupt: nothing is claimed, sent or kept, and it is said once
        _log.warning("a videojobs.poll message that is not one of ours was dropped: %s", printable(exc.message))
        return "dropped: not a poll message of ours"
    delivery = task.request.delivery_info or {}
    tag = str(delivery.get("delivery_tag") or task.request.id)
    ttl = min(max(0.0, state.deadline - now), MAX_TIMEOUT) + JOB_TTL
    bound = next_due(state.policy)
    vendor = state.ref.partition(":")[0]
    claimed: Callable[[], Claim] | None = None
    later = 0.0
    if store.paces.get(vendor) is None and state.booked is None:
        now, later = _slow_start(store, local, vendor, now, state.deadline, sleep)
    if later:  # its process's ramp still says later (many polls of one process at once): back to the broker
        claim = store.poll(state.ref, state.hop, tag, ttl=ttl, grace=grace, message=text, due=now + bound,
                           vendor=vendor, now=now, booked=None, reserve=False)  # fmt: skip
        if claim.code != Claim.RUN:
            return "duplicate" if claim.code == Claim.DUPLICATE else "already delivered"
        return _again(task, store, state, paced(state, min(later, state.deadline - now), None, None), bound, longest)
    if store.paces.get(vendor) is None and state.booked is None and now < state.deadline:
        # not paced: nothing to wait for, so the claim's round trip goes on while the vendor answers
        # (a hop holding a slot asks the store: this process may not know of the pace yet)
        claimed = store.poll_meanwhile(state.ref, state.hop, tag, ttl=ttl, grace=grace, message=text,
                                       due=now + bound, vendor=vendor, now=now)  # fmt: skip
    else:
        claim = store.poll(state.ref, state.hop, tag, ttl=ttl, grace=grace, message=text,
                           due=now + bound, vendor=vendor, now=now, booked=state.booked, slot=state.slot,
                           at=state.rate, reserve=now < state.deadline)  # fmt: skip
        if claim.code != Claim.RUN:
            return "duplicate" if claim.code == Claim.DUPLICATE else "already delivered"
        if now >= state.deadline:
            return _finish(task, store, state, timed_out(state), ttl)
        if claim.wait > 0:  # the shared rate says later: come back when the booked slot is due
            # (at the deadline at the latest: that hop ends the wait)
            wait = min(claim.wait, state.deadline - now)
            again = paced(state, wait, claim.booked, now + claim.wait, claim.rate)
            return _again(task, store, state, again, bound, longest)
    sent, started = store.now(), local.clock()
    try:
        answer: Any = client.status(state.ref)
    except VideoJobsError as exc:
        answer = exc
    failure = answer if isinstance(answer, VideoJobsError) else None
    local.answered(vendor, failure, started, paced=store.paces.get(vendor) is not None)
    if claimed is not None and (code := claimed().code) != Claim.RUN:  # another delivery runs this hop
        return "duplicate" if code == Claim.DUPLICATE else "already delivered"
    if isinstance(answer, RateLimitError):
        now = store.now()
        store.throttled(vendor, now, measured=local.measured(vendor), sent=sent, retry_after=answer.retry_after)
    outcome = decide(state, store.now(), answer, waiter)
    if isinstance(outcome, Done):
        return _finish(task, store, state, outcome, ttl)
    if store.paces.get(vendor) is not None and outcome.countdown < longest:
        # paced: book the next call's slot now, so its hop calls the vendor when it comes (a poll due
        # later than the broker holds a message, past `longest`, books when it comes back)
        now = store.now()
        wait, booked, rate = store.book(vendor, now, ahead=True)
        slot = None if booked is None else now + wait
        wait = min(max(outcome.countdown, wait), max(outcome.countdown, state.deadline - now))  # the deadline ends it
        outcome = Again(
            attrs.evolve(outcome.state, booked=booked, slot=slot, rate=None if booked is None else rate), wait
        )
    return _again(task, store, state, outcome, bound, longest)


def _slow_start(
    store: Store, local: WorkerPaces, vendor: str, now: float, deadline: float, sleep: Callable[[float], None]
) -> tuple[float, float]:
    """Wait (asleep) until this process's slow start lets a call to ``vendor`` go, the fleet's pace
    is heard of meanwhile (the hop then books its slot), or the deadline comes (``now`` and
    ``deadline`` on the fleet's clock), for ``START_WAIT`` at most: ``(the time then, 0.0)``, or
    when the ramp still says later, a countdown for the hop to go back to the broker with (32
    threads of one process polling a vendor that answers 5xx, which grows no ramp, slept up to
    19 s each)."""
    slept = 0.0
    with local.waiting(vendor):
        while now < deadline and store.paces.get(vendor) is None and (wait := local.wait(vendor)) > 0:
            if slept >= START_WAIT:
                # back in its turn: somewhere in the time the polls waiting here need at the ramp's
                # rate (each back in the ramp's next token's time was a hop a poll, 500 threads
                # of a gevent pool 493 of them a second against a vendor down)
                return now, wait + random.random() * local.backlog(vendor)
            sleep(nap := min(wait, deadline - now, START_WAIT - slept))
            slept += nap
            now = store.now()
    return now, 0.0


def _listen_for_cuts(
    resources: Callable[[], tuple[Any, Store, WorkerPaces]], sleep: Callable[[float], None] = time.sleep
) -> None:
    """A worker process's listener, on a thread of its own, for ever: hear the notices of vendors'
    first cuts (:class:`CutNotices`) and act on each (:func:`_heard_cut`). A subscription that
    fails (Redis away, a link gone deaf, a Redis user refused the channel) is said once as a
    WARNING (then at DEBUG) and made again, the wait doubling from ``PACE_REFRESH`` to
    ``NOTICE_RETRY_CAP`` while it keeps failing; the paces' refresh covers meanwhile."""
    failures = 0
    while True:
        notices = None
        try:
            _client, store, local = resources()
            notices = store.listen()
            while True:
                vendors = notices.heard(timeout=NOTICE_WAIT)
                failures = 0
                for vendor in vendors:
                    _heard_cut(store, local, vendor, store.now())
        except Exception:  # Redis away, a subscription gone deaf, or refused (an ACL): the refresh covers
            failures += 1
            _log.log(
                logging.WARNING if failures == 1 else logging.DEBUG,  # said once, not every second
                "hearing of the vendors' first cuts failed (each process reads the paces every %g s "
                "meanwhile; trying again, less often while it fails)",
                PACE_REFRESH,
                exc_info=True,
            )
        finally:
            if notices is not None:
                notices.close()
        sleep(min(NOTICE_RETRY_CAP, PACE_REFRESH * 2.0 ** min(failures - 1, 16)))


def _heard_cut(store: Store, local: WorkerPaces, vendor: str, now: float) -> None:
    """The notice of ``vendor``'s first cut came: its pace rules this process's calls from now on,
    and what this process saw accepted over the last second is added to the cut (its share of the
    rate the fleet was sending; the cut itself came from the reporter's share alone). A vendor this
    process never polled is not asked about (its first poll will learn), nor one whose slow start
    it left already (its own 429, or this notice heard before: a notice published again, by hand,
    costs nothing). Its pace read by the timer's refresh first does not count: the share goes in."""
    if vendor not in store.paces or not local.ramping(vendor):  # never polled here, or left its ramp already
        return
    fields = store.refresh_pace(vendor)
    if fields is None:
        return
    local.paced(vendor)
    measured = local.measured(vendor)
    if measured > 0 and now - float(fields["last_cut"]) < FIRST_BURST:
        store.share(vendor, now, measured=measured)


PUBLISH_RETRY = {"max_retries": 15, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}
"""Publishing rides out a broker that is away for up to half a minute (a Redis restart); past
that the task fails unacknowledged, and its message (or the job's noted one) is sent again."""
TRACK_PUBLISH_RETRY: Final = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.5, "interval_max": 1.0}
"""``track()`` runs in the caller's process, which would rather hear at once that the broker is away."""


def _publish_poll(task: Any, message: dict[str, Any], countdown: float) -> None:
    # argsrepr (what Flower and the logs show): the job and its hop, not Celery's saferepr of the
    # whole wait state, which cost a tenth of a poll's CPU
    shown = f"({str(message.get('ref'))!r}, hop {message.get('hop')})"
    task.app.send_task(POLL_TASK, args=(message,), countdown=countdown, retry=True, retry_policy=PUBLISH_RETRY,
                       argsrepr=shown, kwargsrepr="{}")  # fmt: skip


def _again(task: Any, store: Store, state: PollState, again: Again, bound: float, longest: float) -> str:
    # a message held past the broker's visibility timeout is delivered again, and each copy would
    # call the vendor (a policy's 2-hour delay, a Retry-After of a day; a queue of 200 jobs at a
    # vendor's 5 req/s is 40 s long, and behind a 5 s timeout each copy called the vendor again and
    # booked a slot it never used): the next poll comes sooner. A hop that holds a booked slot of the
    # vendor's shared rate keeps it: back before it, it hears the time left and is sent on again.
    countdown = min(again.countdown, longest)
    if countdown > bound:  # later than the claim told the sweeper: tell it when
        store.due_later(state.ref, state.hop, store.now() + countdown)
    _publish_poll(task, again.state.to_message(), countdown)
    return f"next poll in {countdown:.2f} s"


def _publish_delivery(task: Any, ref: str, countdown: float = 0.0) -> None:
    task.app.send_task(DELIVER_TASK, args=(ref,), countdown=countdown or None, retry=True, retry_policy=PUBLISH_RETRY)


def _finish(task: Any, store: Store, state: PollState, done: Done, ttl: float) -> str:
    record = json.dumps({"on_done": state.on_done, "payload": done.payload})
    if not store.finishing(state.ref, record, ttl):
        return "already delivered"
    _publish_delivery(task, state.ref)
    return "done"


def _deliver(task: Any, ref: str, store: Store, settings: _Settings, client: Any) -> str:
    """Run the user's callback, once: its message is ours, so a lost one is swept and sent again.

    The callback comes from the job's record, never from the message: a forged ``deliver`` for a
    job with no callback due runs nothing and writes nothing. A callback task registered on this
    app runs here, in this task (``apply``, under this task's time limits): it is done when this
    message is acknowledged. One the app does not know is sent on (``apply_async``): its retries
    and time limits are its own app's."""
    delivery = task.request.delivery_info or {}
    tag = str(delivery.get("delivery_tag") or task.request.id)
    found = store.delivering(ref, tag, settings.grace, settings.attempts)
    if found.code == Delivery.NOTHING or found.payload is None:
        return "nothing to deliver"
    if found.code == Delivery.CAME_BACK:
        return _callback_failed(
            task,
            store,
            ref,
            tag,
            settings,
            "the callback did not end: its worker process was killed (at its time limit of "
            f"{settings.time_limit:g} s, or with its worker)",
        )
    if found.code == Delivery.EXHAUSTED:
        return _callback_failed(
            task, store, ref, tag, settings, "the callback's last attempt never ended (its worker process was killed)"
        )
    noted = json.loads(found.payload)
    if noted["on_done"] is not None:
        from celery import signature

        callback = signature(noted["on_done"], app=task.app)
        # one task id per job's callback: a run repeated after a crash (at least once, as any
        # acks_late task) is recognizable as the same callback by its id
        callback_id = f"videojobs-done-{ref}"
        if callback.task in task.app.tasks:
            try:
                callback.apply(args=(noted["payload"],), task_id=callback_id, throw=True)
            except Exception as exc:  # the user's code raised, or ran past its soft time limit: an attempt failed
                return _callback_failed(task, store, ref, tag, settings, _reason(exc, client))
        else:
            callback.apply_async((noted["payload"],), task_id=callback_id, retry=True, retry_policy=PUBLISH_RETRY)
    store.sent(ref)
    return "delivered"


def _reason(exc: BaseException, client: Any) -> str:
    """A failed callback's error as its record keeps it: type and message, the worker's API keys
    scrubbed, every control or bidi character shown as an escape, at most REASON_LIMIT characters."""
    from .._client import _Twin
    from .._scrub import LOG_SCRUBBER

    try:
        message = str(exc)
    except Exception:  # the user's exception cannot even say what it is
        message = "<its message could not be read>"
    if isinstance(exc, _soft_time_limit()):  # its str() is "SoftTimeLimitExceeded()", which says nothing more
        message = "ran past its soft time limit"
    # the keys of this process's open clients, in every form the scrubber knows (as its log lines
    # are), and every key the worker's client would send: a process that only delivers callbacks
    # has opened no vendor, so no key of its client is among the open ones
    # (pieces too, in any case: "Incorrect API key provided: sk-proj-Ab3d...", as a log line's are)
    theirs = client._scrubber().keys() if isinstance(client, _Twin) else ()  # a Client or an AsyncClient
    text = LOG_SCRUBBER.scrub_all(f"{type(exc).__name__}: {message}", *theirs)
    text = printable(text)
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


def _soft_time_limit() -> type[BaseException]:
    from celery.exceptions import SoftTimeLimitExceeded

    exc: type[BaseException] = SoftTimeLimitExceeded
    return exc


def _callback_failed(task: Any, store: Store, ref: str, tag: str, settings: _Settings, reason: str) -> str:
    """One attempt of ``ref``'s callback failed: try again after a backoff, or record it as failed."""

    retries_left, attempts, countdown = store.callback_failed(
        ref,
        tag,
        reason,
        attempts=settings.attempts,
        backoff=settings.backoff,
        cap=CALLBACK_BACKOFF_CAP,
        jitter=random.random(),
    )
    if retries_left < 0:
        return "taken over by another delivery"
    if retries_left == 0:
        _log.warning(
            "callback of %s failed for good after %d attempts (see failed_callbacks()): %s",
            printable(ref),
            attempts,
            reason,
        )
        return "callback failed"
    _log.warning(
        "callback of %s failed (attempt %d of %d), trying again in %.1f s: %s",
        printable(ref),
        attempts,
        settings.attempts,
        countdown,
        reason,
    )
    _publish_delivery(task, ref, countdown)
    return "callback retried"


def _sweep(task: Any, store: Store, grace: float) -> int:
    """Send again what a broker lost: polls (and callbacks) overdue by more than ``grace``.

    A poll chain is overdue when its last claimed hop's ``due`` (when its next hop should have
    run at the latest) is ``grace`` past: that hop's message is sent again, and the delivery that
    runs it takes the quiet claim over. A chain that is not overdue is looked at again then."""
    now = store.now()
    resent = 0
    alive: dict[str, float] = {}
    for ref, record in store.overdue(now - grace):
        done = record.get(b"done")
        if done in (b"sending", b"delivering"):  # the callback's message was lost, or its worker died
            # (or its sender is still retrying the publish: a second message is harmless, as the
            # first delivery to run it claims it and the other finds it delivered or running)
            store.postpone(ref, now + grace)
            _publish_delivery(task, ref)
            resent += 1
        elif done is None and b"msg" in record:
            due = float(record.get(b"due", b"0"))
            if due > now - grace:  # its chain is alive (a poll claimed a hop since): look again then
                alive[ref] = due
                continue
            store.postpone(ref, now + grace)  # one resend per grace period, whoever runs it
            _publish_poll(task, json.loads(record[b"msg"]), 0.0)
            resent += 1
        else:
            store.forget(ref)
    store.look_again(alive)
    return resent


def _installed(app: Any) -> tuple[Any, _Settings]:
    from celery import current_app

    celery_app = app or current_app
    settings: _Settings | None = getattr(celery_app.tasks.get(POLL_TASK), "videojobs_settings", None)
    if settings is None:
        raise UsageError("call videojobs.celery.install(app) before track() (no videojobs.poll task on this app)")
    return celery_app, settings


_PRODUCERS: dict[tuple[int, str, str], Store] = {}


def _producer(settings: _Settings) -> Store:
    """The caller's side Store for ``settings`` (one per process: its connection pool is reused)."""
    key = (os.getpid(), settings.url, settings.prefix)
    if key not in _PRODUCERS:
        _PRODUCERS[key] = Store(connect_quickly(settings.url), settings.prefix)
    return _PRODUCERS[key]


def _unreachable(what: str, url: str, exc: BaseException) -> UnreachableError:
    return UnreachableError(f"{what} at {_safe_url(url)} did not answer: {type(exc).__name__}: {their_words(exc)}")


@contextlib.contextmanager
def _store_errors(url: str) -> Iterator[None]:
    """A task's Redis errors as typed ones naming the store: Redis away past the retries
    (:class:`UnreachableError`), or answering with an error of its own (:class:`StoreRefusedError`).
    The task then fails unacknowledged, and the sweeper sends its hop again once Redis is back."""
    import redis

    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise _unreachable("Redis (videojobs.celery's store)", url, exc) from exc
    except redis.exceptions.RedisError as exc:
        raise _refused("Redis (videojobs.celery's store)", url, exc) from exc


def _redis_said(exc: BaseException) -> BaseException | None:
    """The error Redis answered with (a ``ResponseError``: out of memory, read-only, no such DB)
    in ``exc`` or behind it; None when it did not answer."""
    import redis

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, redis.exceptions.ResponseError):
            return current
        current = current.__cause__ or current.__context__
    return None


def _refused(what: str, url: str, exc: BaseException) -> StoreRefusedError:
    return StoreRefusedError(f"{what} at {_safe_url(url)} refused: {type(exc).__name__}: {str(exc)[:300]}")


def track(
    ref: str,
    *,
    on_done: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
    policy: PollingPolicy | str | None = None,
    max_failed_polls: int = DEFAULT_MAX_FAILED_POLLS,
    app: Any = None,
) -> Any:
    """Start following ``ref``: its first poll is enqueued now. ``on_done`` (a Celery signature)
    is called once with the final status as JSON when the job ends, times out, or cannot be
    followed (a permanent error). Returns the first poll's ``AsyncResult``.

    A job is tracked once: ``track()`` of a ref that is already tracked, or that ended less than a
    day (``JOB_TTL``) after its deadline, raises :class:`AlreadyTrackedError` and changes nothing
    (to run more when it ends, call it from your callback). Redis or the broker unreachable:
    :class:`UnreachableError` within a few seconds, and nothing is left behind.

    The words are the clients': ``timeout`` is the whole wait in seconds (default one day, at most
    30 days), ``max_failed_polls`` the failed polls in a row that end it (default 10, as
    ``Client.wait``); one request's deadline is the ``request_timeout`` of the client factory.
    ``policy`` travels in each poll's message, so it is data: ``AdaptivePolicy(...)`` (the default),
    ``FixedPolicy(...)``, or ``"module:name"`` naming a policy object the workers import (a policy
    of your own class is refused: it cannot be put in a message). An error says which job
    (``error.ref``), as the clients' do.
    """
    from .._base import refer

    try:
        return _track(ref, on_done, timeout, policy, max_failed_polls, app)
    except VideoJobsError as exc:
        refer(exc, ref)
        raise


def _track(
    ref: str, on_done: Any, timeout: float, policy: PollingPolicy | str | None, max_failed_polls: int, app: Any
) -> Any:
    import redis

    from .._base import split_ref
    from .._wait import check_wait_args

    split_ref(ref)
    failed = max_failed_polls
    if timeout is None:  # a tracked job's wait always ends (its records expire after it)
        raise UsageError(f"a tracked job's timeout is seconds, at most 30 days ({MAX_TIMEOUT:.0f}), not None")
    checked = check_wait_args(check_seconds("timeout", timeout), failed)
    if checked is None or checked > MAX_TIMEOUT:  # None: never, past check_seconds (mypy's narrowing)
        raise UsageError(f"a tracked job's timeout is seconds, at most 30 days ({MAX_TIMEOUT:.0f}), not {timeout!r}")
    spec, signature = policy_spec(policy), _signature(on_done)
    celery_app, settings = _installed(app or getattr(on_done, "app", None))

    def first(started: float) -> tuple[dict[str, Any], str]:
        state = PollState.start(ref, started=started, timeout=checked, max_failed=failed, policy=spec,
                                on_done=signature)  # fmt: skip
        message = state.to_message()
        try:
            text = json.dumps(message)
        except (TypeError, ValueError, RecursionError) as exc:  # on_done's arguments: a datetime, a set, too deep
            raise UsageError(f"on_done's arguments must be JSON (it travels in every poll message): {exc}") from exc
        if len(text) > MAX_MESSAGE:
            raise UsageError(
                f"on_done makes each poll message {len(text):,} bytes, more than {MAX_MESSAGE:,}: it travels in "
                "every poll (and is kept in Redis): pass the callback an id, not the data"
            )
        return message, text

    first(time.time())  # what is wrong with the arguments is said before Redis is asked anything
    store = _producer(settings)
    errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
    once = call_mark()  # what untrack() checks: the record is still this call's
    try:  # noted first: the sweeper sends the first poll again if the broker loses it
        store.keep_clock()  # the job's deadline on the fleet's clock, Redis's, as the workers check it
        started = store.now()
        message, text = first(started)
        found = store.track(ref, text, started, checked + JOB_TTL, once=once)
    except errors as exc:
        raise _unreachable("Redis (videojobs.celery's store)", settings.url, exc) from exc
    except redis.exceptions.RedisError as exc:  # it answered, with an error: full, read-only, no such DB
        raise _refused("Redis (videojobs.celery's store)", settings.url, exc) from exc
    if found != "new":
        said = {"tracked": "tracked", "failed": "failed"}.get(found, "ended")
        what = {
            "tracked": "is already tracked: its callback is still to come",
            "failed": "was tracked and its callback failed (see failed_callbacks())",
        }.get(said, "was tracked and has ended: its callback was sent")
        raise AlreadyTrackedError(
            f"task {ref.partition(':')[2]} {what}; a job is tracked once (run more from its callback)",
            ref=ref,
            state=said,
        )
    from kombu.exceptions import OperationalError

    try:
        return celery_app.send_task(POLL_TASK, args=(message,), retry=True, retry_policy=TRACK_PUBLISH_RETRY)
    except (OperationalError, redis.exceptions.RedisError) as exc:
        with contextlib.suppress(redis.exceptions.RedisError):  # Redis went too: the sweeper sends
            store.untrack(ref, once)  # the noted first poll once it is back
        broker = str(celery_app.conf.broker_url or "")
        answered = _redis_said(exc)  # kombu wraps what Redis answered in an OperationalError
        if answered is not None:
            raise _refused("the broker", broker, answered) from exc
        raise _unreachable("the broker", broker, exc) from exc


def failed_callbacks(app: Any = None, *, limit: int = 100) -> list[FailedCallback]:
    """The jobs whose callback failed for good (its attempts ran out), newest first, at most
    ``limit``: kept for a day (``JOB_TTL``) after they failed. Each says why (the last attempt's
    error) and what the callback was to get, so it can be run again by hand."""
    import redis

    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise UsageError(f"limit must be a whole number >= 1, not {limit!r}")
    _app, settings = _installed(app)
    try:
        found = _producer(settings).failed(limit)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise _unreachable("Redis (videojobs.celery's store)", settings.url, exc) from exc
    except redis.exceptions.RedisError as exc:  # it answered, with an error: full, read-only, no such DB
        raise _refused("Redis (videojobs.celery's store)", settings.url, exc) from exc
    return [_failed_callback(ref, record) for ref, record in found]


def _failed_callback(ref: str, record: Mapping[bytes, bytes]) -> FailedCallback:
    try:
        noted = json.loads(record.get(b"payload", b"null"))
        result = noted.get("payload") if isinstance(noted, dict) else None
    except ValueError:
        result = None
    return FailedCallback(
        ref=ref,
        reason=record.get(b"error", b"").decode("utf-8", "replace"),
        attempts=int(record.get(b"attempts", b"0")),
        failed_at=_utc(record.get(b"failed_at", b"0")),
        result=result if isinstance(result, dict) else None,
    )


# --- persistence: what a Redis restart loses ---------------------------------------------------------


def persistence_problem(config: Mapping[str, str] | None, aof_enabled: bool | None) -> str | None:
    """What a restart of this Redis loses, or None when it keeps every write (append-only file).

    ``config``: its ``CONFIG GET appendonly`` and ``save`` (None where CONFIG is disabled);
    ``aof_enabled``: ``INFO persistence``'s ``aof_enabled`` (None when that was not asked either)."""
    lost = (
        "every job in flight: its record, its kept next poll, its deadline and its queued message (no callback, "
        "no error, no timeout callback ever comes for it)"
    )
    if config is not None:
        if config.get("appendonly", "").lower() == "yes":
            return None
        save = config.get("save", "").strip()
        if not save:
            return f"persists nothing (appendonly no, save ''): a restart loses {lost}"
        return (
            f"keeps snapshots only (appendonly no, save '{save}'): a restart loses what changed since the last "
            f"snapshot, {lost}"
        )
    if aof_enabled:
        return None
    if aof_enabled is False:
        return f"has no append-only file (CONFIG is disabled, so its snapshots are unknown): a restart may lose {lost}"
    return f"could not be asked whether it persists (CONFIG and INFO refused): a restart may lose {lost}"


def _warn_if_not_persistent(url: str) -> None:
    """At worker start: a WARNING when the Redis that holds the jobs' state does not persist."""
    import redis

    client = connect_quickly(url)
    config: dict[str, str] | None = None
    aof: bool | None = None
    try:
        try:
            answer = {**client.config_get("appendonly"), **client.config_get("save")}
            config = {str(k): str(v) for k, v in answer.items()}
        except redis.exceptions.ResponseError:  # CONFIG renamed or disabled (managed Redis): INFO says less
            try:
                aof = bool(int(client.info("persistence").get("aof_enabled", 0)))
            except redis.exceptions.ResponseError:
                aof = None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        _log.warning("could not ask Redis at %s whether it persists: %s", _safe_url(url), exc)
        return
    finally:
        client.close()
    problem = persistence_problem(config, aof)
    if problem:
        _log.warning("videojobs.celery: the Redis at %s %s", _safe_url(url), problem)
