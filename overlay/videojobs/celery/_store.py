"""What the workers share in Redis: who runs each poll, whether a job's callback went out, and
each vendor's pace. Every decision is one Lua script, so it is atomic across workers.

Keys (``<prefix>`` is ``videojobs`` unless ``install(..., prefix=)`` says otherwise), every one
with a TTL (each script that writes a key gives it one, so no message, however poisoned, leaves
a key that lives for ever):

- ``<prefix>:job:<ref>``    hash: the poll chain's current ``hop``, the delivery (``tag``) that
  claimed it and when, the ``next`` hop's message, and ``done`` (``sending`` with the callback's
  ``payload``, ``delivering`` while a worker runs it, then ``sent``, or ``failed`` with the last
  ``error`` once its attempts ran out), its callback's ``attempts``. Expires ``JOB_TTL`` after the
  job's deadline (a failed callback's, ``JOB_TTL`` after it failed).
- ``<prefix>:due``          sorted set: when each job's next poll (or callback) is due; what
  the sweeper reads to send again what a broker lost. Expires ``JOB_TTL`` after its last job's.
- ``<prefix>:failed``       sorted set: the jobs whose callback failed for good, by when; entries
  and the set expire after ``JOB_TTL``.
- ``<prefix>:rate:<vendor>`` hash: the shared rate (absent: no limit yet), token bucket, pause.
  Expires ``RATE_TTL`` after the vendor's last poll.
- ``<prefix>:sweep``        the sweeper's turn (``SET NX EX``).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Final

import attrs

__all__ = [
    "ADDITIVE_SHARE",
    "CUT",
    "JOB_TTL",
    "MIN_RATE",
    "RATE_TTL",
    "Delivery",
    "Store",
    "connect",
    "connect_quickly",
]

JOB_TTL: Final = 24 * 3600
"""Seconds a job's record outlives its deadline: a poll delivered again within a day (a broker
restoring unacknowledged messages) still finds it, and memory stays bounded (~150 bytes a job)."""

RATE_TTL: Final = 24 * 3600
"""Seconds a vendor's shared rate outlives its last poll: a vendor no worker asked for a day
starts again unlimited, as it would in a new process."""

CUT: Final = 0.7
"""Multiplicative decrease on a throttle, as the single-process rate control (botocore's beta)."""
ADDITIVE_SHARE: Final = 0.03
MIN_RATE: Final = 0.5
"""Growth after a cut: the rate rises by 3 % of itself (at least 0.25/s) per second of answers.
AIMD rather than CUBIC here: the state is a few numbers in a shared hash that any worker updates,
and at a vendor's few to few hundred requests per second the sawtooth costs a 429 or two a cycle."""

_KEEP = """
-- keep(key, ttl): the key lives at least ttl more seconds (a shared key outlives every job in it)
local function keep(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
"""

_TRACK = (
    _KEEP
    + """
-- the first track() of a job notes its first poll; any later one finds the record and says what it is
local done = redis.call('HGET', KEYS[1], 'done')
if done then return done end
if redis.call('EXISTS', KEYS[1]) == 1 then return 'tracked' end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'next', ARGV[1], 'next_hop', 0)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[4])
keep(KEYS[2], ttl)
return 'new'
"""
)

_UNTRACK = """
-- track() could not send the first poll: forget the job, unless its first poll already ran
if redis.call('HGET', KEYS[1], 'hop') or redis.call('HGET', KEYS[1], 'done') then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

_CLAIM = """
local key = KEYS[1]
local hop, tag, ttl, now, grace = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('HGET', key, 'done') then return 2 end
local current = tonumber(redis.call('HGET', key, 'hop') or '-1')
local take = hop > current
if hop == current then
  if redis.call('HGET', key, 'tag') == tag then return 1 end
  -- another delivery claimed this hop and went quiet for longer than any poll takes: it died
  take = now - tonumber(redis.call('HGET', key, 'claimed_at') or '0') > grace
end
if not take then return 0 end
redis.call('HSET', key, 'hop', hop, 'tag', tag, 'claimed_at', now)
redis.call('EXPIRE', key, ttl)
return 1
"""

_EXPECT = (
    _KEEP
    + """
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'next', ARGV[1], 'next_hop', ARGV[2])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[5])
keep(KEYS[2], ttl)
return 1
"""
)

_FINISHING = (
    _KEEP
    + """
