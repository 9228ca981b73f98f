"""Rate control per vendor, after AWS SDKs' adaptive retry mode (botocore ``retries/adaptive.py``).

No vendor's page states its rate limit, so no fixed guess is right: the client sends as fast as
its callers ask until a vendor throttles (429, or an envelope that says so), then paces that
vendor with a token bucket whose rate follows a CUBIC curve: cut to ``BETA`` of the rate it
was measured sending at, then grown back along a cubic towards (and past) the rate that was
throttled, so it settles just below the vendor's allowance and finds it again if it rises.
CUBIC rather than AIMD because it returns to the last good rate fast and probes past it
slowly (AIMD's linear climb takes minutes to recover a 20 req/s allowance at +1/s per RTT
when polls are seconds apart). A ``Retry-After`` pauses the whole vendor. Everything here is a
small pure part with the time passed in; ``AdaptiveRate`` composes them and is thread-safe.

- :class:`TokenBucket`: reserve a slot, get the seconds to wait for it (never blocks);
- :class:`CubicCalculator`: the rate after a throttle, and as successes go on;
- :class:`AcceptedRate`: what the vendor accepted over the last second;
- :func:`is_throttle`: whether an outcome is the vendor throttling;
- :class:`AdaptiveRate`: the per-vendor controller, with an optional hard ceiling;
- :class:`RetryBudget`: retries may add at most a share on top of first attempts (AWS's retry
  quota, gRPC's retry throttling): a dead vendor does not multiply the load.
- :class:`SharedPace`, :class:`PaceStore`, :class:`MemoryPaceStore`: one vendor's pace as plain
  numbers (the bucket's tokens, CUBIC's curve, the pause) behind a small store, so processes that
  share a vendor (``videojobs.celery``'s workers, with Redis as the store) run these same parts.
"""

from __future__ import annotations

import array
import bisect
import collections
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple, Protocol

from ._exceptions import RateLimitError, VideoJobsError

__all__ = [
    "AcceptedRate",
    "AdaptiveRate",
    "CubicCalculator",
    "MemoryPaceStore",
    "PaceStore",
    "RetryBudget",
    "SharedPace",
    "TokenBucket",
    "is_throttle",
]

BETA: Final = 0.85
"""CUBIC's multiplicative decrease: a cut keeps 0.85 of the rate. RFC 8312 and botocore keep 0.7
of the rate sent when the loss came, which overshot; here the base is the rate the vendor
accepted since the last cut (its allowance), so a smaller cut clears it: 0.7 left 5 requests of a
5 req/s allowance unused per cut (a 20-second bench run: 100 % of the allowance with 0.7,
101-103 % with 0.85, the same 429s)."""

SCALE_CONSTANT: Final = 0.4
"""CUBIC's C in requests/s^3 when no ``recovery`` time is given (RFC 8312 and botocore use 0.4)."""

CUBIC_RECOVERY: Final = 10.0
"""Seconds CUBIC takes back to the rate that was throttled (its ``K``), whatever that rate: the
curve then probes past it as slowly, about one 429 every ``2 K`` seconds. With botocore's fixed
C = 0.4, K is 1.5 s at 5 req/s and a slow vendor is probed every 3-4 s (5-6 429s in a 20-second
bench run, 5 %); K = 10 s gives one probe in about 20 s at any rate, and still finds an allowance
that doubled within 3 K (at 3 K the curve is at 1 + (1 - BETA) x 2^3 = 2.2 times the last rate)."""

SLOW_START_EXIT: Final = 0.5
"""The first cut (slow start's end) halves the rate, as TCP halves its window there (RFC 5681
section 3.1: ssthresh = FlightSize / 2): slow start overshoots by up to its last doubling, and a
limiter with a one-second burst lets up to twice its rate through in the second before the 429."""

MAX_PAUSE: Final = 300.0
"""The longest a vendor's Retry-After pauses every call to it, seconds. The call that got the
header still reads all of it (``RateLimitError.retry_after``, up to a day), but the pause the
client (or, in Redis, the fleet) keeps for the vendor stops after five minutes: a Retry-After
of hours (a daily quota, or a proxy that meant milliseconds) would otherwise stop every job of
that vendor for as long, without one request to see that it recovered. After it, the cut rate
lets a few calls through to ask again; a vendor still saying no pauses them again."""


def pause_for(retry_after: float | None) -> float:
    """The vendor-wide pause a throttle's ``retry_after`` asks for: at most :data:`MAX_PAUSE`."""
    return min(retry_after or 0.0, MAX_PAUSE)


MIN_RATE: Final = 0.5
"""The slowest a throttled vendor is polled, requests per second (botocore's minimum fill rate)."""

MAX_RATE_OVER_MEASURED: Final = 2.0
"""The rate never grows past twice what the vendor accepted over the last second (botocore); it is
not lowered by a quiet spell either, so waves of polls do not ramp up again from nothing."""

MEASURE_WINDOW: Final = 10.0
"""The rate a cut starts from is what the vendor accepted since the last cut, over at most this
many seconds: long enough to mean something at one poll every few seconds (a one-second count
reads 0 or 1 there, and cut a single job's pace to MIN_RATE), short enough to follow demand."""

CUT_INTERVAL: Final = 1.0
"""Seconds within which more throttles are the same congestion event, cut once (TCP cuts once per
round trip; vendors' limiters count per second, and a burst's 429s all come back within one)."""

START_RATE: Final = 4.0
"""Requests per second (and burst) before a vendor has throttled: TCP's initial window of up to
4 segments (RFC 5681 section 3.1). A single job (one poll a second at most) never waits on it."""

SLOW_START_MIN_ROUND: Final = 0.1
"""The shortest round of slow start, seconds. Each accepted answer adds 1/round requests per
second (as each ACK adds a segment to TCP's window), the round being the smoothed round trip but
not shorter than this. While callers keep the bucket busy the rate grows about as TCP's window
does, 1.8 times a round when the round is the round trip (TCP: 2) and e-fold (2.7 times) a round
when answers come back well within it, as over loopback. The floor is what keeps the first
throttle to one 429: the 429s at slow start's end are the vendor's burst times the growth in one
network round trip, e^(rtt/round) - 1; growing at the pace of a loopback round trip (1 ms) sends
a whole burst's worth, a 0.1 s round adds 1 % of the burst (under one 429 at a 20 req/s
allowance with a one-second burst) and still ramps from START_RATE to 10,000 req/s in under a
second. A vendor slower than that (a 300 ms round trip) sets the round."""

DEMAND_READING: Final = 4.0
"""Slow start reads demand (what caps its growth) over its last round, but over at least the time
this many answers take at the current rate: one answer in a 0.1 s round is no demand of 10 req/s
(a single job polling every second would grow the rate); START_RATE's worth, so at the start the
reading spans a second, as it always did before rounds followed the round trip."""

THROTTLED_GROWTH: Final = 1.0
"""The fastest a throttled vendor's rate grows back, e-folds a second: an upper bound on CUBIC's
growth under MAX_RATE_OVER_MEASURED (a waiting call sleeps until the soonest its slot can come)."""

GROWTH_STEP: Final = 0.001
"""Seconds between two of slow start's growth steps: each step adds ``1 / round`` for every answer
accepted since the last one (what growing at each answer adds) and takes one round-trip sample
(RFC 6298 takes one a round; TCP's window also grows per ACK batch). Reading demand and growing at
every answer cost 9.5 us of a poll's ~200 at 5,000 answers a second; a step a millisecond is far
inside any round (at least ``SLOW_START_MIN_ROUND``) and any vendor's limiter."""

SRTT_GAIN: Final = 0.125
"""The weight of each new round-trip sample in the smoothed round trip (RFC 6298's alpha, 1/8)."""


