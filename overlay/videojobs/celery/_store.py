"""What the workers share in Redis: who runs each poll, whether a job's callback went out, and
each vendor's pace. Every decision is one Lua script, so it is atomic across workers.

Keys (``<prefix>`` is ``videojobs`` unless ``install(..., prefix=)`` says otherwise):

- ``<prefix>:job:<ref>``    hash: the poll chain's current ``hop``, the delivery (``tag``) that
  claimed it and when, the ``next`` hop's message, and ``done`` (``sending`` with the callback's
  ``payload``, ``delivering`` while a worker runs it, then ``sent``). Expires ``JOB_TTL`` after the job's deadline.
- ``<prefix>:due``          sorted set: when each job's next poll (or callback) is due; what
  the sweeper reads to send again what a broker lost.
- ``<prefix>:rate:<vendor>`` hash: the shared rate (absent: no limit yet), token bucket, pause.
"""

from __future__ import annotations

import time
from typing import Any, Final

__all__ = ["ADDITIVE_SHARE", "CUT", "JOB_TTL", "MIN_RATE", "Store", "connect"]

JOB_TTL: Final = 24 * 3600
"""Seconds a job's record outlives its deadline: a poll delivered again within a day (a broker
restoring unacknowledged messages) still finds it, and memory stays bounded (~150 bytes a job)."""

CUT: Final = 0.7
"""Multiplicative decrease on a throttle, as the single-process rate control (botocore's beta)."""
ADDITIVE_SHARE: Final = 0.03
MIN_RATE: Final = 0.5
"""Growth after a cut: the rate rises by 3 % of itself (at least 0.25/s) per second of answers.
AIMD rather than CUBIC here: the state is a few numbers in a shared hash that any worker updates,
and at a vendor's few to few hundred requests per second the sawtooth costs a 429 or two a cycle."""

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

_EXPECT = """
redis.call('HSET', KEYS[1], 'next', ARGV[1], 'next_hop', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[5])
return 1
"""

_FINISHING = """
if redis.call('HGET', KEYS[1], 'done') then return 0 end
redis.call('HSET', KEYS[1], 'done', 'sending', 'payload', ARGV[1], 'sending_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'next')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[4])
return 1
"""

_DELIVERING = """
local done = redis.call('HGET', KEYS[1], 'done')
if done == 'sent' then return 0 end
local tag, now, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if done == 'delivering' and redis.call('HGET', KEYS[1], 'dtag') ~= tag
   and now - tonumber(redis.call('HGET', KEYS[1], 'dat') or '0') < grace then
  return 0
end
redis.call('HSET', KEYS[1], 'done', 'delivering', 'dtag', tag, 'dat', now)
return 1
"""

_SENT = """
-- all a finished job needs to keep is that it finished: late duplicates find 'sent' and stop
local ttl = redis.call('TTL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'done', 'sent')
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

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
return tostring(rate)
"""


def connect(url: str) -> Any:
    """A Redis client that rides out a restart: every command (our scripts are safe to repeat)
    is retried on a lost connection with backoff, about half a minute in all."""
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


class Store:
    """The scripts, bound to one Redis connection (``redis.Redis``), under one key prefix."""

    def __init__(self, redis: Any, prefix: str = "videojobs") -> None:
        self.redis, self.prefix = redis, prefix
        self.due = f"{prefix}:due"
        self._claim = redis.register_script(_CLAIM)
        self._expect = redis.register_script(_EXPECT)
        self._finishing = redis.register_script(_FINISHING)
        self._sent = redis.register_script(_SENT)
        self._delivering = redis.register_script(_DELIVERING)
        self._acquire = redis.register_script(_ACQUIRE)
        self._throttled = redis.register_script(_THROTTLED)
        self._answered = redis.register_script(_ANSWERED)

    def _job(self, ref: str) -> str:
        return f"{self.prefix}:job:{ref}"

    def _rate(self, vendor: str) -> str:
        return f"{self.prefix}:rate:{vendor}"

    # --- the poll chain ---------------------------------------------------------------------------

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

    def delivering(self, ref: str, tag: str, grace: float) -> bool:
        """True: this delivery of the callback runs it; False: it ran, or another delivery runs it now."""
        return bool(self._delivering(keys=[self._job(ref)], args=[tag, time.time(), grace]))

    def sent(self, ref: str) -> None:
        self._sent(keys=[self._job(ref), self.due], args=[ref])

    def overdue(self, before: float, limit: int = 500) -> list[tuple[str, dict[bytes, bytes]]]:
        """Jobs whose next poll (or callback) should have happened before ``before``, with their records."""
        refs = self.redis.zrangebyscore(self.due, "-inf", before, start=0, num=limit)
        return [(ref.decode(), self.redis.hgetall(self._job(ref.decode()))) for ref in refs]

    def postpone(self, ref: str, until: float) -> None:
        self.redis.zadd(self.due, {ref: until})

    def forget(self, ref: str) -> None:
        self.redis.zrem(self.due, ref)

    def sweep_turn(self, every: float) -> bool:
        """True for one worker in the cluster every ``every`` seconds."""
        return bool(self.redis.set(f"{self.prefix}:sweep", 1, nx=True, ex=max(1, int(every))))

    # --- the vendors' shared rate -----------------------------------------------------------------

    def acquire(self, vendor: str) -> float:
        """0 to send now, or the seconds until the vendor's shared bucket has a token."""
        return float(self._acquire(keys=[self._rate(vendor)]))

    def throttled(self, vendor: str, retry_after: float | None) -> None:
        self._throttled(keys=[self._rate(vendor)], args=[retry_after or 0, CUT, MIN_RATE])

    def answered(self, vendor: str) -> None:
        self._answered(keys=[self._rate(vendor)], args=[ADDITIVE_SHARE, MIN_RATE])

    def rate(self, vendor: str) -> float | None:
        """The vendor's shared rate in requests per second, None while there is no limit."""
        value = self.redis.hget(self._rate(vendor), "rate")
        return None if value is None else float(value)