if redis.call('HGET', KEYS[1], 'done') then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'done', 'sending', 'payload', ARGV[1], 'sending_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'next')
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[4])
keep(KEYS[2], ttl)
return 1
"""
)

_DELIVERING = """
-- {code, payload}: code n >= 1 runs the callback (its n-th attempt); -1: nothing to run (no such
-- job, sent, failed, or another delivery runs it now); -2: this same delivery came back, so its
-- run never ended (its process was killed); -3: the attempts ran out without a word from the last
local done = redis.call('HGET', KEYS[1], 'done')
if done ~= 'sending' and done ~= 'delivering' then return {-1, false} end
local tag, now, grace, most = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local payload = redis.call('HGET', KEYS[1], 'payload')
if done == 'delivering' then
  if redis.call('HGET', KEYS[1], 'dtag') == tag then return {-2, payload} end
  if now - tonumber(redis.call('HGET', KEYS[1], 'dat') or '0') < grace then return {-1, false} end
end
redis.call('HSET', KEYS[1], 'done', 'delivering', 'dtag', tag, 'dat', now)
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') >= most then return {-3, payload} end
return {redis.call('HINCRBY', KEYS[1], 'attempts', 1), payload}
"""

_CALLBACK_FAILED = (
    _KEEP
    + """
-- {1, attempts, delay}: try again in delay seconds; {0, attempts}: failed for good; {-1, 0}: not ours any more
if redis.call('HGET', KEYS[1], 'done') ~= 'delivering' or redis.call('HGET', KEYS[1], 'dtag') ~= ARGV[1] then
  return {-1, 0, '0'}
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
local most, base, cap, jitter = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local now, ttl, ref = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
redis.call('HSET', KEYS[1], 'error', ARGV[2])
redis.call('HDEL', KEYS[1], 'dtag', 'dat')
if attempts >= most then
  redis.call('HSET', KEYS[1], 'done', 'failed', 'failed_at', now)
  redis.call('HDEL', KEYS[1], 'sending_at')
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('ZREM', KEYS[2], ref)
  redis.call('ZADD', KEYS[3], now, ref)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
  return {0, attempts, '0'}
end
-- the backoff doubles with each failed attempt, plus up to half again at random
local delay = math.min(cap, base * 2 ^ (math.max(1, attempts) - 1)) * (1 + 0.5 * jitter)
redis.call('HSET', KEYS[1], 'done', 'sending', 'sending_at', now + delay)
redis.call('ZADD', KEYS[2], now + delay, ref)
keep(KEYS[2], ttl)
return {1, attempts, tostring(delay)}
"""
)

_SENT = """
-- all a finished job needs to keep is that it finished: late duplicates find 'sent' and stop
local ttl = redis.call('TTL', KEYS[1])
if ttl <= 0 then ttl = tonumber(ARGV[2]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'done', 'sent')
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

_POSTPONE = (
    _KEEP
    + """
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), ARGV[2])
keep(KEYS[1], tonumber(ARGV[3]))
return 1
"""
)

_ACQUIRE = """
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local pause = tonumber(redis.call('HGET', key, 'pause_until') or '0')
if now < pause then return tostring(pause - now) end
local ws = tonumber(redis.call('HGET', key, 'ws') or '0')
if now - ws >= 1 then
  redis.call('HSET', key, 'prev', redis.call('HGET', key, 'wc') or '0', 'ws', now, 'wc', 0)
end
redis.call('EXPIRE', key, tonumber(ARGV[1]))
local rate = tonumber(redis.call('HGET', key, 'rate') or '-1')
if rate < 0 then
  redis.call('HINCRBY', key, 'wc', 1)
  return '0'
end
local burst = math.max(1, rate)
local tokens = tonumber(redis.call('HGET', key, 'tokens') or tostring(burst))
local stamp = tonumber(redis.call('HGET', key, 'stamp') or tostring(now))
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
if tokens >= 1 then
  redis.call('HSET', key, 'tokens', tokens - 1, 'stamp', now)
  redis.call('HINCRBY', key, 'wc', 1)
  return '0'
end
redis.call('HSET', key, 'tokens', tokens, 'stamp', now)
return tostring((1 - tokens) / rate)
"""

