"""Simulated jobs: a script per job id, and where the job stands at any moment.

Pure and deterministic: the same id (and seed) always gives the same script, so the
sandbox, the cassettes and the polling simulation (``scripts/bench.py``) agree.

The population follows what video vendors show: queue time ~ Exp(mean 8 s); run time
lognormal with median 90 s, clipped to 10 s - 20 min; progress a noisy S-curve in whole
percent; a third of the jobs sit at 99 % for up to a quarter of their run before the end.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Literal

import attrs

__all__ = ["FAULTS", "FILE_FAULTS", "Script", "Snapshot", "parse_id", "script_for"]

Outcome = Literal["succeeded", "failed", "canceled"]
Phase = Literal["queued", "running", "succeeded", "failed", "canceled"]

FAULTS = ("401", "404", "429", "500", "502", "520", "html", "malformed", "slow", "drop")
"""Faults a job can carry (``e<fault>x<count>``) or a request can ask for (``?fault=`` or ``X-Sandbox-Fault``)."""

FILE_FAULTS = ("drop", "slow", "expired", "html", "badlen", "norange")
"""What a job's file host can do wrong (``f<fault>``): drop the connection at ``drop_at`` of the
file on the first download, trickle, answer 403 as for an expired link, answer an HTML page with
200, promise more bytes than it sends, ignore Range (and send no ETag)."""

DEFAULT_FILE_SIZE = 256 * 1024
MAX_FILE_SIZE = 2**40
"""The largest video an id may ask for (``sz1024g``), bytes: a larger one's Content-Length was
more digits than HTTP servers send (a 500); a token past it is not an option."""
MAX_LINK_TTL = 1e9
"""The longest a link may be signed for (``ttl<s>``), seconds: 32 years. Past it, the expiry
promised in the answers was more digits than the file host reads (every download a 403)."""
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

QUEUE_MEAN = 8.0
RUN_MEDIAN = 90.0
RUN_SIGMA = 0.8
RUN_MIN, RUN_MAX = 10.0, 20 * 60.0
STALL_SHARE = 1 / 3


@attrs.frozen(kw_only=True)
class Script:
    """How one job unfolds, in simulated seconds from its creation."""

    queue: float
    run: float
    outcome: Outcome = "succeeded"
    stall: float = 0.0  # seconds at the end of the run spent at 99 %
    fail_at: float = 0.5  # fraction of the run at which a failing job fails
    video: bool = True  # a succeeded job carries a video
    wobble: float = 0.0  # the S-curve's noise phase
    pinned: str | None = None  # a vendor state this job always reports (for cassettes)
    faults: tuple[tuple[str, int], ...] = ()  # (fault, how many of the first polls get it)
    size: int = DEFAULT_FILE_SIZE  # bytes of the video file the file host serves
    file_faults: tuple[str, ...] = ()  # what the file host does wrong (FILE_FAULTS)
    drop_at: float = 0.6  # with the "drop" file fault: the share of the file sent before the connection drops
    link_ttl: float | None = None  # links are signed for this many (real) seconds from each status answer

    @property
    def total(self) -> float:
        """Seconds from creation to the end (success, failure or cancel)."""
        if self.outcome == "succeeded":
            return self.queue + self.run
        return self.queue + self.run * self.fail_at

    def fault_for_poll(self, poll: int) -> str | None:
        """The fault the n-th poll (1-based) gets, faults applying in order."""
        seen = 0
        for fault, count in self.faults:
            seen += count
            if poll <= seen:
                return fault
        return None


@attrs.frozen(kw_only=True)
class Snapshot:
    phase: Phase
    progress: float  # 0.0-1.0, whole percent
    elapsed: float  # simulated seconds since creation
    ended_at: float | None  # simulated seconds since creation when it ended


def _s_curve(x: float, wobble: float) -> float:
    """0 → 0, 1 → 1, slow start and end; monotone noise of a few percent."""
    x = x + 0.04 * math.sin(2 * math.pi * 3 * x + wobble) / (2 * math.pi * 3)  # derivative stays > 0
    x = min(1.0, max(0.0, x))
    k = 8.0
    lo, hi = 1 / (1 + math.exp(k / 2)), 1 / (1 + math.exp(-k / 2))
    return (1 / (1 + math.exp(-k * (x - 0.5))) - lo) / (hi - lo)


def snapshot(script: Script, elapsed: float) -> Snapshot:
    """Where the job stands ``elapsed`` simulated seconds after creation."""
    if elapsed >= script.total:
        phase: Phase = script.outcome
        progress = 1.0 if phase == "succeeded" else _progress(script, script.run * script.fail_at)
        return Snapshot(phase=phase, progress=progress, elapsed=elapsed, ended_at=script.total)
    if elapsed < script.queue:
        return Snapshot(phase="queued", progress=0.0, elapsed=elapsed, ended_at=None)
    return Snapshot(phase="running", progress=_progress(script, elapsed - script.queue), elapsed=elapsed, ended_at=None)


def _progress(script: Script, into_run: float) -> float:
    active = max(script.run - script.stall, 1e-9)
    if into_run >= active:
        return 0.99
    return min(0.99, math.floor(_s_curve(into_run / active, script.wobble) * 100) / 100)


def _rng(task_id: str, seed: int) -> random.Random:
    digest = hashlib.blake2b(f"{seed}:{task_id}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def random_script(rng: random.Random) -> Script:
    """A job drawn from the population the module docstring describes."""
    run = min(RUN_MAX, max(RUN_MIN, rng.lognormvariate(math.log(RUN_MEDIAN), RUN_SIGMA)))
    stall = rng.uniform(0, run / 4) if rng.random() < STALL_SHARE else 0.0
    return Script(
        queue=rng.expovariate(1 / QUEUE_MEAN),
        run=run,
        stall=stall,
        fail_at=rng.uniform(0.1, 0.9),
        wobble=rng.uniform(0, 2 * math.pi),
    )


def parse_id(task_id: str) -> dict[str, object]:
    """The options a job id spells out, as dash-separated tokens (other tokens are ignored).

    ``ok`` | ``fail`` | ``cancel``   the outcome (default: succeeded)
    ``q<s>`` ``d<s>``                queue and run seconds, e.g. ``q2``, ``d30.5``
    ``stall<s>``                     seconds at 99 % before the end
    ``novideo``                      succeeds with no URL and no video id
    ``at_<vendor state>``            always reports that state (e.g. ``at_preprocessing_finished``)
    ``e<fault>x<n>``                 the first n polls get the fault, e.g. ``e429x2``, ``e520x1``, ``edropx1``
    ``e<fault>``                     every poll gets the fault, e.g. ``e404``, ``e401``
    ``sz<n>[k|m|g]``                 the video file's size, e.g. ``sz200m`` (default 256 KiB)
    ``f<fault>``                     the file host's fault, e.g. ``fdrop`` (at 60 %), ``fdrop30`` (at 30 %), ``fhtml``
    ``ttl<s>``                       links are signed for s real seconds from each status answer
    """
    options: dict[str, object] = {}
    faults: list[tuple[str, int]] = []
    file_faults: list[str] = []
    for token in task_id.split("-"):
        if token in ("ok", "fail", "cancel"):
            options["outcome"] = {"ok": "succeeded", "fail": "failed", "cancel": "canceled"}[token]
        elif token == "novideo":
            options["video"] = False
        elif token.startswith("at_") and len(token) > 3:
            options["pinned"] = token[3:]
        elif token.startswith("stall") and _is_number(token[5:]):
            options["stall"] = float(token[5:])
        elif token[:1] in ("q", "d") and _is_number(token[1:]):
            options["queue" if token[0] == "q" else "run"] = float(token[1:])
        elif (size := re.fullmatch(r"sz(\d{1,12}(?:\.\d{1,6})?)([kmg]?)", token)) and (
            float(size[1]) * _SIZE_UNITS[size[2]] <= MAX_FILE_SIZE
        ):
            options["size"] = int(float(size[1]) * _SIZE_UNITS[size[2]])
        elif token.startswith("ttl") and _is_number(token[3:]) and float(token[3:]) <= MAX_LINK_TTL:
            options["link_ttl"] = float(token[3:])
        elif token.startswith("fdrop") and (token == "fdrop" or _is_number(token[5:])):
            file_faults.append("drop")
            if token != "fdrop":
                options["drop_at"] = min(1.0, float(token[5:]) / 100)
        elif token.startswith("f") and token[1:] in FILE_FAULTS:
            file_faults.append(token[1:])
        elif token.startswith("e"):
            fault, _, count = token[1:].partition("x")
            if fault in FAULTS:
                faults.append((fault, int(count) if count.isascii() and count.isdigit() else 1_000_000_000))
    if faults:
        options["faults"] = tuple(faults)
    if file_faults:
        options["file_faults"] = tuple(file_faults)
    return options


def _is_number(text: str) -> bool:
    if not text.isascii():
        return False  # float() reads other scripts' digits ("٣"); ids spell numbers in ASCII
    try:
        return math.isfinite(float(text)) and float(text) >= 0
    except ValueError:
        return False


def script_for(task_id: str, seed: int = 0) -> Script:
    """The script of a job id: what the id spells out, the rest drawn (seeded) from the population."""
    base = random_script(_rng(task_id, seed))
    options = parse_id(task_id)
    script = attrs.evolve(base, **options)  # type: ignore[arg-type]
    if "stall" not in options and script.stall > script.run / 4:
        script = attrs.evolve(script, stall=script.run / 4)
    return script
