"""The sandbox application: one ASGI app, served embedded (no port) or by uvicorn."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import decimal
import itertools
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import attrs
import httpx

from ._clock import LAST_SECOND, MAX_TIME_SCALE, MIN_TIME_SCALE
from ._files import FILE_HOST, FileAnswer, fixed, parse_path
from ._files import answer as file_answer
from ._jobs import FAULTS, Phase, Script, Snapshot, parse_id, script_for, snapshot
from ._spec import VendorSpec, installed_vendors, load

__all__ = ["Answer", "Sandbox"]

DEFAULT_KEY = "sk-sandbox"
_BAD_GATEWAY = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_MAINTENANCE = b"<!DOCTYPE html><html><head><title>Scheduled maintenance</title></head><body>Back soon.</body></html>"
_UNAVAILABLE = b"<html><head><title>503 Service Temporarily Unavailable</title></head><body>503</body></html>"


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # real seconds to wait before answering
    drop: bool = False  # cut the connection mid-answer


@dataclass
class Job:
    """A job the sandbox knows: its script and what happened to it."""

    vendor: str
    task_id: str
    script: Script
    created: float  # sandbox clock (real seconds) at creation
    created_unix: float  # the vendor's creation timestamp
    created_wall: float = 0.0  # Unix seconds, unscaled (Sandbox.wall) at creation: its file's Last-Modified
    polls: int = 0
    terminal_seen_at: float | None = None  # sandbox clock when a poll first answered a terminal state
    file_gets: int = 0  # downloads of its video the file host started
    file_bytes: int = 0  # bytes of its video the file host sent


MAX_RATE_LIMIT = 1e6
"""The fastest rate limit ``POST /sandbox/limits`` sets, requests per second (beyond, none to speak of)."""


class _Allowance:
    """A vendor's server-side rate limit: a token bucket with a one-second burst (the sandbox's own).

    ``take(now)`` spends a token and returns 0, or returns the seconds until one is free
    (a refused request spends nothing, as a real limiter's 429 does not)."""

    def __init__(self, rate: float, now: float) -> None:
        if not rate > 0:
            raise ValueError(f"a sandbox rate limit is requests per second > 0, not {rate!r}")
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = now
        self.lock = threading.Lock()

    def change(self, rate: float, now: float) -> None:
        """The limit from ``now`` on (a vendor raising or lowering its allowance): the bucket keeps the
        tokens it had by then, as many as the new one-second burst holds."""
        with self.lock:
            self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.rate)
            self.stamp = max(self.stamp, now)
            self.rate, self.capacity = rate, max(1.0, rate)
            self.tokens = min(self.tokens, self.capacity)

    def take(self, now: float) -> float:
        with self.lock:
            self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.rate)
            self.stamp = max(self.stamp, now)
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.rate


def _json_answer(status: int, body: Any) -> Answer:
    return Answer(status, json.dumps(body, separators=(",", ":")).encode(), {"content-type": "application/json"})


MAX_REQUEST_BODY = 64 * 1024
"""The largest request body the sandbox reads (a job's spec is a few hundred bytes): a larger one
is answered 413 (it was kept whole, growing quadratically: 200 MiB took a minute and 534 MB)."""

MAX_JOBS = 200_000
"""Jobs the sandbox keeps (``max_jobs``): about 170 MB of them. Past it, the job least recently
asked about is forgotten, if it was made from its id alone; asked about again, it plays again
from its start (its script is in its id). A job made by ``create()`` is never forgotten. Every id
is a job, so without a bound any client could grow the table until the process died."""
MAX_TASK_ID = 1024
"""The longest task id answered (as videojobs' client sends; no vendor's is near it): a longer
one is the vendor's 404, kept nowhere."""
MAX_RETRY_AFTER = 1e9
"""The longest ``retry_after`` (seconds: 32 years); a larger one is a mistake, and was sent as
``1e+300``, which no client reads as seconds."""


def _delta_seconds(seconds: float) -> str:
    """A Retry-After value: whole seconds, rounded up (RFC 9110 10.2.3: delta-seconds is digits).
    ``:g`` sent ``2e+06``, which clients read as nothing, and rounded 333333.4 down to 333333."""
    return str(math.ceil(seconds))


_SECONDS_OPTIONS = ("queue", "run", "stall")
_OUTCOMES = ("succeeded", "failed", "canceled")