_THROTTLED = """
local key = KEYS[1]
local retry_after, cut, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local last = tonumber(redis.call('HGET', key, 'last_cut') or '0')
if now - last >= 1 then
  local rate = tonumber(redis.call('HGET', key, 'rate') or '-1')
  local base = rate
  if rate < 0 then
    base = math.max(tonumber(redis.call('HGET', key, 'prev') or '0'), tonumber(redis.call('HGET', key, 'wc') or '0'))
  end
  local new = math.max(floor, base * cut)
  redis.call('HSET', key, 'rate', new, 'tokens', 0, 'stamp', now, 'last_cut', now, 'grown', now)
  redis.call('HINCRBY', key, 'cuts', 1)
end
if retry_after > 0 then
  local pause = tonumber(redis.call('HGET', key, 'pause_until') or '0')
  redis.call('HSET', key, 'pause_until', math.max(pause, now + retry_after))
end
redis.call('EXPIRE', key, tonumber(ARGV[4]))
return redis.call('HGET', key, 'rate')
"""

_ANSWERED = """
local key = KEYS[1]
local share, floor = tonumber(ARGV[1]), tonumber(ARGV[2])
local rate = tonumber(redis.call('HGET', key, 'rate') or '-1')
if rate < 0 then return '-1' end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local grown = tonumber(redis.call('HGET', key, 'grown') or tostring(now))
local step = math.min(1, math.max(0, now - grown))
redis.call('HSET', key, 'rate', rate + math.max(floor / 2, rate * share) * step, 'grown', now)
redis.call('EXPIRE', key, tonumber(ARGV[3]))
return tostring(rate)
"""


def connect(url: str) -> Any:
    """A Redis client for the workers, that rides out a restart: every command (our scripts are
    safe to repeat) is retried on a lost connection with backoff, about half a minute in all."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=20),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        socket_timeout=10,
        socket_connect_timeout=5,
    )


QUICK_CONNECT_TIMEOUT: Final = 1.5
QUICK_SOCKET_TIMEOUT: Final = 2.0
QUICK_RETRIES: Final = 1
"""The caller's side (``track()``, ``failed_callbacks()``) waits for Redis a few seconds, not
half a minute: a refused connection fails at once (then once more after 0.1 s), one that
hangs after 1.5 s per try; a command whose answer does not come, after 2 s per try (a Redis
answers in milliseconds)."""


def connect_quickly(url: str) -> Any:
    """A Redis client for the caller's side: an unreachable Redis is an error within seconds."""
    import redis
    from redis.backoff import ConstantBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        retry=Retry(ConstantBackoff(0.1), retries=QUICK_RETRIES),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        socket_timeout=QUICK_SOCKET_TIMEOUT,
        socket_connect_timeout=QUICK_CONNECT_TIMEOUT,
    )


@attrs.frozen
class Delivery:
    """What a delivery of a job's callback found: ``code`` (see ``_DELIVERING``) and the noted callback."""

    code: int
    payload: str | None

    RUN: ClassVar[int] = 1  # code >= RUN: run it, this is attempt number ``code``
    NOTHING: ClassVar[int] = -1
    CAME_BACK: ClassVar[int] = -2
    EXHAUSTED: ClassVar[int] = -3