LONE_CALL_LEASE: Final = 120.0
"""Slow start paces bursts, not a lone caller: a call to a vendor with no other call of the client
in flight is let through before the first throttle (one caller at a time cannot burst: its pace is
its round trip, as one TCP segment in flight is never held back by the congestion window). A call
counts as in flight from its grant until its answer is observed, or for at most this long (a call
cancelled before its answer is never observed: 4x the default request timeout, so a leak only
makes the next lone call wait on the bucket for a while, never lets a burst through)."""

TOKEN_EPSILON: Final = 1e-9
"""A token short by this much (float rounding of the refill) is a whole one: otherwise the wait
for the rest can be too small to move a clock (2.8e-14 s at t = 1000 s), and callers spin."""


class TokenBucket:
    """Requests per second with a burst of ``capacity``; ``reserve(now)`` books a slot and says how long to wait."""

    __slots__ = ("_stamp", "_tokens", "capacity", "rate")

    def __init__(self, rate: float, now: float, capacity: float | None = None) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity if capacity is not None else rate)
        self._tokens = self.capacity
        self._stamp = now

    def set_rate(self, rate: float, now: float, *, drain: bool = False) -> None:
        """A new rate from ``now``; ``drain`` keeps at most one saved-up token: no burst into a vendor
        that just throttled, but the call it throttled retries once its ``Retry-After`` is out,
        not a whole token later (2 s at ``MIN_RATE``; botocore keeps up to a second's worth)."""
        self._refill(now)
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = min(self._tokens, 1.0 if drain else self.capacity)

    def reserve(self, now: float) -> float:
        self._refill(now)
        self._tokens -= 1.0  # below zero: a reservation, later callers queue behind it
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def take(self, now: float) -> float:
        """Spend a token if one is there (0.0), else the seconds until one will be; nothing is booked,
        so a caller that waits asks again (and sees any rate change made meanwhile)."""
        self._refill(now)
        if self._tokens >= 1.0 - TOKEN_EPSILON:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    @classmethod
    def restored(cls, rate: float, tokens: float, stamp: float, capacity: float | None = None) -> TokenBucket:
        """A bucket as a store kept it (``tokens`` at ``stamp``)."""
        bucket = cls(rate, stamp, capacity)
        bucket._tokens = min(bucket.capacity, tokens)
        return bucket

    @property
    def tokens(self) -> float:
        """Tokens at the last refill (what a store keeps, with that time: ``stamp``)."""
        return self._tokens

    @property
    def stamp(self) -> float:
        return self._stamp

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now


CUBIC_SPAN: Final = 1e6
"""Seconds either side of the curve's plateau its time is read within (11 days: past a shared
pace's one-day life in Redis, so no real curve meets it). A cut's time from a store set by hand
(``last_cut`` = -1e200) would otherwise overflow the cube (an OverflowError at every poll)."""


MIN_CUBIC_K: Final = 1e-3
"""The shortest time back to ``W_max`` a curve is read with, seconds (0 aside: no ``K``, ``C`` is
``scale``). The curves made here have ``K`` = CUBIC_RECOVERY (10 s; 20 s shared), or botocore's ``K`` from
``C`` = 0.4 (0.57 s at MIN_RATE); a shorter one is a number set by hand, and ``K``'s cube rounds
to 0 below about 1e-108 (a bare ZeroDivisionError at every poll of a fleet reading it)."""

MAX_SHARED_RATE: Final = 1e6
"""The fastest a shared pace (its ``W_max``, the rate it was cut to) may be, requests per second:
a thousand times any vendor's published status-call allowance (tens a second). A stored pace
above it was set by hand (``w_max`` = 1e308 made the curve, the bucket and every wait overflow)."""

SLOT_EARLY: Final = 0.05
"""Seconds before its booked slot a caller may come back and still send: a poll's countdown is
its slot's wait, but Celery's timer, and each worker's reading of the fleet's clock, are off by
milliseconds; earlier, it hears the time left (sent on again, it would have run a task for
nothing). A call 50 ms early is well within a limiter that counts over a second."""

CLOCK_SLACK: Final = MAX_PAUSE
"""Seconds a time another worker wrote into a shared pace (the bucket's ``stamp``, the last cut)
may lie ahead of this worker's clock (of a booking's start: a pause's end, which a pause stamps)
and still be taken as written. Further ahead, it came from a clock gone wrong (NTP keeps a fleet
within milliseconds; an hour ahead after a VM resumed) and is read as now: kept, it stopped the bucket refilling for every other worker, and made every 429
read as the same congestion, until their clocks reached it. Less far ahead, it is trusted: a
worker cannot tell a writer ahead from its own clock behind, and reading a stamp 5 s ahead as
now let a worker 5 s behind lower it at each booking, so the others refilled 5 s of tokens each
time (50 req/s went through a pace of 5); with the cut, one burst of 429s cut 20 times. So a
skew under five minutes is read as before (a worker ahead holds the bucket back by its lead,
and if it stops polling, until the others' clocks catch up), and only a clock gone wrong is
overruled (which then lets the others refill as they go: too fast, not stopped). Neither is
right for a fleet whose clocks differ, so ``videojobs.celery``'s workers write on one clock,
Redis's (``Store.now``: each one's offset from Redis's TIME, read at start and once a minute);
what is left for this rule is a clock that stepped since its worker's last reading."""


class CubicCalculator:
    """CUBIC's rate curve (RFC 8312 section 4.1, as botocore's CubicCalculator): ``error_received``
    cuts to ``beta`` of the rate, ``success_received`` grows back along
    ``W(t) = C (t - K)^3 + W_max``: concave up to the rate that was cut (``W_max``, reached ``K``
    seconds after the cut), flat around it, then convex past it.

    ``recovery`` fixes ``K`` rather than ``C`` (``C = W_max (1 - beta) / K^3``): the curve has the
    same shape at every rate, each probe past ``W_max`` is as gentle relative to it, and a vendor
    allowing 5 req/s is probed as rarely as one allowing 500. With ``recovery=None`` ``C`` is
    ``scale`` (botocore's 0.4 req/s^3: at 5 req/s it is back at ``W_max`` in 1.5 s and 100 % past
    it 2.3 s later, so a slow vendor is probed, and answers 429, every few seconds).
    """

    __slots__ = ("_k", "_last_fail", "_w_max", "beta", "recovery", "scale")

    def __init__(
        self,
        start: float,
        *,
        beta: float = BETA,
        scale: float = SCALE_CONSTANT,
        recovery: float | None = CUBIC_RECOVERY,
    ) -> None:
        self.beta, self.scale, self.recovery = beta, scale, recovery
        self._w_max = 0.0
        self._last_fail = start
        self._k = 0.0

    def error_received(self, current_rate: float, now: float) -> float:
        self._w_max = current_rate
        if self.recovery is None:
            self._k = ((self._w_max * (1 - self.beta)) / self.scale) ** (1 / 3)
        else:
            self._k = self.recovery
        self._last_fail = now
        return current_rate * self.beta

    def success_received(self, now: float) -> float:
        k = self._k
        cube = k**3  # 0.0 for a K below ~1e-108 (one set by hand): no K then, as for K = 0
        scale = self._w_max * (1 - self.beta) / cube if cube > 0 else self.scale  # C, from the curve's own points
        since = min(max(now - self._last_fail - k, -CUBIC_SPAN), CUBIC_SPAN)
        return scale * since**3 + self._w_max

    @classmethod
    def restored(cls, w_max: float, k: float, last_fail: float) -> CubicCalculator:
        """A curve as a store kept it (see :attr:`state`)."""
        cubic = cls(last_fail)
        cubic._w_max, cubic._k = w_max, k
        return cubic

    @property
    def state(self) -> tuple[float, float, float]:
        """``(w_max, k, last_fail)``: all the curve is."""
        return self._w_max, self._k, self._last_fail