def _check_options(options: Mapping[str, Any]) -> None:
    """A created job's Script fields, checked (ValueError): a job of the wrong types was kept and
    then failed every answer about it, and the job list, for the life of the server."""
    for name in _SECONDS_OPTIONS:
        value = options.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10**6:
            raise ValueError(f"{name} is seconds in [0, 1e6], not {value!r}")
    if options.get("outcome", "succeeded") not in _OUTCOMES:
        raise ValueError(f"outcome is one of {', '.join(_OUTCOMES)}, not {options['outcome']!r}")
    if not isinstance(options.get("video", True), bool):
        raise ValueError(f"video is true or false, not {options['video']!r}")
    for fault, count in options.get("faults", ()):
        if fault not in FAULTS:  # its id, spelled on another sandbox, would play without it
            raise ValueError(f"fault {fault!r} is none of {', '.join(FAULTS)}")
        if not 0 <= count <= 10**6:
            raise ValueError(f"fault {fault!r} is for a count of polls in [0, 1e6], not {count!r}")


_CONTROL_METHODS: dict[str, tuple[str, ...]] = {
    "/sandbox/health": ("GET",),
    "/sandbox/outage": ("POST",),
    "/sandbox/limits": ("POST",),
    "/sandbox/jobs": ("GET", "POST"),
    "/sandbox/reset": ("POST",),
}
"""The sandbox's own endpoints and the methods each takes (another: 405 with Allow)."""