class Store:
    """The scripts, bound to one Redis connection (``redis.Redis``), under one key prefix."""

    def __init__(self, redis: Any, prefix: str = "videojobs") -> None:
        self.redis, self.prefix = redis, prefix
        self.due = f"{prefix}:due"
        self.failed_index = f"{prefix}:failed"
        self._track = redis.register_script(_TRACK)
        self._untrack = redis.register_script(_UNTRACK)
        self._claim = redis.register_script(_CLAIM)
        self._expect = redis.register_script(_EXPECT)
        self._finishing = redis.register_script(_FINISHING)
        self._sent = redis.register_script(_SENT)
        self._delivering = redis.register_script(_DELIVERING)
        self._callback_failed = redis.register_script(_CALLBACK_FAILED)
        self._postpone = redis.register_script(_POSTPONE)
        self._acquire = redis.register_script(_ACQUIRE)
        self._throttled = redis.register_script(_THROTTLED)
        self._answered = redis.register_script(_ANSWERED)

    def _job(self, ref: str) -> str:
        return f"{self.prefix}:job:{ref}"

    def _rate(self, vendor: str) -> str:
        return f"{self.prefix}:rate:{vendor}"

    # --- the poll chain ---------------------------------------------------------------------------

    def track(self, ref: str, message: str, due: float, ttl: float) -> str:
        """Note a job's first poll, if the job is new: ``new``; else what it is (``tracked``, or
        its callback's state: ``sending``, ``delivering``, ``sent``, ``failed``), left as it was."""
        answer = self._track(keys=[self._job(ref), self.due], args=[message, due, max(60, int(ttl)), ref])
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    def untrack(self, ref: str) -> bool:
        """Forget a job whose first poll could not be sent (unless that poll ran after all)."""
        return bool(self._untrack(keys=[self._job(ref), self.due], args=[ref]))

    def claim(self, ref: str, hop: int, tag: str, ttl: float, grace: float) -> int:
        """1: this delivery runs the hop; 0: another delivery does (a duplicate: drop it);
        2: the job's callback is out (or going out)."""
        args = [hop, tag, max(60, int(ttl)), time.time(), grace]
        return int(self._claim(keys=[self._job(ref)], args=args))

    def expect(self, ref: str, hop: int, message: str, due: float, ttl: float) -> None:
        """The next hop's message, kept until it runs: the sweeper sends it again if it is lost."""
        self._expect(keys=[self._job(ref), self.due], args=[message, hop, due, max(60, int(ttl)), ref])

    def finishing(self, ref: str, payload: str, ttl: float) -> bool:
        """Note the callback before sending it (the sweeper resends one left 'sending'); False: noted already."""
        return bool(
            self._finishing(keys=[self._job(ref), self.due], args=[payload, time.time(), max(60, int(ttl)), ref])
        )

    def delivering(self, ref: str, tag: str, grace: float, attempts: int) -> Delivery:
        """Whether this delivery of the callback runs it (and which attempt it is), and the noted callback."""
        code, payload = self._delivering(keys=[self._job(ref)], args=[tag, time.time(), grace, attempts])
        return Delivery(int(code), payload.decode() if isinstance(payload, bytes) else None)

    def callback_failed(
        self, ref: str, tag: str, reason: str, *, attempts: int, backoff: float, cap: float, jitter: float
    ) -> tuple[int, int, float]:
        """An attempt of the callback failed: ``(1, n, delay)``: try again in ``delay`` seconds
        (``backoff`` doubled per failed attempt, at most ``cap``, plus ``jitter`` x half of it);
        ``(0, n, 0)``: that was the last of ``attempts``, the job's record says ``failed`` (kept
        ``JOB_TTL``) and the failed index has it; ``(-1, 0, 0)``: another delivery has it now."""
        keys = [self._job(ref), self.due, self.failed_index]
        args = [tag, reason, attempts, backoff, cap, jitter, time.time(), JOB_TTL, ref]
        again, made, delay = self._callback_failed(keys=keys, args=args)
        return int(again), int(made), float(delay)

    def sent(self, ref: str) -> None:
        self._sent(keys=[self._job(ref), self.due], args=[ref, JOB_TTL])

    def overdue(self, before: float, limit: int = 500) -> list[tuple[str, dict[bytes, bytes]]]:
        """Jobs whose next poll (or callback) should have happened before ``before``, with their records."""
        refs = self.redis.zrangebyscore(self.due, "-inf", before, start=0, num=limit)
        return [(ref.decode(), self.redis.hgetall(self._job(ref.decode()))) for ref in refs]

    def postpone(self, ref: str, until: float) -> None:
        self._postpone(keys=[self.due], args=[until, ref, JOB_TTL])

    def forget(self, ref: str) -> None:
        self.redis.zrem(self.due, ref)

    def sweep_turn(self, every: float) -> bool:
        """True for one worker in the cluster every ``every`` seconds."""
        return bool(self.redis.set(f"{self.prefix}:sweep", 1, nx=True, ex=max(1, int(every))))

    def failed(self, limit: int) -> list[tuple[str, dict[bytes, bytes]]]:
        """The latest ``limit`` jobs whose callback failed for good, newest first, with their records."""
        refs = [ref.decode() for ref in self.redis.zrevrange(self.failed_index, 0, max(0, limit - 1))]
        records = [(ref, self.redis.hgetall(self._job(ref))) for ref in refs]
        return [(ref, record) for ref, record in records if record.get(b"done") == b"failed"]

    # --- the vendors' shared rate -----------------------------------------------------------------

    def acquire(self, vendor: str) -> float:
        """0 to send now, or the seconds until the vendor's shared bucket has a token."""
        return float(self._acquire(keys=[self._rate(vendor)], args=[RATE_TTL]))

    def throttled(self, vendor: str, retry_after: float | None) -> None:
        self._throttled(keys=[self._rate(vendor)], args=[retry_after or 0, CUT, MIN_RATE, RATE_TTL])

    def answered(self, vendor: str) -> None:
        self._answered(keys=[self._rate(vendor)], args=[ADDITIVE_SHARE, MIN_RATE, RATE_TTL])

    def rate(self, vendor: str) -> float | None:
        """The vendor's shared rate in requests per second, None while there is no limit."""
        value = self.redis.hget(self._rate(vendor), "rate")
        return None if value is None else float(value)