class AcceptedRate:
    """Answers the vendor accepted (not throttles) over the last ``window`` seconds.

    botocore smooths the rate of all answers; with many calls in flight a burst's 429s come back
    as fast as its accepted answers, so the accepted count is the truer reading of the allowance.
    """

    __slots__ = ("_start", "_times", "window")

    def __init__(self, *, window: float = MEASURE_WINDOW) -> None:
        self.window = window
        # when each answer came, in order; those before _start have left the window. An array,
        # not a deque: bisecting a deque indexes it from an end (a deque is a list of blocks):
        # at 10,000 answers a second, recording one and reading the rate took 3.9 us, now 2.3
        self._times = array.array("d")
        self._start = 0

    def record(self, now: float) -> None:
        times = self._times
        if times and now < times[-1]:
            now = times[-1]  # threads that read the clock in one order and record in another: kept sorted
        times.append(now)
        self._prune(now)

    def _prune(self, now: float) -> None:
        times = self._times
        start = self._start
        if start < len(times) and times[start] <= now - self.window:
            start = bisect.bisect_right(times, now - self.window, start)
            if start > 1024 and 2 * start > len(times):  # drop what left the window, in one go
                del times[:start]
                start = 0
            self._start = start

    def rate(self, now: float, since: float = -math.inf, *, least: float = 1.0) -> float:
        """Answers per second after ``since`` (and within the window), over at least ``least`` seconds."""
        self._prune(now)
        times = self._times
        if since <= now - self.window:
            return (len(times) - self._start) / self.window
        return (len(times) - bisect.bisect_right(times, since, self._start)) / max(least, now - since)


class SlowStart:
    """The rate before a vendor's first throttle: TCP's slow start (RFC 5681 section 3.1) for a rate.

    It starts at ``start`` requests per second and each accepted answer adds ``1 / round`` to it
    (as each ACK adds a segment to TCP's window), ``round`` being the smoothed round trip (RFC 6298)
    but at least ``SLOW_START_MIN_ROUND``: while callers keep the bucket busy the rate grows 1.8-2.7 times
    every round. It never grows past ``MAX_RATE_OVER_MEASURED`` times what was accepted over the
    last round (nor falls below ``start`` for that): an idle or lightly used vendor's rate does
    not grow without bound (RFC 2861: no growth while the sender is application-limited), and a
    burst after a quiet spell ramps up again from there.
    """

    __slots__ = ("_srtt", "start")

    def __init__(self, *, start: float | None = None) -> None:
        self.start = START_RATE if start is None else start
        self._srtt: float | None = None

    @property
    def round(self) -> float:
        """Seconds in which the rate grows 1.8-2.7 times while busy (see SLOW_START_MIN_ROUND)."""
        srtt = self._srtt  # before the first answer: the shortest round (calls waiting then must not oversleep)
        return SLOW_START_MIN_ROUND if srtt is None else max(SLOW_START_MIN_ROUND, srtt)

    def round_trip(self, seconds: float) -> None:
        """One answer came ``seconds`` after its request was sent."""
        srtt = self._srtt
        self._srtt = seconds if srtt is None else srtt + SRTT_GAIN * (seconds - srtt)

    def grown(self, rate: float, accepted: float, answers: int = 1) -> float:
        """The rate after ``answers`` more accepted answers, ``accepted`` being the rate over the last round."""
        return min(rate + answers / self.round, max(rate, MAX_RATE_OVER_MEASURED * accepted))


class SlotWithdrawn(VideoJobsError):
    """Internal: the vendor throttled (or paused) between a call getting its slot and sending;
    the call asks for a new one. Never leaves a status call."""


def is_throttle(outcome: VideoJobsError | None) -> bool:
    """The vendor said to slow down: a 429, or an envelope whose code stands for one (a RateLimitError)."""
    return isinstance(outcome, RateLimitError)