def _count(fault: str, value: Any) -> int:
    """A fault's count of polls in ``POST /sandbox/jobs``: a whole number (2.9 was made 2, and
    ``true`` 1, each a job other than the one asked for)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"faults: {fault!r} is a count of polls, a whole number, not {value!r}")
    return value


class JobExists(ValueError):
    """``create()`` of a task id the sandbox has, with other options (``POST /sandbox/jobs``: 409)."""


class Sandbox:
    """All five vendors' status endpoints, simulated. See the package docstring for the id language."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        time_scale: float = 1.0,
        seed: int = 0,
        epoch: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        auto_create: bool = True,
        retry_after: float = 1.0,
        slow_seconds: float = 5.0,
        vendors: Iterable[str] | None = None,
        rate_limits: Mapping[str, float] | None = None,
        file_root: str = f"https://{FILE_HOST}",
        max_jobs: int = MAX_JOBS,
    ) -> None:
        if not MIN_TIME_SCALE <= time_scale <= MAX_TIME_SCALE:
            raise ValueError(f"time_scale must be in [{MIN_TIME_SCALE:g}, {MAX_TIME_SCALE:g}], not {time_scale!r}")
        if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1:
            raise ValueError(f"max_jobs must be a positive whole number, not {max_jobs!r}")
        if isinstance(retry_after, bool) or not isinstance(retry_after, (int, float)):
            raise ValueError(f"retry_after must be seconds in [0, {MAX_RETRY_AFTER:g}], not {retry_after!r}")
        if not 0 <= retry_after <= MAX_RETRY_AFTER:  # nan too
            raise ValueError(f"retry_after must be seconds in [0, {MAX_RETRY_AFTER:g}], not {retry_after!r}")
        self.max_jobs = max_jobs
        self.api_key = api_key
        self.time_scale = time_scale
        self.seed = seed
        self.clock = clock
        self.auto_create = auto_create
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self._start = clock()
        self._epoch = time.time() if epoch is None else epoch
        self.jobs: collections.OrderedDict[tuple[str, str], Job] = collections.OrderedDict()
        """Every job asked about, least recently asked first (a job never leaves it while it is
        asked about: a thread reading it sees every job it has)."""
        self._made: set[tuple[str, str]] = set()  # jobs made by create(): never forgotten
        self._forgettable: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        """The other jobs' keys, least recently asked first: the next to forget is the first."""
        self._forgotten_polls: dict[str, int] = {}  # the polls of jobs forgotten, per vendor
        self._lock = threading.Lock()
        self._closing = threading.Event()  # set by close(): the server is stopping
        self._counter = itertools.count(1)
        self.rate_limits = dict(rate_limits or {})
        self.file_root = file_root.rstrip("/")
        """Where the answers' video links point: the embedded file host, or ``<root>/files`` when served."""
        self._allowance: dict[str, _Allowance] = {v: _Allowance(r, clock()) for v, r in self.rate_limits.items()}
        self.throttled: dict[str, int] = dict.fromkeys(self.rate_limits, 0)
        """Requests each throttled vendor answered with 429 for being over its rate limit."""
        self.down_until: dict[str, float] = {}
        """Vendors in an outage (``POST /sandbox/outage``): every status request is a 503 until then."""
        self.refused: dict[str, int] = {}
        """Requests each vendor answered with 503 during its outages."""
        self.specs: dict[str, VendorSpec] = {v: load(v) for v in (installed_vendors() if vendors is None else vendors)}
        unknown = sorted(set(self.rate_limits) - set(self.specs))
        if unknown:  # a limit that would throttle nobody: a typo, most likely
            raise ValueError(f"rate_limits names no vendor of this sandbox: {unknown} (it has {sorted(self.specs)})")
        self._routes = sorted(
            ((self.path_prefix(v), v) for v in self.specs), key=lambda item: len(item[0]), reverse=True
        )

    def reset(self) -> None:
        """Start afresh, as a new sandbox with the same options would (``POST /sandbox/reset``): no
        jobs and no counts, outages over, every limit's bucket full, and the clock back at the start,
        so the vendors' timestamps start at ``epoch`` again. A suite that shares one served sandbox
        (``make record``) gives each test the same answers, whatever the tests before it took."""
        with self._lock:
            now = self.clock()
            self._start = now
            self.jobs.clear()
            self._made.clear()
            self._forgettable.clear()
            self._forgotten_polls.clear()
            self._counter = itertools.count(1)
            self._allowance = {v: _Allowance(r, now) for v, r in self.rate_limits.items()}
            self.throttled = dict.fromkeys(self.rate_limits, 0)
            self.down_until.clear()
            self.refused.clear()

    def set_limit(self, vendor: str, rate: float) -> None:
        """``vendor``'s rate limit from now on, requests per second (``POST /sandbox/limits``): a
        vendor that raises or lowers its allowance (a plan changed); one without a limit gets one."""
        if vendor not in self.specs:
            raise ValueError(f"no vendor {vendor!r} in this sandbox (it has {sorted(self.specs)})")
        if not 0 < rate <= MAX_RATE_LIMIT:
            raise ValueError(f"a sandbox rate limit is requests per second in (0, {MAX_RATE_LIMIT:g}], not {rate!r}")
        if (allowance := self._allowance.get(vendor)) is not None:
            allowance.change(rate, self.clock())
        else:
            self.throttled.setdefault(vendor, 0)
            self._allowance[vendor] = _Allowance(rate, self.clock())
        self.rate_limits[vendor] = rate

    # --- where each vendor lives ------------------------------------------------------------------

    @property
    def vendors(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def path_prefix(self, vendor: str) -> str:
        """The path before the task id, as on the vendor's real server (from its spec)."""
        spec = self.specs[vendor]
        return spec.server_path + spec.status_prefix

    def base_urls(self, root: str = "http://sandbox") -> dict[str, str]:
        """The base URL of every vendor on a sandbox served at ``root``."""
        root = root.rstrip("/")
        return {v: root + spec.server_path for v, spec in self.specs.items()}

    def api_keys(self) -> dict[str, str]:
        return dict.fromkeys(self.specs, self.api_key)

    def client_kwargs(self, *, asynchronous: bool = False) -> dict[str, Any]:
        """What a client needs to poll this sandbox embedded (no port, no key to set)::

            videojobs.Client(**sandbox.client_kwargs())
            videojobs.AsyncClient(**sandbox.client_kwargs(asynchronous=True))

        With the sandbox's clock when it is one a client can sleep on (a :class:`ScaledClock`),
        so that the client's waits play at the jobs' speed.
        """
        kwargs: dict[str, Any] = {
            "api_keys": self.api_keys(),
            "base_urls": self.base_urls(),
            "transport": self.transport() if asynchronous else self.sync_transport(),
        }
        if all(callable(getattr(self.clock, name, None)) for name in ("now", "sleep", "asleep")):
            kwargs["clock"] = self.clock
        return kwargs

    def close(self) -> None:
        """The server is stopping: every answer being sent ends now (a download being streamed is
        cut short, its connection closed; a ``slow`` answer is sent without its wait). A served
        sandbox calls it on Ctrl-C: uvicorn waits for open answers before it stops, and a slow
        download went on for as long as its file."""
        self._closing.set()

    # --- jobs -------------------------------------------------------------------------------------

    def wall(self) -> float:
        """Unix seconds, unscaled: what signed links expire by (as a client's clock reads them)."""
        return self._epoch + (self.clock() - self._start)

    def now(self) -> float:
        """Simulated seconds since the sandbox started."""
        return (self.clock() - self._start) * self.time_scale

    def _job(self, vendor: str, task_id: str, script: Script | None = None, *, keep: bool = True) -> Job:
        """The job, made now if it is new (and kept, unless ``keep`` is False: a file asked for
        by a job nobody polled is looked at, not remembered); the table keeps the most recently
        asked ``max_jobs``."""
        key = (vendor, task_id)
        with self._lock:
            return self._job_locked(key, script, keep=keep)

    def _job_locked(self, key: tuple[str, str], script: Script | None, *, keep: bool = True) -> Job:
        """:meth:`_job`, the lock held."""
        job = self.jobs.get(key)
        if job is not None:
            self.jobs.move_to_end(key)  # the most recently asked
            if key in self._forgettable:
                self._forgettable.move_to_end(key)
            return job
        created = self.clock()
        sim = (created - self._start) * self.time_scale
        stamp = min(self._epoch + sim, LAST_SECOND)
        wall = min(self._epoch + (created - self._start), LAST_SECOND)
        job = Job(key[0], key[1], script or script_for(key[1], self.seed), created, stamp, wall)
        if keep:
            self._keep(key, job)
        return job

    def _keep(self, key: tuple[str, str], job: Job) -> bool:
        """Into the table (the lock held), forgetting the least recently asked job made from its
        id alone when it is full (in O(1): those are kept in order apart); one made by create()
        is never forgotten (its options may not be in its id). False when only those are left:
        the job answers, and is not kept."""
        while len(self.jobs) >= self.max_jobs:
            if not self._forgettable:
                return False
            old, _ = self._forgettable.popitem(last=False)
            gone = self.jobs.pop(old)
            self._forgotten_polls[gone.vendor] = self._forgotten_polls.get(gone.vendor, 0) + gone.polls
        self.jobs[key] = job
        if key not in self._made:
            self._forgettable[key] = None
        return True

    def create(self, vendor: str, task_id: str | None = None, **options: Any) -> str:
        """Create a job now; return its ``"<vendor>:<id>"`` reference.

        ``options`` are Script fields (queue, run, outcome, stall, video, faults=(("429", 2),)).
        Without a task id, one is made that spells the options out, so that any sandbox
        (e.g. one replaying a recording) plays the same job; an id given whose own tokens say
        other options (``x-d30`` with ``run=60``) is refused (ValueError): replayed, it would
        play another job.
        """
        if vendor not in self.specs:
            raise ValueError(f"unknown vendor {vendor!r}; the sandbox serves {', '.join(self.specs)}")
        _check_options(options)
        if task_id is not None and (not isinstance(task_id, str) or not task_id or "/" in task_id):
            raise ValueError(f"a task id is a non-empty string without '/', not {task_id!r}")
        if task_id is None:
            task_id = f"sbx{next(self._counter)}-" + _spell(options)
        elif contradictions := _contradictions(task_id, options):  # its id, replayed, would play another job
            raise ValueError(f"the id {task_id!r} spells other options: {'; '.join(contradictions)}")
        if len(task_id) > MAX_TASK_ID:  # its every poll would be a 404
            raise ValueError(f"a task id is at most {MAX_TASK_ID} characters, not {len(task_id)}")
        script = attrs.evolve(script_for(task_id, self.seed), **options) if options else None
        key = (vendor, task_id)
        with self._lock:  # one step: two creates of one id with other options cannot both pass
            existing = self.jobs.get(key)
            if existing is not None and script is not None and existing.script != script:
                raise JobExists(f"{vendor}:{task_id} exists, with other options (its job plays on as it was made)")
            self._made.add(key)
            self._forgettable.pop(key, None)
            self._job_locked(key, script)
            if key not in self.jobs:
                self._made.discard(key)
                raise ValueError(f"the sandbox holds max_jobs ({self.max_jobs:,}) jobs, every one made by create()")
        return f"{vendor}:{task_id}"

    def job(self, ref: str) -> Job | None:
        vendor, _, task_id = ref.partition(":")
        return self.jobs.get((vendor, task_id))

    def ended_at(self, job: Job) -> float:
        """Sandbox clock time (real seconds) at which the job ends."""
        return job.created + job.script.total / self.time_scale

    def snapshot(self, job: Job) -> Snapshot:
        return snapshot(job.script, (self.clock() - job.created) * self.time_scale)

    # --- answering --------------------------------------------------------------------------------

    def route(self, raw_path: str) -> tuple[str, str] | None:
        for prefix, vendor in self._routes:
            if raw_path.startswith(prefix):
                rest = raw_path[len(prefix) :]
                if rest and "/" not in rest:
                    return vendor, unquote(rest)
        return None

    def handle(
        self, method: str, raw_path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes = b""
    ) -> Answer:
        """The answer to one request (pure apart from the jobs table and the clock)."""
        path = raw_path.split("?", 1)[0]
        if path.startswith("/sandbox/"):
            return self._own_api(method, path, body)
        routed = self.route(path)
        if routed is None:
            return _json_answer(404, {"error": f"no vendor endpoint at {path}"})
        vendor, task_id = routed
        if method != "GET":
            return Answer(405, b'{"error": "method not allowed"}', {"content-type": "application/json", "allow": "GET"})
        if not self._authorized(headers.get("authorization") or ""):
            return self._error(vendor, 401, "unauthorized", "invalid or missing API key")
        if vendor in self.down_until and self.clock() < self.down_until[vendor]:
            self.refused[vendor] = self.refused.get(vendor, 0) + 1
            return Answer(503, _UNAVAILABLE, {"content-type": "text/html"})
        if vendor in self._allowance and (wait := self._allowance[vendor].take(self.clock())) > 0:
            self.throttled[vendor] += 1
            return self._error(vendor, 429, "rate_limited", "too many requests", {"retry-after": _delta_seconds(wait)})
        if len(task_id) > MAX_TASK_ID or (not self.auto_create and (vendor, task_id) not in self.jobs):
            return self._error(vendor, 404, "task_not_found", "task not found")
        job = self._job(vendor, task_id)
        job.polls += 1
        fault = query.get("fault") or headers.get("x-sandbox-fault") or job.script.fault_for_poll(job.polls)
        if fault:
            answer = self._fault(vendor, job, fault)
            if answer is not None:
                return answer
        return self._status(vendor, job)

    def _authorized(self, credentials: str) -> bool:
        """``Bearer <the key>``; the scheme in any case (RFC 9110 11.1: auth schemes are
        case-insensitive; ``bearer`` was a 401), then one or more spaces."""
        scheme, _, token = credentials.partition(" ")
        return scheme.lower() == "bearer" and token.lstrip(" ") == self.api_key

    def file(self, host: str, raw_path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> FileAnswer | None:
        """The file host's answer, when the request is for a video file (else None)."""
        path = raw_path.split("?", 1)[0]
        if host.split(":")[0] != FILE_HOST:
            if not path.startswith("/files/"):
                return None
            path = path[len("/files") :]
        parsed = parse_path(path)
        if parsed is None:
            return fixed(404, "text/plain", b"no such file")
        vendor, task, n, older = parsed
        if older and (vendor, f"{task}-{n}") in self.jobs:  # <task>-<n>.mp4: the job, if there is one
            task, n = f"{task}-{n}", 0
        job = self.jobs.get((vendor, task))
        if job is None and self.auto_create and vendor in self.specs and len(task) <= MAX_TASK_ID:
            job = self._job(vendor, task, keep=False)  # kept below only when its file is served
        available = False
        if job is not None and job.script.video:
            pinned = self.specs[vendor].phases.get(job.script.pinned or "")
            if pinned is not None:  # a job pinned to a state word: its file exists if that word means done
                available = pinned == "succeeded"
            else:
                available = job.script.outcome == "succeeded" and self.snapshot(job).ended_at is not None
        if available and job is not None and (vendor, task) not in self.jobs:  # a file served: its job
            with self._lock:  # is kept (its file faults count its downloads); a 404 keeps nothing
                if (vendor, task) not in self.jobs:
                    self._keep((vendor, task), job)
            job = self.jobs.get((vendor, task), job)
        return file_answer(job if available else None, n, query, headers, self.wall())

    def _status(self, vendor: str, job: Job) -> Answer:
        spec = self.specs[vendor]
        snap = self.snapshot(job)
        word = spec.word(snap, job.script)
        if job.script.pinned in spec.phases:  # a word the vendor's spec does not list is free text
            word = job.script.pinned
            snap = _pinned(snap, spec.phases[word])
        if snap.ended_at is not None and job.terminal_seen_at is None:
            job.terminal_seen_at = self.clock()
        now_unix = min(self._epoch + self.now(), LAST_SECOND)
        ttl = job.script.link_ttl
        expires = None if ttl is None else int(self.wall() + ttl)
        body = spec.render(
            job.task_id, snap, word, job.created_unix, now_unix, job.script.video, self.file_root, expires
        )
        return _json_answer(200, body)

    def _error(
        self, vendor: str, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> Answer:
        out_status, payload = self.specs[vendor].render_error(status, code, message)
        hdrs = {"content-type": "application/json"} if payload else {}
        return Answer(out_status, payload, {**hdrs, **(headers or {})})

    def _fault(self, vendor: str, job: Job, fault: str) -> Answer | None:
        if fault == "401":
            return self._error(vendor, 401, "unauthorized", "invalid or missing API key")
        if fault == "404":
            return self._error(vendor, 404, "task_not_found", "task not found")
        if fault == "429":
            retry = _delta_seconds(self.retry_after)
            return self._error(vendor, 429, "rate_limited", "too many requests", {"retry-after": retry})
        if fault == "500":
            return _json_answer(500, {"message": "internal server error"})
        if fault == "502":
            return Answer(502, _BAD_GATEWAY, {"content-type": "text/html"})
        if fault == "520":
            return Answer(520, b"error code: 520", {"content-type": "text/plain"})
        if fault == "html":
            return Answer(200, _MAINTENANCE, {"content-type": "text/html"})
        if fault == "malformed":
            good = self._status(vendor, job)
            return Answer(200, good.body[: max(1, len(good.body) // 2)], good.headers)
        if fault == "slow":
            good = self._status(vendor, job)
            good.delay = self.slow_seconds
            return good
        if fault == "drop":
            return Answer(200, b'{"sta', {"content-type": "application/json", "content-length": "1000"}, drop=True)
        return None  # an unknown fault name is ignored

    def _own_api(self, method: str, path: str, body: bytes) -> Answer:
        allowed = _CONTROL_METHODS.get(path)
        if method == "HEAD" and allowed is not None and "GET" in allowed:
            method = "GET"  # RFC 9110 9.1: where GET is, HEAD is (a health probe's curl -I); the server sends no body
        if allowed is not None and method not in allowed:  # it was answered as if it were a GET
            return Answer(
                405,
                json.dumps({"error": f"{path} takes {' or '.join(allowed)}, not {method}"}).encode(),
                {"content-type": "application/json", "allow": ", ".join(allowed)},
            )
        if path == "/sandbox/health":
            return _json_answer(
                200,
                {
                    "ok": True,
                    "vendors": list(self.specs),
                    "faults": list(FAULTS),
                    "throttled": self.throttled,
                    "served": self._served(),
                    "refused": self.refused,
                },
            )
        if path == "/sandbox/outage" and method == "POST":
            try:
                spec = json.loads(body or b"{}")
                if not isinstance(spec, dict):
                    raise TypeError("an outage is a JSON object")
                vendor, seconds = str(spec["vendor"]), spec["seconds"]
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):  # "5", true: made 5, 1
                    raise TypeError(f"seconds is a number, not {seconds!r}")
                if vendor not in self.specs or not 0 <= seconds <= 86400:
                    raise ValueError(f"no vendor {vendor!r} or seconds not in [0, 86400]")
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                return _json_answer(400, {"error": f"bad outage: {type(exc).__name__}: {exc}"})
            self.down_until[vendor] = self.clock() + seconds
            return _json_answer(200, {"vendor": vendor, "down_for": seconds})
        if path == "/sandbox/limits" and method == "POST":
            try:
                spec = json.loads(body or b"{}")
                if not isinstance(spec, dict):
                    raise TypeError("a limit is a JSON object")
                vendor, rate = str(spec["vendor"]), spec["rate"]
                if isinstance(rate, bool) or not isinstance(rate, (int, float)):  # "5", true: made 5, 1
                    raise TypeError(f"rate is a number, not {rate!r}")
                self.set_limit(vendor, float(rate))
            except (ValueError, KeyError, TypeError, RecursionError) as exc:
                return _json_answer(400, {"error": f"bad limit: {type(exc).__name__}: {exc}"})
            return _json_answer(200, {"vendor": vendor, "rate": rate})
        if path == "/sandbox/jobs" and method == "GET":
            return _json_answer(200, {"jobs": [self.describe(j) for j in list(self.jobs.values())]})
        if path == "/sandbox/jobs" and method == "POST":
            try:
                spec = json.loads(body or b"{}")
                if not isinstance(spec, dict) or not isinstance(spec.get("faults") or {}, dict):
                    raise TypeError("a job is a JSON object, its faults an object of fault: count")
                vendor = spec.pop("vendor")
                faults = tuple((str(k), _count(k, v)) for k, v in (spec.pop("faults", None) or {}).items())
                options = {k: spec[k] for k in ("queue", "run", "outcome", "stall", "video") if k in spec}
                if faults:
                    options["faults"] = faults
                ref = self.create(vendor, spec.pop("id", None), **options)
            except JobExists as exc:
                return _json_answer(409, {"error": str(exc)})
            except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:  # int(1e400), [[[[...
                return _json_answer(400, {"error": f"bad job: {type(exc).__name__}: {exc}"})
            vendor, _, task_id = ref.partition(":")
            return _json_answer(201, {"vendor": vendor, "id": task_id, "ref": ref})
        if path == "/sandbox/reset" and method == "POST":
            self.reset()
            return _json_answer(200, {"reset": True})
        return _json_answer(404, {"error": f"no sandbox endpoint at {method} {path}"})

    def _served(self) -> dict[str, int]:
        """Status requests answered per vendor (throttled ones excluded)."""
        out: dict[str, int] = {vendor: self._forgotten_polls.get(vendor, 0) for vendor in self.specs}
        for job in list(self.jobs.values()):
            out[job.vendor] += job.polls
        return out

    def describe(self, job: Job) -> dict[str, Any]:
        snap = self.snapshot(job)
        return {
            "ref": f"{job.vendor}:{job.task_id}",
            "phase": snap.phase,
            "progress": snap.progress,
            "polls": job.polls,
            "ends_in": max(0.0, self.ended_at(job) - self.clock()),
            "file_gets": job.file_gets,
            "file_bytes": job.file_bytes,
            "script": attrs.asdict(job.script),
        }

    # --- ASGI -------------------------------------------------------------------------------------

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            _quiet_uvicorn()
            try:
                while True:
                    message = await receive()
                    if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    elif message["type"] == "lifespan.shutdown":
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            except asyncio.CancelledError:  # Ctrl-C: the loop ends before its shutdown message, and
                return  # uvicorn logged the cancellation as an "Exception in 'lifespan' protocol"
        if scope["type"] != "http":
            return
        _quiet_uvicorn()
        pieces: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            piece = message.get("body", b"")
            size += len(piece)
            if size <= MAX_REQUEST_BODY:
                pieces.append(piece)
            more = message.get("more_body", False)
        if size > MAX_REQUEST_BODY:  # read to its end (the connection stays usable), kept no further
            error = json.dumps({"error": f"a request body is at most {MAX_REQUEST_BODY} bytes"}).encode()
            head = [(b"content-type", b"application/json"), (b"content-length", str(len(error)).encode())]
            await send({"type": "http.response.start", "status": 413, "headers": head})
            await send({"type": "http.response.body", "body": error})
            return
        body = b"".join(pieces)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = (scope.get("raw_path") or quote(scope["path"]).encode()).decode("latin-1")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if (file := self.file(headers.get("host", ""), raw_path, query, headers)) is not None:
            await _send_file(file, send, receive, scope["method"], self._closing)
            return
        answer = self.handle(scope["method"], raw_path, query, headers, body)
        if answer.delay:
            await _pause(answer.delay, self._closing)
        out_headers = [(k.encode(), v.encode()) for k, v in answer.headers.items()]
        if "content-length" not in answer.headers:
            out_headers.append((b"content-length", str(len(answer.body)).encode()))
        if answer.drop:
            out_headers.append((b"x-sandbox-drop", b"1"))
        await send({"type": "http.response.start", "status": answer.status, "headers": out_headers})
        if answer.drop:  # its start, then the connection closes (quietly: _Cut)
            await send({"type": "http.response.body", "body": answer.body, "more_body": True})
            raise _Cut("the sandbox drops this answer here (its drop fault)")
        await send({"type": "http.response.body", "body": answer.body})

    # --- embedded transports ----------------------------------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        """An in-process async transport (no port): for ``videojobs.AsyncClient(transport=...)``."""
        return _EmbeddedTransport(self)

    def sync_transport(self) -> httpx.BaseTransport:
        """An in-process sync transport (no port): for ``videojobs.Client(transport=...)``."""

        def handler(request: httpx.Request) -> httpx.Response:
            file = self.file(
                request.url.host, request.url.raw_path.decode("ascii"), dict(request.url.params), request.headers
            )
            if file is not None:
                return httpx.Response(file.status, headers=file.headers, stream=_SyncFileStream(file, request))
            answer = self.handle(
                request.method,
                request.url.raw_path.decode("ascii"),
                dict(request.url.params),
                request.headers,
                request.content,
            )
            if answer.delay:
                time.sleep(answer.delay)
            if answer.drop:
                raise httpx.RemoteProtocolError("sandbox dropped the connection", request=request)
            return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

        return httpx.MockTransport(handler)


class _EmbeddedTransport(httpx.ASGITransport):
    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(app=sandbox)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sandbox: Sandbox = self.app  # type: ignore[assignment]
        file = sandbox.file(
            request.url.host, request.url.raw_path.decode("ascii"), dict(request.url.params), request.headers
        )
        if file is not None:  # streamed, never gathered whole (httpx's ASGITransport would)
            return httpx.Response(file.status, headers=file.headers, stream=_AsyncFileStream(file, request))
        try:
            response = await super().handle_async_request(request)
        except _Cut as exc:
            raise httpx.RemoteProtocolError("sandbox dropped the connection", request=request) from exc
        if response.headers.get("x-sandbox-drop"):
            raise httpx.RemoteProtocolError("sandbox dropped the connection", request=request)
        return response


class _SyncFileStream(httpx.SyncByteStream):
    def __init__(self, file: FileAnswer, request: httpx.Request) -> None:
        self.file, self.request = file, request

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for piece in self.file.body():
            sent += len(piece)
            yield piece
            if self.file.delay:
                time.sleep(self.file.delay)
        if self.file.drop_after is not None and sent >= self.file.drop_after:
            raise httpx.RemoteProtocolError("sandbox dropped the connection", request=self.request)


class _AsyncFileStream(httpx.AsyncByteStream):
    def __init__(self, file: FileAnswer, request: httpx.Request) -> None:
        self.file, self.request = file, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        for piece in self.file.body():
            sent += len(piece)
            yield piece
            # a turn of the loop a piece, as a socket's read gives: a cancellation (Ctrl-C, SIGTERM)
            # landed only when the whole file was written, a 3 GB file 6 s after the signal
            await asyncio.sleep(self.file.delay)
        if self.file.drop_after is not None and sent >= self.file.drop_after:
            raise httpx.RemoteProtocolError("sandbox dropped the connection", request=self.request)


class _Cut(Exception):
    """An answer the sandbox ends short on purpose (a drop fault, a server stopping): raised out
    of the ASGI app so that the server closes the connection mid-answer, and kept out of its
    error log (:class:`_Quiet`). A drop let h11 fail on the missing bytes, or raised
    ConnectionAbortedError: each wrote a traceback that looked like a crash."""


class _Quiet(logging.Filter):
    """uvicorn's error log without the sandbox's deliberate cuts, nor the cancellation of an
    answer by a stopping server: each was an "Exception in ASGI application" traceback that
    looked like a crash (the client sees what it should: a connection closed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, (_Cut, asyncio.CancelledError))


_QUIET = _Quiet()


def _quiet_uvicorn() -> None:
    """Put :data:`_QUIET` on uvicorn's error log, once (after uvicorn configured its logging)."""
    logger = logging.getLogger("uvicorn.error")
    if _QUIET not in logger.filters:
        logger.addFilter(_QUIET)


_CLOSING_TICK = 0.05
"""How often, in real seconds, a wait of an answer looks whether the server is stopping."""


async def _pause(seconds: float, closing: threading.Event, gone: asyncio.Event | None = None) -> None:
    """Wait ``seconds`` (real time), or less: until the server stops or the client goes away."""
    end = time.monotonic() + seconds
    while not closing.is_set() and not (gone is not None and gone.is_set()):
        left = end - time.monotonic()
        if left <= 0:
            return
        step = min(left, _CLOSING_TICK)
        if gone is None:
            await asyncio.sleep(step)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), step)


async def _send_file(
    file: FileAnswer,
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    method: str,
    closing: threading.Event | None = None,
) -> None:
    """Stream a file answer over ASGI; a drop ends the response short of its Content-Length. A
    client that goes away stops the stream, as a CDN's does (uvicorn takes the writes of a
    closed connection without a word: a slow file would go on for its whole length); so does a
    stopping server (``closing``: :meth:`Sandbox.close`), whose connection is closed."""
    closing = closing or threading.Event()
    headers = [(k.encode(), v.encode()) for k, v in file.headers.items()]
    if "content-length" not in file.headers:
        headers.append((b"content-length", b"0"))
    await send({"type": "http.response.start", "status": file.status, "headers": headers})
    if method == "HEAD":
        await send({"type": "http.response.body", "body": b""})
        return
    gone = asyncio.Event()

    async def watch() -> None:  # the request is read: what comes now is the client's disconnect
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.ensure_future(watch())
    sent = 0
    try:
        for piece in file.body():
            if gone.is_set():
                return
            if closing.is_set():
                raise _Cut("the server is stopping: this download ends here")
            sent += len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            if file.delay:
                await _pause(file.delay, closing, gone)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # its end is of no interest now
            await watcher
    if file.drop_after is not None and sent >= file.drop_after:
        raise _Cut("the sandbox drops this download here (its drop fault)")
    await send({"type": "http.response.body", "body": b""})


def _pinned(snap: Snapshot, phase: Phase) -> Snapshot:
    """A snapshot that agrees with a pinned vendor state."""
    progress = {"succeeded": 1.0, "queued": 0.0}.get(phase, 0.42)
    ended = snap.elapsed if phase in ("succeeded", "failed", "canceled") else None
    return attrs.evolve(snap, phase=phase, progress=progress, ended_at=ended)


def _plain(value: float) -> str:
    """A number as an id spells it: no exponent (its ``-`` split the token: ``d1e-05`` played
    another job), and every digit of the float (``:g`` spelled 30.1234567 as ``30.1235``)."""
    text = format(decimal.Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _contradictions(task_id: str, options: Mapping[str, Any]) -> list[str]:
    """The options that the id's own tokens say otherwise (``x-d30`` with ``run=60``): each
    name, what the id says, what was passed."""
    spelled = parse_id(task_id)
    out = []
    for name, value in options.items():
        said = spelled.get(name)
        if name == "faults" and said is not None:
            value = tuple((str(f), c) for f, c in value)
        if said is not None and said != value:
            out.append(f"{name}: the id says {said!r}, the options {value!r}")
    return out


def _spell(options: Mapping[str, Any]) -> str:
    """Options as id tokens (see ``parse_id``)."""
    tokens = []
    if "outcome" in options:
        tokens.append({"succeeded": "ok", "failed": "fail", "canceled": "cancel"}[options["outcome"]])
    for key, letter in (("queue", "q"), ("run", "d"), ("stall", "stall")):
        if key in options:
            tokens.append(f"{letter}{_plain(options[key])}")
    if options.get("video") is False:
        tokens.append("novideo")
    tokens += [f"e{fault}x{count}" for fault, count in options.get("faults", ())]
    return "-".join(tokens) or "job"