class AdaptiveRate:
    """One vendor's pace on one client, shared by every call (thread-safe).

    ``acquire(now)`` → 0.0 when the call may send now (a token is spent), else the seconds to wait
    before asking again: nothing is booked ahead, so a cut or a pause applies to every waiting call
    at once (booking slots ahead at the old rate kept firing into the throttled vendor: in the
    simulation, 20 % of requests were 429s against 1.5 % this way). ``observe(now, outcome, sent)``
    after each answer.

    Until the vendor first throttles, :class:`SlowStart` ramps the rate up from ``START_RATE``
    (botocore sends unpaced until then, and every job's first poll went at once: 5-6 429s of a
    20-second run at 5 req/s). A throttle cuts to ``BETA`` of the rate the vendor was measured
    accepting since the cut before (or the start; over at most ``MEASURE_WINDOW``): against a
    token-bucket limiter that is its allowance, where the rate sent when the 429 came is above it
    by the probe (or slow start's overshoot), and a single job polling every second is cut to
    0.85 req/s, not to ``MIN_RATE``. :class:`CubicCalculator` grows it back. ``ceiling`` caps it throughout; ``adaptive=False`` keeps only the ceiling.

    ``fleet``: the caller is one process of many polling the vendor (``videojobs.celery``'s worker,
    before its fleet's first throttle): a call with no other of this process in flight is not
    alone at the vendor, so ``LONE_CALL_LEASE``'s rule does not let it through (a prefork worker
    has one call in flight at a time: every call would be lone, and nothing paced).
    """

    def __init__(self, now: float, *, ceiling: float | None = None, adaptive: bool = True, fleet: bool = False) -> None:
        self.ceiling = ceiling
        self.adaptive = adaptive
        self.fleet = fleet
        self.throttled = False  # the vendor has throttled us at least once: CUBIC paces it
        self.epoch = 0  # changes at every cut and pause: a slot granted before it is withdrawn
        self._pause_until = now
        self._last_cut = -math.inf
        self._since = now  # the last cut (or the start): the cut's base is measured from here
        self._slow_start = SlowStart()
        start = self._slow_start.start if adaptive else ceiling
        if start is not None and ceiling is not None:
            start = min(start, ceiling)
        self._bucket = TokenBucket(start, now) if start is not None else None
        self._cubic = CubicCalculator(now)
        # what the vendor accepted: over the last second (or round) the demand that caps growth,
        # since the last cut the allowance a cut starts from; one record an answer serves both
        self._accepted = AcceptedRate()
        self._next_step = -math.inf  # slow start's next growth step (GROWTH_STEP), and the answers since its last
        self._unread = 0
        self._in_flight: collections.deque[float] = collections.deque()  # when each granted call was let go
        self._lock = threading.Lock()

    @property
    def rate(self) -> float | None:
        """Requests per second this vendor is paced at now (None: not paced)."""
        return None if self._bucket is None else self._bucket.rate

    @property
    def growth(self) -> float:
        """The fastest this rate may grow now, in e-folds a second (an upper bound: a waiting call
        sleeps until the soonest its slot can come): slow start's one a round, or ``THROTTLED_GROWTH``."""
        if self.adaptive and not self.throttled:
            return 1.0 / self._slow_start.round
        return THROTTLED_GROWTH

    def acquire(self, now: float) -> float:
        with self._lock:
            pause = max(0.0, self._pause_until - now)
            if self._bucket is None:
                return pause
            in_flight = self._in_flight
            while in_flight and in_flight[0] <= now - LONE_CALL_LEASE:
                in_flight.popleft()  # granted long ago and never observed (cancelled): no longer in flight
            lone = not in_flight and not self.fleet
            if lone and self.adaptive and self.ceiling is None and not self.throttled and not pause:
                self._bucket.take(now)  # a lone call in slow start goes now (spending a token if there is one)
                wait = 0.0
            else:
                wait = pause + self._bucket.take(now + pause)
            if not wait:
                in_flight.append(now)
            return wait

    def observe(self, now: float, outcome: VideoJobsError | None, sent: float | None = None) -> None:
        """A call to the vendor ended at ``now`` (sent at ``sent``): ``outcome`` None for an answer the
        vendor gave (a status, or an error it meant), else the error. Only answers and throttles tell
        about the pace: a network error or a 5xx neither counts as accepted nor lets the rate grow."""
        with self._lock:
            if self._in_flight:
                self._in_flight.popleft()
            throttle = is_throttle(outcome)
            if not self.adaptive or (outcome is not None and not throttle):
                return
            bucket = self._bucket
            assert bucket is not None  # adaptive: paced from the start
            if throttle:
                assert isinstance(outcome, RateLimitError)
                self._throttle(now, outcome, sent, bucket)
                return
            accepted = self._accepted
            accepted.record(now)
            if not self.throttled:
                # within GROWTH_STEP of the last step, an answer counts at the next one; one read on a
                # clock earlier than the last step (another thread's reading, a clock set back) steps now
                self._unread += 1
                if self._next_step - GROWTH_STEP <= now < self._next_step:
                    return
                self._next_step = now + GROWTH_STEP
                slow = self._slow_start
                if sent is not None and now >= sent:
                    slow.round_trip(now - sent)
                span = min(max(slow.round, DEMAND_READING / bucket.rate), 1.0)  # at most the last second
                new = slow.grown(bucket.rate, accepted.rate(now, now - span, least=span), self._unread)
                self._unread = 0
            elif now - self._last_cut >= CUT_INTERVAL:  # grow back, once the cut has had a second to tell
                demand = accepted.rate(now, now - 1.0)  # the last second's
                new = min(self._cubic.success_received(now), max(bucket.rate, MAX_RATE_OVER_MEASURED * demand))
            else:
                return
            new = max(MIN_RATE, new)
            if self.ceiling is not None:  # the caller's hard ceiling last: below MIN_RATE too
                new = min(new, self.ceiling)
            if new != bucket.rate:  # held by demand most of the time: nothing to set
                bucket.set_rate(new, now)

    def _throttle(self, now: float, outcome: RateLimitError, sent: float | None, bucket: TokenBucket) -> None:
        if (pause := pause_for(outcome.retry_after)) and now + pause > self._pause_until:
            self._pause_until = now + pause
            self.epoch += 1
        self._unread = 0  # slow start's growth not yet applied: dropped, the vendor says the rate was enough
        if (sent is not None and sent < self._last_cut) or now - self._last_cut < CUT_INTERVAL:
            return  # the same congestion event: cut once
        measured = self._accepted.rate(now, self._since, least=CUT_INTERVAL)
        if not self.throttled:  # slow start's end: its last second is its fastest, and above the allowance
            measured = max(measured, self._accepted.rate(now, now - 1.0))
        base = max(MIN_RATE, min(measured, bucket.rate))
        new = self._cubic.error_received(base, now)
        if not self.throttled and bucket.rate > self._slow_start.start:
            new = base * SLOW_START_EXIT  # it ramped: the 429 is its overshoot
        new = max(MIN_RATE, new)
        if self.ceiling is not None:  # the caller's hard ceiling last: below MIN_RATE too
            new = min(new, self.ceiling)
        bucket.set_rate(new, now, drain=True)
        self._last_cut = self._since = now
        self.epoch += 1
        self.throttled = True


class RetryBudget:
    """Retries may add at most ``ratio`` of the first attempts of the last ``window`` seconds,
    plus ``floor`` (so a quiet vendor can still be retried). Thread-safe.

    AWS's retry quota and gRPC's retry throttling bound the same thing: when most calls fail,
    retrying them all only multiplies the load on a vendor that is already down.
    """

    def __init__(self, *, ratio: float = 0.2, window: float = 10.0, floor: int = 10) -> None:
        self.ratio, self.window, self.floor = ratio, window, floor
        self._firsts: collections.deque[float] = collections.deque()
        self._retries: collections.deque[float] = collections.deque()
        self.refused = 0
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        for times in (self._firsts, self._retries):
            while times and times[0] <= now - self.window:
                times.popleft()

    def first_attempt(self, now: float) -> None:
        with self._lock:
            firsts = self._firsts
            firsts.append(now)
            edge = now - self.window
            while firsts and firsts[0] <= edge:  # every call comes here: only its own deque, inline
                # (empty only on a clock so large that now - window == now: 1e20 ns, say)
                firsts.popleft()

    def allow_retry(self, now: float) -> bool:
        """True (and the retry counted) when the budget has room for one more retry."""
        with self._lock:
            self._prune(now)
            if len(self._retries) + 1 > self.floor + self.ratio * len(self._firsts):
                self.refused += 1
                return False
            self._retries.append(now)
            return True


SHARED_GROWTH: Final = 1.5
"""The most a shared pace's rate runs ahead of what the fleet sends (one process's is
``MAX_RATE_OVER_MEASURED``, botocore's 2). A fleet books its calls' slots ahead (so a hop that
must wait calls the vendor when it comes back), and until those slots come the vendor sees the
rate they were booked at (400 jobs at 5 req/s: 80 s of them): the rate grows along its curve
meanwhile with no 429 to check it. In the fleet simulation (``tests/pace_sim.py``, 1-8 workers,
5 and 20 req/s) 2x let the burst after a quiet minute through at up to twice the allowance (22 %
of its calls answered 429), 1.5x 9 %, and 1.25x made the steady state hunt (6 % 429s against 3 %)."""

SHARED_RECOVERY: Final = 2 * CUBIC_RECOVERY
"""A shared pace's ``K`` (:data:`CUBIC_RECOVERY` is one process's): seconds back to the rate last
throttled, so a fleet probes past it, and meets a 429, about every ``2 K``. A fleet's probe
costs more than one process's: the ``Retry-After`` it brings pauses every worker, and each poll
whose slot falls within the pause goes back to the broker for nothing. In the fleet simulation
(``tests/pace_sim.py``, 400 jobs, the sandbox's 1 s Retry-After) 20 s took the 429s from
0.5-2.5 % of calls to 0.3-1.4 % and the hops without a vendor call from 9-16 % to 3-14 %, the
allowance used staying at 96-99 %. It is slower to find an allowance the vendor raised: past
the rate last throttled the curve grows half as fast (a fleet follows a raise from 5 to 20 req/s
in 50-70 s, with 100 or 400 jobs queued; see ``SPARE_AHEAD``)."""

SPARE_AHEAD: Final = 1.0
"""The furthest ahead, seconds, a shared pace books a slot in the rate its queue leaves free (see
:meth:`SharedPace.book`). A queue's slots keep the rate they were booked at, and a rate grown since
has room between them: booked there, near the front, the vendor sees the rate the fleet holds
within a second, not when the queue's end comes (a queue of 80 s: a fleet of 400 jobs had not
followed a vendor's raise from 5 to 20 req/s 90 s later; 50-60 s with them, the curve's own pace).
A cut that comes meanwhile finds at most this much of them booked at the faster rate (each then
kept at the share the new rate is of it)."""

PROBE_AFTER: Final = 2 * SHARED_RECOVERY
"""Seconds a shared pace's queue must have been sent at its rate, with no cut and no pause, before
the slots among it go at the whole rate, past the last cut's (``floor``): its probe past ``w_max``
then reaches the vendor at once, not a queue later. Twice the curve's ``K``: the curve is past
``w_max`` by BETA's share of it, and the vendor has taken the rate back to it. Sooner, the fleet
probed every 10-15 s at 5 req/s with 400 jobs queued, where a queue's lag held it every 40-100 s
(1.6 % of calls answered 429 against 0.6 %, in ``tests/pace_sim.py``; with this, 1.6 % and 99 %
of the allowance against 96 %). Before it, slots among the queue fill it to the last cut's rate,
which the vendor took: after a raise's first cut, the queue's slots booked at the old rate held a
fleet of 400 jobs at 6 req/s of 20."""

PROBE_PAUSES: Final = 9
"""A probe's 429 brings its ``Retry-After``, which stops every worker: the whole rate goes to the
slots among the queue only after nine times the last pause's length too, so probing's pauses take
at most a tenth of the time (with a 30 s Retry-After, probing after 40 s halved the calls the
vendor took, in ``tests/pace_sim.py``)."""

FIRST_BURST: Final = 2 * CUT_INTERVAL
"""Seconds after a vendor's first cut within which another worker's 429 adds its share to it: the
burst's 429s come back within a round trip. One answered later (a slow vendor, a long timeout)
measured the rate since, which the cut already shapes (8 workers at 5 req/s: a share reported 30 s
late raised the rate held from 4.35 to 7.6)."""

MAX_SHARES: Final = 4096
"""The most characters of reporters a first cut keeps (hundreds of workers): past it, a worker
not noted may add its share twice, which only raises a cut the curve would grow to anyway."""

SENT_WINDOW: Final = 1.0
"""The time constant, seconds, of a shared pace's reading of what the fleet sends (an exponential
moving average of its booked slots): the second over which one process reads demand
(:class:`AdaptiveRate`; botocore smooths 0.5 s buckets by 0.8, about the same). The store sees
every paced call of every worker, so this, not one worker's count, is the fleet's send rate."""


def _one_more(average: float, at: float, now: float) -> tuple[float, float]:
    """An exponential moving average of events a second (``SENT_WINDOW``'s), read at ``at``, with
    one more at ``now``: the average and its new time. An event stamped before the last one (by a
    worker whose clock is behind) adds without decay; one further back than CLOCK_SLACK was
    stamped by a clock gone wrong (ahead), and the average goes on from this one."""
    gap = now - at
    decay = 1.0
    if gap >= 0:
        decay = math.exp(-gap / SENT_WINDOW)
        at = now
    elif gap < -CLOCK_SLACK:
        at = now
    return min(MAX_SHARED_RATE, average * decay + 1.0 / SENT_WINDOW), at


PROFILE_STEP: Final = 0.1
"""The change of rate, a share of it, that a shared pace's profile of its queue notes (see
:func:`_noted`): finer, more marks for the same rise (5 to 20 req/s: 15 marks at 10 %)."""

PROFILE_MARKS: Final = 16
"""The most marks a shared pace's profile of its queue keeps (see :func:`_noted`): past them, the
last is raised to the rate booked (read faster than some of its slots were booked at, the rate
left free between them is read smaller: fewer spare slots, never more)."""


_DECIMAL: Final = "0123456789.eE+- "
"""What a profile's text is made of (``%.17g``'s numbers): Python's ``float`` and Lua's ``tonumber``
read more (``1_0``, ``0x10``), and read it alike."""


def _profile(text: str) -> tuple[float, ...]:
    """A stored profile's marks, ``(due, rate, due, rate, ...)``: from ``due`` on, the queue's slots
    were booked at ``rate``. The store keeps them as text (``%.17g``, as its scripts write numbers);
    text no worker wrote (not pairs of finite numbers, a rate out of range, too many) reads as no
    marks, the queue as booked at the rate held (the store's scripts read it alike)."""
    parts = text.split()
    if len(parts) % 2 or len(parts) > 2 * PROFILE_MARKS or text.strip(_DECIMAL):
        return ()
    try:
        marks = tuple(float(part) for part in parts)
    except ValueError:
        return ()
    if not all(math.isfinite(x) for x in marks) or not all(MIN_RATE <= x <= MAX_SHARED_RATE for x in marks[1::2]):
        return ()
    return marks


def _text(marks: Iterable[float]) -> str:
    return " ".join(f"{x:.17g}" for x in marks)


def _booked_rate(marks: tuple[float, ...], due: float, fill: float) -> float:
    """The rate the queue's slots due at ``due`` were booked at (``fill`` for a queue no mark covers)."""
    rate = fill if not marks else marks[1]
    for i in range(0, len(marks), 2):
        if marks[i] > due:
            break
        rate = marks[i + 1]
    return rate


def _noted(marks: tuple[float, ...], due: float, rate: float, now: float) -> str:
    """The profile with a slot due at ``due`` booked at ``rate``: a mark where the rate changed by
    ``PROFILE_STEP`` or more (a queue's slots are booked in the order they are due), the marks
    of slots all due before ``now`` dropped, ``PROFILE_MARKS`` at most (past them, the last
    raised). As text, as a store keeps it."""
    kept = list(marks)
    while len(kept) >= 4 and kept[2] <= now:  # the next mark is due: the first covers nothing to come
        del kept[:2]
    if not kept or abs(rate - kept[-1]) > PROFILE_STEP * kept[-1]:
        if kept and due <= kept[-2]:  # not after the last mark: it is the last
            kept[-1] = rate
        elif len(kept) >= 2 * PROFILE_MARKS:
            kept[-1] = max(kept[-1], rate)
        else:
            kept += [due, rate]
    return _text(kept)


class Booking(NamedTuple):
    """What :meth:`SharedPace.book` answered: ``wait`` (0.0: send now), and the slot held: the
    ``cut`` it was booked at (None: nothing booked) and the ``rate`` it was booked at (what its
    caller shows when it comes back for it)."""

    wait: float
    cut: float | None
    rate: float


class SharedPace:
    """One vendor's pace as plain numbers, so a store can keep it anywhere: a dict in one process,
    a Redis hash for a fleet of workers (``videojobs.celery``). The arithmetic is the parts above:
    :class:`CubicCalculator` for the curve, :class:`TokenBucket` for the tokens, and the rules of
    :class:`AdaptiveRate`: the rate (``fill``) follows the curve but grows only while the fleet's
    own send rate (``sent``, counted as its calls go) is within ``SHARED_GROWTH`` of it, so a quiet spell
    does not leave a vendor's rate far above anything it accepted; a cut starts from what the
    fleet sent less its 429s (``refused``, counted as they are reported), not what the reporting
    worker did (its share). ``paced`` is False until the vendor first throttles: no shared limit
    until then (no store round trip for a vendor that never throttles; each worker process of
    ``videojobs.celery`` ramps up on its own); that first cut starts from the reporter's share,
    and each other worker's is added as it reports a 429 or hears of the cut (:meth:`share`)."""

    __slots__ = (
        "emptied",
        "fill",
        "k",
        "last_cut",
        "pause_until",
        "profile",
        "refused",
        "refused_at",
        "sent",
        "sent_at",
        "shares",
        "spare",
        "stamp",
        "thin",
        "tokens",
        "w_max",
    )

    FIELDS: Final = {"rate": "fill"}
    """The store's name of a field whose attribute is named otherwise (the hash's ``rate``)."""

    TEXT: Final = frozenset({"profile", "shares"})
    """The fields kept as text (every other one is a number)."""

    def __init__(
        self,
        *,
        w_max: float = 0.0,
        k: float = 0.0,
        last_cut: float = -math.inf,
        tokens: float = 0.0,
        stamp: float = 0.0,
        pause_until: float = 0.0,
        fill: float | None = None,
        sent: float | None = None,
        sent_at: float | None = None,
        shares: str = "",
        refused: float = 0.0,
        refused_at: float = 0.0,
        thin: float = 0.0,
        spare: float = 0.0,
        profile: str = "",
        emptied: float = 0.0,
    ) -> None:
        self.w_max, self.k, self.last_cut = w_max, k, last_cut
        self.tokens, self.stamp, self.pause_until = tokens, stamp, pause_until
        # a pace stored before these were kept: the rate it was cut to, and the cap it had (2 w_max)
        self.fill = max(MIN_RATE, w_max * BETA) if fill is None else fill
        self.sent = w_max if sent is None else sent
        self.sent_at = stamp if sent_at is None else sent_at
        self.shares = shares  # the first cut's reporters, " a b": each other one adds its share once
        self.refused, self.refused_at = refused, refused_at  # the fleet's 429s a second, as sent is counted
        self.thin = thin  # the count that keeps a share of the slots booked before the last cut: see :meth:`book`
        # the rates the queue's slots were booked at, from when each is due (see :func:`_profile`), and
        # the time of the last slot booked among them in the rate left free since (see :meth:`book`)
        self.profile, self.spare = profile, spare
        self.emptied = emptied  # the last time a booking found no queue, or one the fleet did not send at its rate

    @property
    def paced(self) -> bool:
        return self.last_cut > -math.inf

    def curve(self, now: float) -> float | None:
        """CUBIC's curve at ``now`` since the last cut, within ``MIN_RATE``-``MAX_SHARED_RATE`` (None:
        not paced): the most the rate may be (the store's scripts compute it alike, from the stored cut)."""
        if not self.paced:
            return None
        grown = CubicCalculator.restored(self.w_max, self.k, self.last_cut).success_received(max(now, self.last_cut))
        return max(MIN_RATE, min(grown, MAX_SHARED_RATE))

    def sent_rate(self, now: float) -> float:
        """What the fleet was sending at ``now``, requests per second (the average decayed to now)."""
        return self.sent * math.exp(-max(0.0, now - self.sent_at) / SENT_WINDOW)

    @property
    def floor(self) -> float:
        """The rate the last cut set (``BETA`` of its ``w_max``, each share of the first cut's added):
        the burst its bucket may save up (see :meth:`book`)."""
        return max(MIN_RATE, BETA * self.w_max)

    def rate(self, now: float) -> float | None:
        """Requests per second at ``now`` (None: not paced): the curve, but past ``w_max`` (what the
        vendor accepted when it last throttled, where the curve's return ends) no more than the
        rate held or ``SHARED_GROWTH`` times what the fleet sent, whichever is more. The return
        needs no calls to go on (it is where the vendor took them); probing past it does: a
        fleet back from a quiet spell books its queue at the rate the vendor last took, not at
        the rate held by the cut (slots keep the rate they were booked at: a queue of 80 s booked
        at 94 % of the allowance held the vendor there until its end)."""
        curve = self.curve(now)
        if curve is None:
            return None
        # never below the rate held (the curve only rises between cuts; the first cut's shares raise
        # the rate held with its w_max)
        return max(MIN_RATE, self.fill, min(curve, max(self.w_max, SHARED_GROWTH * self.sent_rate(now))))

    def reserve(
        self, now: float, booked: float | None = None, slot: float | None = None, *, ahead: bool = False
    ) -> float:
        """:meth:`book`'s wait alone (a slot booked before the last cut, which :meth:`book` is told
        the rate of, books again here)."""
        return self.book(now, booked, slot, ahead=ahead).wait

    def book(
        self,
        now: float,
        booked: float | None = None,
        slot: float | None = None,
        at: float | None = None,
        *,
        ahead: bool = False,
    ) -> Booking:
        """When this caller may send: 0.0 now, or the seconds until its booked slot (later callers
        queue behind it, so each wait is the one the bucket needs: a caller that waits it out sends
        without asking again), and what it holds (:class:`Booking`).

        ``booked``: this caller booked a slot at the cut ``last_cut`` was then, due at ``slot``, at
        the rate ``at``. While no cut came since, it sends at its slot, and a caller back before it
        (a broker holds a message for less than a long queue: its poll comes back sooner) hears the
        seconds left, its place kept. A slot booked before the last cut was booked at a rate faster
        than the vendor now takes, perhaps: of those, the share the rate now is of the rate each
        was booked at send at their slot (every other one at half the rate; ``thin`` counts them
        out evenly), and the rest book again. The vendor sees the rate of now, and only slots
        booked too fast go back to the broker, fewer as the rate grows back (a cut withdrew every
        slot once: each cut sent every poll of the queue back for nothing, 64 % of a throttling
        vendor's hops in ``make bench``). A slot within a pause is withdrawn (the pause paid it off).

        A queue's slots keep the rate they were booked at, and a rate grown since is booked behind
        them; the rate it leaves free between them is booked there too, near the front (see
        :meth:`_spare`, ``SPARE_AHEAD``): the vendor sees the rate held within a second, not when
        the queue's end comes (a fleet of 400 jobs had not followed a raise from 5 to 20 req/s 90 s
        later). The ``profile`` notes the rates the queue was booked at, from when each is due.

        A pause books behind its end (the bucket, paid off to it, starts there): its callers come
        back to their slot, not to the pause's end to queue then. A slot more than ``MAX_PAUSE``
        away is not booked (the queue holds at most that much): the answer is then ``MAX_PAUSE``,
        and the caller asks again after it. ``ahead``: the slot is for a call sent later, whatever
        the wait (a poll books its next one with its answer), and is counted as sent when it comes
        back for it; counted at booking too, each such call counted twice and the fleet's send
        rate read up to twice what the vendor saw."""
        if now < self.pause_until:  # at most MAX_PAUSE from now: set by a worker whose clock runs ahead,
            self.pause_until = min(self.pause_until, now + MAX_PAUSE)  # it is longer; kept so, not read so
        rate = self.rate(now)
        if rate is None:
            return Booking(max(0.0, self.pause_until - now), None, 0.0)
        paused = now < self.pause_until
        left = None  # the time left to its slot (None: no slot this pace booked, further than MAX_PAUSE)
        if slot is not None and math.isfinite(slot) and slot - now <= MAX_PAUSE:
            left = slot - now
        kept = self._kept(rate, booked, at, left is not None)
        if booked is not None and kept is not None:
            held = at if at is not None and MIN_RATE <= at <= MAX_SHARED_RATE else rate  # as it shows it again
            if left is not None and slot is not None and slot < self.pause_until:
                pass  # within a pause: withdrawn (the pause paid it off), booked again behind it
            elif left is not None and (left > SLOT_EARLY or paused):  # back before it: its place kept
                return Booking(left, booked, held)
            elif not paused:
                self.thin += kept
                if self.thin >= 1.0 - TOKEN_EPSILON:  # its slot came, and the rate keeps it
                    self.thin -= min(1.0, self.thin)
                    self._count(now)
                    return Booking(0.0, booked, held)
        start = self.pause_until if paused else now  # behind the pause, if one is on
        # a stamp further ahead was written by a clock gone wrong: refill from the start (from the
        # pause's end, which a pause stamps: read from now, a 5-minute pause was read as a clock
        # gone wrong by a caller a millisecond behind, and its bucket filled over the pause)
        stamp = self.stamp if self.stamp <= start + CLOCK_SLACK else start
        # the burst it may save up: the cut's rate, not the rate held, which grew with the fleet's
        # sends while slots booked at an older one held the vendor there (400 jobs at 5 req/s: 80 s
        # of them): after a quiet minute, a wave of polls went out at twice the allowance, 15 % of
        # its calls answered 429 (tests/pace_sim.py, with each worker's slow start)
        cap = max(1.0, self.floor)
        tokens = min(cap, self.tokens)
        if start > stamp:  # refilled at the rate held until now
            tokens, stamp = min(cap, tokens + (start - stamp) * self.fill), start
        if tokens >= 0 or SHARED_GROWTH * self.sent_rate(now) < self.fill:  # no queue, or one not sent
            self.emptied = start
        marks = _profile(self.profile) if tokens < 0 else None  # read once: for a slot among the queue's, or behind it
        if (
            marks is not None
            and (spare := self._spare(now, start, stamp - tokens / self.fill, rate, marks)) is not None
        ):
            self.spare = spare
            if spare <= now and not ahead:
                self._count(now)
            return Booking(max(0.0, spare - now), self.last_cut, rate)
        if tokens < 0:  # the queue booked ends where it was booked to end: a faster rate is for the slots
            tokens = tokens * (rate / self.fill)  # booked from now (repaid at it, new slots fell among the old)
        tokens -= 1.0  # below zero: a reservation, later callers queue behind it
        wait = start - now
        if tokens < 0:
            wait += -tokens / rate
        if wait > MAX_PAUSE:  # the queue is full: nothing booked, ask again then (as after a pause)
            return Booking(MAX_PAUSE, None, rate)
        if tokens < 0:  # a slot behind others: the rate it was booked at, noted
            self.profile = _noted(_profile(self.profile) if marks is None else marks, now + wait, rate, now)
        self.tokens, self.stamp, self.fill = tokens, stamp, rate
        if not wait and not ahead:
            self._count(now)
        return Booking(wait, self.last_cut, rate)

    def _spare(self, now: float, start: float, end: float, rate: float, marks: tuple[float, ...]) -> float | None:
        """A slot among the queue's, due before its ``end``, in the rate its slots leave free (they
        were booked at the rates the profile's ``marks`` note, perhaps slower than ``rate``): the next after
        the last one booked so (``spare``), within ``SPARE_AHEAD`` of ``start``. None: no room.
        The rate filled to is the last cut's (``floor``, which the vendor took), and the whole
        rate once the queue has been sent at it for ``PROBE_AFTER`` (and ``PROBE_PAUSES`` times
        the last pause) with no cut and no pause: the probe reaches the vendor at once."""
        quiet = now - max(self.last_cut, self.pause_until, self.emptied)
        target = (
            rate
            if quiet >= max(PROBE_AFTER, PROBE_PAUSES * (self.pause_until - self.last_cut))
            else min(rate, self.floor)
        )
        # one further ahead than SPARE_AHEAD was booked by a worker whose clock is ahead: no room
        # until this one's clock reaches it (read as none, each of two clocks 1.5 s apart booked at
        # its own now, over the other's: every booking sent at once); one further than CLOCK_SLACK
        # was booked by a clock gone wrong, and is read as none
        last = min(self.spare, start + SPARE_AHEAD) if self.spare <= start + CLOCK_SLACK else -math.inf
        under = _booked_rate(marks, max(start, last), self.fill)
        if target <= under:
            return None
        spare = max(start, last + 1.0 / (target - under))
        return spare if spare < min(end, start + SPARE_AHEAD) else None

    def _kept(self, rate: float, booked: float | None, at: float | None, slotted: bool) -> float | None:
        """The share of slots like it that a slot booked at the cut ``booked``, at the rate ``at``,
        keeps now the rate is ``rate``: 1.0 at the last cut (the rate has only grown since); at an
        earlier one, the rate now over the rate it was booked at, for a slot due within
        ``MAX_PAUSE`` (``slotted``). None: not a slot of this pace, booked again."""
        if booked is None:
            return None
        if booked == self.last_cut:
            return 1.0
        if not slotted or at is None or not 0 < booked < self.last_cut or not MIN_RATE <= at <= MAX_SHARED_RATE:
            return None
        return min(1.0, rate / at)

    def _count(self, now: float) -> None:
        """A call is sent at ``now``: the fleet's send rate, an exponential moving average of its
        sends (counted as they go, not as they are booked: slots booked ahead at an older rate are
        what the vendor sees meanwhile)."""
        self.sent, self.sent_at = _one_more(self.sent, self.sent_at, now)

    def refused_rate(self, now: float) -> float:
        """The 429s a second the fleet reported, averaged as :meth:`sent_rate` is (decayed to ``now``)."""
        return self.refused * math.exp(-max(0.0, now - self.refused_at) / SENT_WINDOW)

    def throttled(
        self, now: float, *, measured: float, sent: float | None, retry_after: float | None, reporter: str = ""
    ) -> bool:
        """The vendor throttled a call sent at ``sent``: pause it for ``retry_after``, and cut the rate
        (once per ``CUT_INTERVAL``; a call sent before the last cut is part of that congestion).
        ``measured``: the rate the reporter saw accepted, the cut's base when not paced yet.
        ``reporter``: who reports (a worker process), so that the first cut adds up the shares of
        the fleet: each other reporter of the same congestion adds its ``measured`` to the base
        once. True when the rate was cut (or the first cut raised). The bucket saves nothing up
        while the vendor is paused: after the pause, calls go at the rate, not at once."""
        self.refused, self.refused_at = _one_more(self.refused, self.refused_at, now)
        measured = min(max(measured, 0.0), MAX_SHARED_RATE) if math.isfinite(measured) else 0.0
        sent = sent if sent is not None and math.isfinite(sent) else None
        recent = self.last_cut <= now + CLOCK_SLACK  # a cut further ahead: written by a clock gone wrong
        if recent and ((sent is not None and sent < self.last_cut) or now - self.last_cut < CUT_INTERVAL):
            changed = self._add_share(now, measured, reporter)
        else:
            first = not self.paced
            self.cut(now, self.base(now, measured, sent))
            self.shares = f" {reporter or '-'}" if first else ""
            changed = True
        if (pause := pause_for(retry_after)) and now + pause > self.pause_until:
            self.pause_until = now + pause
            # the slots booked are paid off as time passes, to the pause's end (their callers come
            # back to a pause and book again); nothing is saved up past it
            self.tokens = min(0.0, self.tokens + max(0.0, self.pause_until - self.stamp) * self.fill)
            self.stamp = max(self.stamp, self.pause_until)
        return changed

    def share(self, now: float, *, measured: float, reporter: str) -> bool:
        """A worker heard of the vendor's first cut (``videojobs.celery``'s notice of it) and saw
        ``measured`` calls a second accepted over the last second: its share is added to the cut,
        once, within ``FIRST_BURST`` of it, as a reporter's of the burst's 429s is (a worker whose
        calls all went through was part of the fleet's rate too; with slow start, most are). It
        never cuts: a notice heard late, or of a pace already grown from its first cut, adds
        nothing. True when it was added."""
        measured = min(max(measured, 0.0), MAX_SHARED_RATE) if math.isfinite(measured) else 0.0
        if not self.paced or self.last_cut > now + CLOCK_SLACK:
            return False
        return self._add_share(now, measured, reporter)

    def _add_share(self, now: float, measured: float, reporter: str) -> bool:
        if not self.shares or not reporter or f" {reporter} " in f"{self.shares} ":
            return False
        if now - self.last_cut >= FIRST_BURST:  # an answer that came late: its share is of today's rate
            return False
        # the first cut, from one worker's share, and another worker's share of the same burst
        self.w_max = min(MAX_SHARED_RATE, self.w_max + measured)
        self.sent = min(MAX_SHARED_RATE, self.sent + measured)
        self.fill = max(self.fill, MIN_RATE, self.w_max * BETA)  # never lowered: slots are booked at it
        self.shares += f" {reporter}" if len(self.shares) < MAX_SHARES else ""
        return True

    def base(self, now: float, measured: float, sent: float | None = None) -> float:
        """The rate a cut at ``now`` starts from: what the vendor accepted of what the fleet was
        sending when the throttled call went at ``sent`` (no more than the rate it was paced at):
        the send rate read back from the last send counted, but over no longer than the call's own
        round trip, on the reporter's clock (a reporter 2 s ahead of the last counter read the
        fleet's rate as 2 s old and cut to MIN_RATE), less the 429s reported meanwhile (this one
        counted). Against a token-bucket limiter that is its allowance: cut from what was sent,
        a pace 40 % over it was cut 15 % a second, five cuts and their 429s to come under it.
        Before the vendor is paced nothing counted the fleet's calls, and it is ``measured``,
        what the reporting worker saw accepted (its share of the fleet's)."""
        current = self.rate(now)
        if current is None:
            return max(MIN_RATE, measured)
        since = max(0.0, now - self.sent_at)
        if sent is not None:
            since = min(since, max(0.0, now - sent))
        others = max(0.0, self.refused_rate(now) - 1.0 / SENT_WINDOW)  # the 429s before this one
        accepted = self.sent * math.exp(-since / SENT_WINDOW) - others
        return max(MIN_RATE, min(current, accepted))

    def cut(self, now: float, base: float) -> None:
        """Cut to ``BETA`` of ``base``: CUBIC's curve from there; nothing saved up (no burst into a
        vendor that just throttled); the fleet's send rate read on from ``base`` if it had none.
        The slots booked ahead are kept at the new rate (the new rate's share of the old, see
        :meth:`book`): the bucket owes that share of its queue."""
        first = not self.paced
        cubic = CubicCalculator(now, recovery=SHARED_RECOVERY)
        old, fill = self.fill, max(MIN_RATE, cubic.error_received(base, now))
        queue = self.tokens
        if now > self.stamp:  # the slots booked that are still ahead, at the rate they were booked at
            queue += (now - self.stamp) * old
        kept = 1.0 if first else min(1.0, fill / old)
        self.fill = fill  # the slots booked are kept at it, whatever rate each was booked at
        # each slot kept at the share the new rate is of its own: none sent faster than it
        marks: list[float] = []
        was = _profile(self.profile)
        for i in range(0, len(was), 2):
            if not marks or min(was[i + 1], fill) != marks[-1]:  # a mark where the rate changes
                marks += [was[i], min(was[i + 1], fill)]
        self.profile = _text(marks or (now, fill))
        self.w_max, self.k, self.last_cut = cubic.state
        self.tokens, self.stamp = 0.0 if first else min(0.0, queue) * kept, max(now, self.pause_until)
        if first:
            self.sent, self.sent_at = base, now

    @staticmethod
    def usable(fields: dict[str, float]) -> bool:
        """Whether a stored pace's numbers are ones :meth:`throttled` and :meth:`reserve` write (the
        Redis store's scripts apply the same rule): a finite ``w_max`` and ``rate`` (``fill``)
        within ``MIN_RATE``-``MAX_SHARED_RATE``, ``sent`` within 0-``MAX_SHARED_RATE``, ``k`` 0 or
        ``MIN_CUBIC_K``-``CUBIC_SPAN``, the ``tokens`` at most ``MAX_PAUSE`` of slots booked at the
        fastest the bucket goes (and no more than a full bucket of it). Absent fields are not judged."""
        if not all(math.isfinite(v) for v in fields.values()):
            return False
        w_max, k = fields.get("w_max", MIN_RATE), fields.get("k", 0.0)
        if not 0 <= w_max <= MAX_SHARED_RATE or not (k == 0 or MIN_CUBIC_K <= k <= CUBIC_SPAN):
            return False
        fill = fields.get("rate", MIN_RATE)
        if not MIN_RATE <= fill <= MAX_SHARED_RATE:
            return False
        if not all(0 <= fields.get(name, 0.0) <= MAX_SHARED_RATE for name in ("sent", "refused")):
            return False
        if not 0 <= fields.get("thin", 0.0) <= 1:
            return False
        # the bucket's capacity is the rate held (a pace stored before it was kept: 2 w_max at most)
        top = max(1.0, MAX_RATE_OVER_MEASURED * max(w_max, fill, MIN_RATE))
        return -top * MAX_PAUSE - 1 <= fields.get("tokens", 0.0) <= top

    def to_fields(self) -> dict[str, float | str]:
        return {self._stored(name): getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_fields(cls, fields: Mapping[str, float | str]) -> SharedPace:
        names = {cls._stored(name): name for name in cls.__slots__}
        values: dict[str, Any] = {
            names[field]: value if field in cls.TEXT else float(value)
            for field, value in fields.items()
            if field in names
        }
        return cls(**values)

    @classmethod
    def _stored(cls, name: str) -> str:
        return next((field for field, attribute in cls.FIELDS.items() if attribute == name), name)

    def __repr__(self) -> str:
        return f"<SharedPace paced={self.paced} w_max={self.w_max:g} fill={self.fill:g} last_cut={self.last_cut:g}>"


class PaceStore(Protocol):
    """Where vendors' :class:`SharedPace` lives, each change atomic: :class:`MemoryPaceStore` in one
    process; ``videojobs.celery``'s Redis store for a fleet (the reservation inside its per-poll script)."""

    def reserve(
        self, vendor: str, now: float, booked: float | None = None, slot: float | None = None, *, ahead: bool = False
    ) -> float:
        """:meth:`SharedPace.reserve` on the stored pace."""
        ...

    def book(
        self,
        vendor: str,
        now: float,
        booked: float | None = None,
        slot: float | None = None,
        at: float | None = None,
        *,
        ahead: bool = False,
    ) -> Booking:
        """:meth:`SharedPace.book` on the stored pace."""
        ...

    def throttled(
        self,
        vendor: str,
        now: float,
        *,
        measured: float,
        sent: float | None,
        retry_after: float | None,
        reporter: str = "",
    ) -> None:
        """:meth:`SharedPace.throttled` on the stored pace."""
        ...

    def share(self, vendor: str, now: float, *, measured: float, reporter: str = "") -> None:
        """:meth:`SharedPace.share` on the stored pace."""
        ...


class MemoryPaceStore:
    """A :class:`PaceStore` in a dict, for the threads of one process."""

    def __init__(self) -> None:
        self._paces: dict[str, SharedPace] = {}
        self._lock = threading.Lock()

    def pace(self, vendor: str) -> SharedPace:
        with self._lock:
            return self._paces.setdefault(vendor, SharedPace())

    def reserve(
        self, vendor: str, now: float, booked: float | None = None, slot: float | None = None, *, ahead: bool = False
    ) -> float:
        return self.book(vendor, now, booked, slot, ahead=ahead).wait

    def book(
        self,
        vendor: str,
        now: float,
        booked: float | None = None,
        slot: float | None = None,
        at: float | None = None,
        *,
        ahead: bool = False,
    ) -> Booking:
        pace = self.pace(vendor)
        with self._lock:
            return pace.book(now, booked, slot, at, ahead=ahead)

    def throttled(
        self,
        vendor: str,
        now: float,
        *,
        measured: float,
        sent: float | None,
        retry_after: float | None,
        reporter: str = "",
    ) -> None:
        pace = self.pace(vendor)
        with self._lock:
            pace.throttled(now, measured=measured, sent=sent, retry_after=retry_after, reporter=reporter)

    def share(self, vendor: str, now: float, *, measured: float, reporter: str = "") -> None:
        pace = self.pace(vendor)
        with self._lock:
            pace.share(now, measured=measured, reporter=reporter)
