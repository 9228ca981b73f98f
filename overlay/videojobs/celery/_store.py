"""What the workers share in Redis: who runs each poll, whether a job's callback went out, and
each vendor's pace. Every decision is one Lua script, so it is atomic across workers.

A poll costs one round trip (``poll``: claim the hop, note its message for the sweeper, and book
a slot of the vendor's shared rate when the vendor is paced) and, only when something changed
after the answer, one more (a throttle, the end, a next poll later than ``next_due`` said).
The pace's arithmetic is ``videojobs._ratecontrol``'s (:class:`SharedPace`: CUBIC's curve, the
token bucket, the fleet's send rate): the worker computes the curve, the scripts keep the numbers,
count what the fleet sends, and book the slot.

Keys (``<prefix>`` is ``videojobs`` unless ``install(..., prefix=)`` says otherwise), every one
with a TTL (each script that writes a key gives it one, so no message, however poisoned, leaves
a key that lives for ever):

- ``<prefix>:chain:<ref>``  string: the poll chain, ``hop\\ntag\\nclaimed_at\\ndue\\nmessage``: the
  current hop, the delivery that claimed it and when, when its next hop is due at the latest, and
  its message (what the sweeper sends again if the chain goes quiet); ``done`` once the callback
  is noted. One string so that a poll's claim is one ``SET ... GET``. Expires ``JOB_TTL`` after
  the job's deadline.
- ``<prefix>:job:<ref>``    hash, from the job's end: ``done`` (``sending`` with the callback's
  ``payload``, ``delivering`` while a worker runs it, then ``sent``, or ``failed`` with the last
  ``error`` once its attempts ran out), its callback's ``attempts``, and the last script call's
  ``once`` mark with what it answered (a call the client repeats after a restart cut its answer
  off gets the same answer again). Expires ``JOB_TTL`` after the job's deadline (a failed
  callback's, ``JOB_TTL`` after it failed).
- ``<prefix>:due``          sorted set: when to look at each job again (its callback's due time;
  for a poll chain, set at track and moved on by the sweeper to the record's ``due``, so a poll
  writes nothing here); what the sweeper reads to send again what a broker lost. Expires
  ``JOB_TTL`` after its last job's.
- ``<prefix>:failed``       sorted set: the jobs whose callback failed for good, by when; entries
  and the set expire after ``JOB_TTL``.
- ``<prefix>:rate:<vendor>`` hash: the vendor's :class:`SharedPace` (absent: no limit yet): CUBIC's
  ``w_max``, ``k``, ``last_cut``, the bucket's ``tokens`` at ``stamp``, ``pause_until``, the
  ``rate`` it holds, the fleet's send rate (``sent`` at ``sent_at``: an average over about a
  second, ``SENT_WINDOW``) and its 429s (``refused`` at ``refused_at``, the same average) and,
  while the first cut is new, the ``shares`` of the workers that reported it or heard of it
  (each adds what it saw accepted once); the count that keeps a share of the slots booked before
  the last cut (``thin``); the rates the queue's slots were booked at, from when each is due
  (``profile``, text: ``due rate due rate ...``), the last slot booked among them (``spare``), and
  when a booking last found no queue sent (``emptied``). Expires ``RATE_TTL`` after the vendor's
  last throttle.
- ``<prefix>:sweep``        the sweeper's turn (``SET NX EX``).
- ``<prefix>:cuts``         a channel, no key: a vendor's name, published by the script that makes
  its first cut (:class:`CutNotices`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final

import attrs

from .._ratecontrol import (
    BETA,
    CLOCK_SLACK,
    CUBIC_SPAN,
    CUT_INTERVAL,
    FIRST_BURST,
    MAX_PAUSE,
    MAX_RATE_OVER_MEASURED,
    MAX_SHARED_RATE,
    MAX_SHARES,
    MIN_CUBIC_K,
    MIN_RATE,
    PROBE_AFTER,
    PROBE_PAUSES,
    PROFILE_MARKS,
    PROFILE_STEP,
    SCALE_CONSTANT,
    SENT_WINDOW,
    SHARED_GROWTH,
    SHARED_RECOVERY,
    SLOT_EARLY,
    SPARE_AHEAD,
    TOKEN_EPSILON,
    Booking,
    SharedPace,
    pause_for,
)
from .._text import printable

__all__ = [
    "JOB_TTL",
    "RATE_TTL",
    "Claim",
    "CutNotices",
    "Delivery",
    "Store",
    "call_mark",
    "connect",
    "connect_quickly",
]

_log = logging.getLogger("videojobs.celery")

JOB_TTL: Final = 24 * 3600
"""Seconds a job's record outlives its deadline: a poll delivered again within a day (a broker
restoring unacknowledged messages) still finds it, and memory stays bounded (~200 bytes a job)."""

RATE_TTL: Final = 24 * 3600
"""Seconds a vendor's shared pace outlives its last throttle: a vendor that did not throttle for
a day starts again unlimited, as it would in a new process."""

PACE_FIELDS: Final = ("w_max", "k", "last_cut", "pause_until")
"""What a worker keeps of a vendor's pace between polls (the bucket's tokens stay in Redis)."""

_KEEP = """
-- keep(key, ttl): the key lives at least ttl more seconds (a shared key outlives every job in it)
local function keep(key, ttl)
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
"""

_CHAIN = """
-- chain_of(key): GET of a job's chain; false when the key holds another type (not ours: deleted)
local function chain_of(key)
  local v = redis.pcall('GET', key)
  if type(v) == 'table' and v.err then
    redis.call('DEL', key)
    return false
  end
  return v
end
"""

_TRACK = (
    _KEEP
    + _CHAIN
    + """
-- the first track() of a job notes its first poll; any later one finds the record and says what it is
-- (the same call repeated after its answer was lost, ARGV[5] its once, finds what it wrote: 'new')
local done = redis.call('HGET', KEYS[1], 'done')
if done then return done end
local mine = '-1\\n' .. ARGV[5] .. '\\n0\\n' .. ARGV[2] .. '\\n' .. ARGV[1]
local chain = chain_of(KEYS[3])
if chain == mine then return 'new' end
if chain then return 'tracked' end
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[3], mine, 'EX', ttl)
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[4])
keep(KEYS[2], ttl)
return 'new'
"""
)

_UNTRACK = (
    _CHAIN
    + """
-- track() could not send the first poll: forget the job, unless its first poll already ran, or
-- the record is not this track()'s (ARGV[2], its once: a repeat after another track() of the job)
local chain = chain_of(KEYS[3])
if redis.call('HEXISTS', KEYS[1], 'done') == 1 or not chain then return 0 end
if string.sub(chain, 1, 4 + #ARGV[2]) ~= '-1\\n' .. ARGV[2] .. '\\n' then return 0 end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""
)

_USABLE_FN = (
    f"""
local MIN_RATE, MAX_SHARED_RATE, MIN_CUBIC_K, CUBIC_SPAN = {MIN_RATE!r}, {MAX_SHARED_RATE!r}, {MIN_CUBIC_K!r}, {CUBIC_SPAN!r}
local MAX_PAUSE, GROWTH, CLOCK_SLACK, SENT_WINDOW = {MAX_PAUSE!r}, {MAX_RATE_OVER_MEASURED!r}, {CLOCK_SLACK!r}, {SENT_WINDOW!r}
local SHARED_GROWTH, SLOT_EARLY, BETA, TOKEN_EPSILON = {SHARED_GROWTH!r}, {SLOT_EARLY!r}, {BETA!r}, {TOKEN_EPSILON!r}
local SCALE_CONSTANT, PROFILE_MARKS, PROFILE_STEP = {SCALE_CONSTANT!r}, {PROFILE_MARKS!r}, {PROFILE_STEP!r}
local PROBE_AFTER, PROBE_PAUSES, SPARE_AHEAD = {PROBE_AFTER!r}, {PROBE_PAUSES!r}, {SPARE_AHEAD!r}
local FIELDS = {{'w_max', 'k', 'last_cut', 'tokens', 'stamp', 'pause_until', 'rate', 'sent', 'sent_at', 'shares',
                'refused', 'refused_at', 'thin', 'emptied', 'profile', 'spare'}}"""
    + """
-- A pace the workers did not write (a field set by hand: non-numeric, not finite, out of the range
-- the workers write, SharedPace.usable) is deleted where it is met: the vendor is then not paced
-- until it throttles again, for every worker at once. p: HMGET of FIELDS (a stamp more than
-- CLOCK_SLACK ahead of a booking's start is a clock gone wrong: read as that start).
-- num(x): a number as the scripts write it, to the last bit (tostring keeps 14 digits: a time of
-- day to 0.1 ms, and a Python reading it disagreed at a slot exactly at a pause's end)
local function num(x) return string.format('%.17g', x) end
local function finite(v)
  local x = tonumber(v)
  if x and x == x and x > -math.huge and x < math.huge then return x end
  return nil
end
local function usable(p)
  local w_max, k, fill, tokens = finite(p[1]), finite(p[2]), finite(p[7]), finite(p[4] or '0')
  if not (w_max and w_max >= 0 and w_max <= MAX_SHARED_RATE) then return false end
  if not (k and (k == 0 or (k >= MIN_CUBIC_K and k <= CUBIC_SPAN))) then return false end
  if not (fill and fill >= MIN_RATE and fill <= MAX_SHARED_RATE) then return false end
  local sent, refused = finite(p[8] or '0'), finite(p[11] or '0')
  if not (sent and sent >= 0 and sent <= MAX_SHARED_RATE) then return false end
  if not (refused and refused >= 0 and refused <= MAX_SHARED_RATE and finite(p[12] or '0')) then return false end
  local thin = finite(p[13] or '0')
  if not (thin and thin >= 0 and thin <= 1) then return false end
  -- the bucket's capacity is the rate held (a pace stored before it was kept: 2 w_max at most)
  local top = math.max(1, GROWTH * math.max(w_max, fill, MIN_RATE))
  if not (tokens and tokens >= -top * MAX_PAUSE - 1 and tokens <= top) then return false end
  if not (finite(p[14] or '0') and finite(p[16] or '0')) then return false end
  return finite(p[3]) and finite(p[5] or '0') and finite(p[6] or '0') and finite(p[9] or '0') and true or false
end
-- read(key): HMGET of a pace's FIELDS; nil when the key holds another type (not ours: deleted)
local function read(key)
  local p = redis.pcall('HMGET', key, unpack(FIELDS))
  if p.err then
    redis.call('DEL', key)
    return nil
  end
  return p
end
-- SharedPace's reading of what the fleet sends: sent_rate(pace, now), count(pace, now) (one more
-- call sent at now; pace.sent and pace.sent_at updated), and rate(pace, now); one_more is
-- _one_more, the moving average of events a second that sent and refused (the fleet's 429s) are
local function sent_rate(pace, now)
  return pace.sent * math.exp(-math.max(0, now - pace.sent_at) / SENT_WINDOW)
end
local function one_more(average, at, now)
  local gap, decay = now - at, 1
  if gap >= 0 then
    decay = math.exp(-gap / SENT_WINDOW)
    at = now
  elseif gap < -CLOCK_SLACK then
    at = now
  end
  return math.min(MAX_SHARED_RATE, average * decay + 1 / SENT_WINDOW), at
end
local function count(pace, now)
  pace.sent, pace.sent_at = one_more(pace.sent, pace.sent_at, now)
end
local function floor(pace)  -- SharedPace.floor: the last cut's rate
  return math.max(MIN_RATE, BETA * pace.w_max)
end
-- curve(pace, now): SharedPace.curve, CUBIC's curve since the last cut (CubicCalculator), within
-- MIN_RATE-MAX_SHARED_RATE: read from the stored cut, so every worker reads the same one (each
-- passed its own once, and one that knew the first cut before the others' shares read it low)
local function curve(pace, now)
  local k = pace.k
  local cube = k ^ 3
  local scale = SCALE_CONSTANT
  if cube > 0 then scale = pace.w_max * (1 - BETA) / cube end
  local since = math.min(math.max(math.max(now, pace.last_cut) - pace.last_cut - k, -CUBIC_SPAN), CUBIC_SPAN)
  return math.max(MIN_RATE, math.min(scale * since ^ 3 + pace.w_max, MAX_SHARED_RATE))
end
local function rate(pace, now)  -- SharedPace.rate: past w_max, no faster than the fleet sends lets it
  return math.max(MIN_RATE, pace.fill, math.min(curve(pace, now), math.max(pace.w_max, SHARED_GROWTH * sent_rate(pace, now))))
end
-- The profile of a pace's queue (SharedPace's _profile, _booked_rate, _noted): marks {due, rate,
-- due, rate, ...}, from due on its slots were booked at rate; text no worker wrote reads as none
local function profile(text)
  local marks = {}
  if string.find(text or '', '[^%d%.eE+%- ]') then return marks end  -- %.17g's numbers alone (SharedPace's _DECIMAL)
  for part in string.gmatch(text or '', '%S+') do
    local x = finite(part)
    if not x or #marks >= 2 * PROFILE_MARKS then return {} end
    table.insert(marks, x)
  end
  if #marks % 2 == 1 then return {} end
  for i = 2, #marks, 2 do
    if marks[i] < MIN_RATE or marks[i] > MAX_SHARED_RATE then return {} end
  end
  return marks
end
local function text(marks)
  local parts = {}
  for i, x in ipairs(marks) do parts[i] = num(x) end
  return table.concat(parts, ' ')
end
local function booked_rate(marks, due, fill)
  local r = fill
  if #marks > 0 then r = marks[2] end
  for i = 1, #marks, 2 do
    if marks[i] > due then break end
    r = marks[i + 1]
  end
  return r
end
local function noted(marks, due, r, now)
  while #marks >= 4 and marks[3] <= now do  -- the next mark is due: the first covers nothing to come
    table.remove(marks, 1)
    table.remove(marks, 1)
  end
  local n = #marks
  if n == 0 or math.abs(r - marks[n]) > PROFILE_STEP * marks[n] then
    if n > 0 and due <= marks[n - 1] then
      marks[n] = r
    elseif n >= 2 * PROFILE_MARKS then
      marks[n] = math.max(marks[n], r)
    else
      table.insert(marks, due)
      table.insert(marks, r)
    end
  end
  return text(marks)
end
-- numbers(p): a usable pace's numbers (one stored before sent was kept: SharedPace's defaults)
local function numbers(p)
  local w_max = finite(p[1])
  return {w_max = w_max, k = finite(p[2]), last_cut = finite(p[3]), fill = finite(p[7]), sent = finite(p[8]) or w_max,
          sent_at = finite(p[9]) or finite(p[5]) or 0, pause_until = finite(p[6] or '0') or 0,
          emptied = finite(p[14] or '0') or 0, spare = finite(p[16] or '0') or 0}
end
"""
)

_RESERVE_FN = (
    _USABLE_FN
    + """
-- reserve(pace, now, booked, slot, at, ahead): SharedPace.book on the stored pace, the bucket being
-- TokenBucket's arithmetic. Returns false when the vendor is not paced, else {wait, held, rate, w_max, k, last_cut,
-- pause_until}: wait 0 sends now; held: the cut the caller's slot is held at ('': nothing booked:
-- a queue MAX_PAUSE long), booked at rate. A caller back before the slot it holds (booked at a cut,
-- due at slot, at the rate at) hears the time left; one back at a slot booked before the last cut
-- sends if the count (thin) keeps it, the rate now over at being the share kept; one whose slot
-- fell within a pause, or that holds none, books one (behind the pause, if one is on). Each call
-- sent now is counted (sent, sent_at).
local function reserve(key, now, booked, slot, at, ahead)
  local p = read(key)
  if not p or not p[3] then return false end
  if not usable(p) then
    redis.call('DEL', key)
    return false
  end
  local pause = finite(p[6] or '0')
  -- at most MAX_PAUSE from now (SharedPace.book): set by a worker whose clock runs ahead, it is
  -- longer; kept so, or each worker asking again after its wait would be held for all of it
  if now < pause and pause - now > MAX_PAUSE then
    pause = now + MAX_PAUSE
    p[6] = num(pause)
    redis.call('HSET', key, 'pause_until', p[6])
  end
  local pace = numbers(p)
  local r = rate(pace, now)
  local function said(wait, held, booked_at) return {num(wait), held, num(booked_at), p[1], p[2], p[3], p[6] or '0'} end
  local paused = now < pause
  local s, left = finite(slot), nil
  if s and s - now <= MAX_PAUSE then left = s - now end  -- further: not one this pace booked
  -- the share kept of slots like the caller's (SharedPace._kept): 1 at the last cut, at an earlier
  -- one (a slot due within MAX_PAUSE) the rate now over the rate it was booked at; nil: none of
  -- this pace's, booked again
  local kept, b, a = nil, finite(booked), finite(at)
  if booked == p[3] then
    kept = 1
  elseif left and b and a and b > 0 and b < finite(p[3]) and a >= MIN_RATE and a <= MAX_SHARED_RATE then
    kept = math.min(1, r / a)
  end
  if kept then
    local at_now = r  -- the rate it was booked at, as it shows it when it comes back (SharedPace.book)
    if a and a >= MIN_RATE and a <= MAX_SHARED_RATE then at_now = a end
    if left and s < pause then
      -- within a pause: withdrawn (the pause paid it off), booked again behind it
    elseif left and (left > SLOT_EARLY or paused) then
      return said(left, booked, at_now)  -- back before it: its place kept
    elseif not paused then
      local thin = (finite(p[13] or '0') or 0) + kept
      if thin >= 1 - TOKEN_EPSILON then  -- its slot came, and the rate keeps it
        thin = thin - math.min(1, thin)
        count(pace, now)
        redis.call('HSET', key, 'sent', num(pace.sent), 'sent_at', num(pace.sent_at), 'thin', num(thin))
        return said(0, booked, at_now)
      end
      redis.call('HSET', key, 'thin', num(thin))
    end
  end
  local start = now
  if paused then start = pause end  -- behind the pause, if one is on
  local cap = math.max(1, floor(pace))  -- the burst it may save up: the cut's rate (SharedPace.book)
  local tokens = math.min(cap, finite(p[4]) or 0)
  local stamp = finite(p[5]) or now
  -- written by a clock gone wrong (see CLOCK_SLACK): refill from the start (a pause's end, which the
  -- pause stamps: from now, a 5-minute pause read as a clock gone wrong and filled the bucket)
  if stamp > start + CLOCK_SLACK then stamp = start end
  if start > stamp then  -- refilled at the rate held until now
    tokens = math.min(cap, tokens + (start - stamp) * pace.fill)
    stamp = start
  end
  if tokens >= 0 or SHARED_GROWTH * sent_rate(pace, now) < pace.fill then  -- no queue, or one not sent
    redis.call('HSET', key, 'emptied', num(start))
    pace.emptied = start
  end
  local marks = nil
  if tokens < 0 then marks = profile(p[15]) end  -- read once: for a slot among the queue's, or behind it
  if tokens < 0 then
    -- a slot among the queue's, in the rate its slots leave free (SharedPace._spare)
    local quiet = now - math.max(pace.last_cut, pause, pace.emptied)
    local target = math.min(r, floor(pace))
    if quiet >= math.max(PROBE_AFTER, PROBE_PAUSES * (pause - pace.last_cut)) then target = r end
    -- further ahead than SPARE_AHEAD: a worker's clock ahead, no room until it comes; further than
    -- CLOCK_SLACK: a clock gone wrong, read as none (SharedPace._spare)
    local last = math.min(pace.spare, start + SPARE_AHEAD)
    if pace.spare > start + CLOCK_SLACK then last = -math.huge end
    local under = booked_rate(marks, math.max(start, last), pace.fill)
    if target > under then
      local spare = math.max(start, last + 1 / (target - under))
      if spare < math.min(stamp - tokens / pace.fill, start + SPARE_AHEAD) then
        if spare <= now and not ahead then count(pace, now) end
        redis.call('HSET', key, 'spare', num(spare), 'sent', num(pace.sent), 'sent_at', num(pace.sent_at))
        return said(math.max(0, spare - now), p[3], r)
      end
    end
  end
  if tokens < 0 then tokens = tokens * (r / pace.fill) end  -- the queue ends where it was booked to end
  tokens = tokens - 1
  local wait = start - now
  if tokens < 0 then wait = wait + -tokens / r end
  if wait > MAX_PAUSE then return said(MAX_PAUSE, '', r) end  -- the queue is full: ask again then
  if wait == 0 and not ahead then count(pace, now) end
  redis.call('HSET', key, 'tokens', num(tokens), 'stamp', num(stamp), 'rate', num(r),
             'sent', num(pace.sent), 'sent_at', num(pace.sent_at))
  -- a slot behind others: the rate it was booked at, noted (SharedPace._noted)
  if tokens < 0 then redis.call('HSET', key, 'profile', noted(marks or profile(p[15]), now + wait, r, now)) end
  return said(wait, p[3], r)
end
"""
)

_POLL = (
    _RESERVE_FN
    + """
-- One round trip per poll: claim the hop; note its message and when its next hop is due at the
-- latest (the sweeper sends this one again if the chain goes quiet past that); book a slot of the
-- vendor's shared rate when this worker knows the vendor is paced (paced = '1').
-- The chain is one string, "hop\\ntag\\nclaimed_at\\ndue\\nmessage" (or "done"), swapped in one SET
-- ... GET: the common path is that command alone; a claim that loses puts the old value back.
-- {2}: the callback is out; {0}: another delivery runs this hop; {1} or {1, pace...}: run it.
local chain = KEYS[1]
local hop, tag, now, grace = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
local mine = ARGV[1] .. '\\n' .. tag .. '\\n' .. ARGV[4] .. '\\n' .. ARGV[7] .. '\\n' .. ARGV[6]
local old = redis.pcall('SET', chain, mine, 'KEEPTTL', 'GET')
if type(old) == 'table' and old.err then  -- another type at the key: not a chain of ours, replaced
  redis.call('DEL', chain)
  redis.call('SET', chain, mine)
  old = false
end
if old then
  local lost = 2
  if old ~= 'done' then
    local h, t, at = string.match(old, '^([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n')
    local current = tonumber(h or '-1')
    local take = hop > current
    if hop == current then
      -- the same delivery came back (its worker died), or another one claimed this hop and went
      -- quiet for longer than any poll takes: it died
      take = t == tag or now - tonumber(at or '0') > grace
    end
    if take then lost = nil else lost = 0 end
  end
  if lost then
    redis.call('SET', chain, old, 'KEEPTTL')
    return {lost}
  end
else
  redis.call('EXPIRE', chain, tonumber(ARGV[3]))  -- no record (a forged or very late message): it expires too
end
if ARGV[8] ~= '1' then return {1} end
local paced = reserve(KEYS[2], now, ARGV[9], ARGV[10], ARGV[11], false)
if not paced then return {1} end
return {1, paced[1], paced[2], paced[3], paced[4], paced[5], paced[6], paced[7]}
"""
)

_DUE = (
    _CHAIN
    + """
-- the next hop comes later than the claim said: the sweeper waits for it until then
local old = chain_of(KEYS[1])
if not old or old == 'done' then return 0 end
local h, t, at, due, msg = string.match(old, '^([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n(.*)$')
if h ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], h .. '\\n' .. t .. '\\n' .. at .. '\\n' .. ARGV[2] .. '\\n' .. msg, 'KEEPTTL')
return 1
"""
)

_FINISHING = (
    _KEEP
    + """
-- 1: noted now, or by this same call repeated after its answer was lost (ARGV[5], its once)
local done = redis.call('HGET', KEYS[1], 'done')
if done then
  if done == 'sending' and redis.call('HGET', KEYS[1], 'once') == ARGV[5] then return 1 end
  return 0
end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'done', 'sending', 'payload', ARGV[1], 'sending_at', ARGV[2], 'once', ARGV[5])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[3], 'done', 'EX', ttl)  -- a late copy of any hop finds the chain ended
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[4])
keep(KEYS[2], ttl)
return 1
"""
)

_DELIVERING = """
-- {code, payload}: code n >= 1 runs the callback (its n-th attempt); -1: nothing to run (no such
-- job, sent, failed, or another delivery runs it now); -2: this same delivery came back, so its
-- run never ended (its process was killed); -3: the attempts ran out without a word from the last.
-- The same call repeated after its answer was lost (ARGV[5], its once) gets the same answer again.
local done = redis.call('HGET', KEYS[1], 'done')
if done ~= 'sending' and done ~= 'delivering' then return {-1, false} end
local tag, now, grace, most = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local payload = redis.call('HGET', KEYS[1], 'payload')
if done == 'delivering' then
  if redis.call('HGET', KEYS[1], 'dtag') == tag then
    local said = redis.call('HMGET', KEYS[1], 'once', 'dcode')
    if said[1] == ARGV[5] then return {tonumber(said[2]), payload} end
    return {-2, payload}
  end
  if now - tonumber(redis.call('HGET', KEYS[1], 'dat') or '0') < grace then return {-1, false} end
end
local code = -3
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') < most then
  code = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
end
redis.call('HSET', KEYS[1], 'done', 'delivering', 'dtag', tag, 'dat', now, 'once', ARGV[5], 'dcode', code)
return {code, payload}
"""

_CALLBACK_FAILED = (
    _KEEP
    + """
-- {1, attempts, delay}: try again in delay seconds; {0, attempts}: failed for good; {-1, 0}: not ours any more.
-- The same call repeated after its answer was lost (ARGV[10], its once) gets the same answer again.
local said = redis.call('HMGET', KEYS[1], 'once', 'said')
if said[1] == ARGV[10] and said[2] then
  local again, made, wait = string.match(said[2], '^(%S+) (%S+) (%S+)$')
  return {tonumber(again), tonumber(made), wait}
end
if redis.call('HGET', KEYS[1], 'done') ~= 'delivering' or redis.call('HGET', KEYS[1], 'dtag') ~= ARGV[1] then
  return {-1, 0, '0'}
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
local most, base, cap, jitter = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local now, ttl, ref = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
redis.call('HSET', KEYS[1], 'error', ARGV[2])
redis.call('HDEL', KEYS[1], 'dtag', 'dat', 'dcode')
if attempts >= most then
  redis.call('HSET', KEYS[1], 'once', ARGV[10], 'said', '0 ' .. attempts .. ' 0')
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
redis.call('HSET', KEYS[1], 'done', 'sending', 'sending_at', now + delay, 'once', ARGV[10],
  'said', '1 ' .. attempts .. ' ' .. tostring(delay))
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

_RESERVE = (
    _RESERVE_FN
    + """
local paced = reserve(KEYS[1], tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[5], ARGV[4] == '1')
if not paced then return false end
return paced
"""
)

_THROTTLED = (
    _USABLE_FN
    + f"""
local SHARED_RECOVERY, CUT_INTERVAL, MAX_SHARES = {SHARED_RECOVERY!r}, {CUT_INTERVAL!r}, {MAX_SHARES!r}
local FIRST_BURST = {FIRST_BURST!r}"""
    + """
-- SharedPace.throttled on the stored pace: a worker saw a 429 for a call sent at ARGV[6] ('': not
-- known). The pause (the later one wins); a cut, unless this is the congestion the last cut was
-- for; or, while that cut is the vendor's first (made from one worker's share), this reporter's
-- share added to it once. ARGV: now, pause, what the worker measured accepted, who it is, the
-- pace's TTL, sent, '1' for a share alone (SharedPace.share:
-- a worker that heard of the first cut, never a cut), and the channel and vendor of the notice a
-- first cut is published with (every worker hears of it at once). A stored pace no worker wrote
-- is deleted first: this cut is then the vendor's first.
local key, now, retry_after = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local measured, reporter, sent = math.min(math.max(0, finite(ARGV[3]) or 0), MAX_SHARED_RATE), ARGV[4], finite(ARGV[6])
local share_only = ARGV[7] == '1'
local p = read(key) or {}
if p[3] and not usable(p) then
  redis.call('DEL', key)
  p = {}
end
local fields = {}
local function put(...) for _, v in ipairs({...}) do table.insert(fields, v) end end
local last_cut, cut, cut_tokens, fill = finite(p[3] or 'x'), false, 0, finite(p[7]) or MIN_RATE  -- the rate held (none yet: a first cut, whose bucket starts empty)
local paused = finite(p[6] or '0') or 0
if share_only and not (last_cut and last_cut <= now + CLOCK_SLACK) then
  return redis.call('HMGET', key, 'w_max', 'k', 'last_cut', 'pause_until')
end
local refused, refused_at = finite(p[11] or '0') or 0, finite(p[12] or '0') or 0
if not share_only then  -- a 429: counted, as each send is
  refused, refused_at = one_more(refused, refused_at, now)
  put('refused', num(refused), 'refused_at', num(refused_at))
end
if last_cut and last_cut <= now + CLOCK_SLACK
    and (share_only or (sent and sent < last_cut) or now - last_cut < CUT_INTERVAL) then
  local shares = p[10] or ''
  if shares ~= '' and reporter ~= '' and now - last_cut < FIRST_BURST
      and not string.find(shares .. ' ', ' ' .. reporter .. ' ', 1, true) then
    local pace = numbers(p)
    local w_max = math.min(MAX_SHARED_RATE, pace.w_max + measured)
    if #shares < MAX_SHARES then shares = shares .. ' ' .. reporter end
    fill = math.max(pace.fill, MIN_RATE, w_max * BETA)
    put('w_max', num(w_max), 'rate', num(fill),
        'sent', num(math.min(MAX_SHARED_RATE, pace.sent + measured)), 'shares', shares)
  end
else
  local base, pace = math.max(MIN_RATE, measured), nil
  if last_cut then
    pace = numbers(p)
    local since = math.max(0, now - pace.sent_at)  -- SharedPace.base: no longer than the call's round trip
    if sent then since = math.min(since, math.max(0, now - sent)) end
    -- what the vendor accepted of it: less the 429s before this one (SharedPace.base)
    local others = math.max(0, refused * math.exp(-math.max(0, now - refused_at) / SENT_WINDOW) - 1 / SENT_WINDOW)
    local accepted = pace.sent * math.exp(-since / SENT_WINDOW) - others
    base = math.max(MIN_RATE, math.min(rate(pace, now), accepted))
  end
  local stamp = ARGV[1]  -- nothing saved up while paused (SharedPace.cut)
  if paused > now then stamp = num(paused) end
  local new_fill = math.max(MIN_RATE, base * BETA)
  cut_tokens = 0
  if pace then
    -- the slots booked ahead, at the rate they were booked at, are owed at the new one: the queue
    -- ends where it did (SharedPace.cut), and each caller of it hears the share kept (SharedPace.book)
    local queue, was = finite(p[4] or '0') or 0, finite(p[5] or '0') or 0
    if now > was then queue = queue + (now - was) * pace.fill end
    cut_tokens = math.min(0, queue) * math.min(1, new_fill / pace.fill)
  end
  -- each slot kept at the share the new rate is of its own: none sent faster than it (SharedPace.cut)
  local marks, was = {}, profile(p[15])
  for i = 1, #was, 2 do
    local r = math.min(was[i + 1], new_fill)
    if #marks == 0 or r ~= marks[#marks] then  -- a mark where the rate changes
      table.insert(marks, was[i])
      table.insert(marks, r)
    end
  end
  if #marks == 0 then marks = {now, new_fill} end
  put('w_max', num(base), 'k', num(SHARED_RECOVERY), 'last_cut', ARGV[1],
      'rate', num(new_fill), 'tokens', num(cut_tokens), 'stamp', stamp, 'profile', text(marks))
  cut, fill = true, new_fill  -- a pause pays the queue off at the new rate
  if pace then
    put('shares', '')
  else
    put('sent', num(base), 'sent_at', ARGV[1], 'shares', ' ' .. (reporter ~= '' and reporter or '-'))
  end
end
if retry_after > 0 and now + retry_after > paused then
  -- the pause, the later one winning: the slots booked are paid off to its end, and nothing is
  -- saved up past it (SharedPace.throttled)
  local till = now + retry_after
  local tokens, stamp = finite(p[4] or '0') or 0, finite(p[5] or '0') or now
  if cut then tokens, stamp = cut_tokens, math.max(now, paused) end
  tokens = math.min(0, tokens + math.max(0, till - stamp) * fill)
  put('pause_until', num(till), 'tokens', num(tokens), 'stamp', num(math.max(stamp, till)))
end
if #fields > 0 then
  redis.call('HSET', key, unpack(fields))
  redis.call('EXPIRE', key, tonumber(ARGV[5]))
  -- the notice is a courtesy (the workers read the paces every second): a Redis user not allowed
  -- the channel (an ACL without it) must not fail the report
  if not last_cut and ARGV[8] and ARGV[8] ~= '' then redis.pcall('PUBLISH', ARGV[8], ARGV[9]) end
end
return redis.call('HMGET', key, 'w_max', 'k', 'last_cut', 'pause_until')
"""
)


CLOCK_SYNC_EVERY: Final = 60.0
"""Seconds between a process's readings of Redis's clock (:meth:`Store.sync_clock`): NTP keeps a
clock within microseconds of itself over a minute, and one that steps meanwhile is read again
at once (``CLOCK_STEP``). (Read at every pace refresh, it was a command a second per worker process
of an idle fleet.)"""
CLOCK_SAMPLES: Final = 3
"""Readings of Redis's ``TIME`` per sync (the first may pay for a connection, or wait behind a busy
Redis: the others narrow what it says)."""
CLOCK_STEP: Final = 0.05
"""Seconds this machine's wall clock may move against its monotonic one before the offset is read
again at once, not a minute on (NTP slews by at most 0.5 ms a second; a step is a correction)."""


@attrs.frozen
class ClockReading:
    """One reading of Redis's ``TIME``: this machine's wall clock as it was asked (``before``) and
    as its answer came (``after``), what Redis said, and the wall clock less the monotonic one
    (``gap``: it moves only when the wall clock steps)."""

    before: float
    redis: float
    after: float
    gap: float


def offset_from(readings: Sequence[ClockReading], resolution: float, gap: float | None = None) -> float | None:
    """Seconds Redis's clock is ahead of this machine's, from readings of ``TIME``. Redis read its
    clock between a reading's request and its answer, so each bounds the offset within
    ``[redis - after, redis - before]`` (widened by the clocks' ``resolution``: ``TIME`` says
    whole microseconds); the offset is the middle of where they all agree: a busy Redis answers
    late, and reads ``TIME`` at the end of its wait (a lone reading's middle was 0.47 s off after
    a 1 s script), and a worker far from Redis is within half its round trip. Readings taken
    before a step of this machine's clock (their ``gap`` is not ``gap``, the one after the last
    reading: by default that reading's own) are not used; nor one whose clock went back during
    it. Readings that still disagree (Redis's clock stepped): the last one alone. None: no
    reading to use."""
    last = gap if gap is not None else readings[-1].gap if readings else 0.0
    usable = [r for r in readings if r.after >= r.before and abs(r.gap - last) <= CLOCK_STEP]
    if not usable:
        return None
    bounds = [(r.redis - r.after - resolution, r.redis + 1e-6 - r.before + resolution) for r in usable]
    low, high = max(b[0] for b in bounds), min(b[1] for b in bounds)
    if low > high:
        low, high = bounds[-1]
    return (low + high) / 2


def _wall_less_monotonic() -> float:
    """This machine's wall clock less its monotonic one (each read once between two readings of the
    other close together: a thread paused between them would read as a step)."""
    for _ in range(3):
        first = time.monotonic()
        wall = time.time()
        second = time.monotonic()
        if second - first < 1e-3:
            break
    return wall - (first + second) / 2


_CLOCK_RESOLUTION: Final = time.get_clock_info("time").resolution
"""The smallest step this machine's wall clock reads (15.6 ms on Windows before Python 3.13,
nanoseconds elsewhere): a reading's ``before`` and ``after`` may be that far from the instants."""

STORE_SOCKET_TIMEOUT: Final = 5.0
"""Seconds a worker waits for one answer (or connection) of Redis: it answers in milliseconds, our
scripts are O(1), so a command this late is a Redis that hangs (stopped, swapping, a dead link)."""
STORE_RETRY_BUDGET: Final = 25.0
"""Seconds after a command's first try within which a worker tries it again on a lost connection
(backoff 0.1 s doubling to 2 s): a restart is ridden out for this long, and no try starts after
it, so a command ends within this plus one STORE_SOCKET_TIMEOUT: about half a minute. (Retries
counted, not timed, made a hung Redis hold a worker 21 x 10 s + backoff, four minutes per
command, and each timed-out try's script ran once Redis woke: up to 21 slots booked.)"""


def _store_retry() -> Any:
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    class StoreRetry(Retry):
        """redis-py's Retry, bounded by time (``budget`` seconds after the first try) rather than
        by a count alone; ``clock`` and ``sleep`` are injectable."""

        def __init__(
            self,
            budget: float = STORE_RETRY_BUDGET,
            *,
            clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep,
        ) -> None:
            super().__init__(ExponentialBackoff(cap=2.0, base=0.1), retries=-1)
            self.budget, self.clock, self.sleep = budget, clock, sleep

        def call_with_retry(
            self, do: Any, fail: Any, is_retryable: Any = None, with_failure_count: bool = False
        ) -> Any:
            self._backoff.reset()  # type: ignore[no-untyped-call]
            start, failures = self.clock(), 0
            while True:
                try:
                    return do()
                except self._supported_errors as error:
                    if is_retryable and not is_retryable(error):
                        raise
                    failures += 1
                    fail(error, failures) if with_failure_count else fail(error)
                    backoff = self._backoff.compute(failures)
                    if self.clock() + backoff - start > self.budget:
                        raise
                    self.sleep(backoff)

    return StoreRetry


def connect(url: str) -> Any:
    """A Redis client for the workers, that rides out a restart: every command is retried on a
    lost connection with backoff, for ``STORE_RETRY_BUDGET`` seconds, and ends within about half a
    minute in all, even against a Redis that hangs. A command may have run before its
    answer was lost: our scripts are safe to repeat (a claim by the same delivery takes it again;
    ``track``, ``untrack``, the callback's note, claim and failure carry a :func:`call_mark` and
    answer a repeat as the first time; the others write the same again, except that a repeated
    booking of a paced vendor's slot books a second one: that poll waits 1/rate longer, and the
    fleet stays under the vendor's limit)."""
    import redis

    return redis.Redis.from_url(
        url,
        retry=_store_retry()(),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        socket_timeout=STORE_SOCKET_TIMEOUT,
        socket_connect_timeout=STORE_SOCKET_TIMEOUT,
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


MAX_NOTICES: Final = 64
"""The most notices :meth:`CutNotices.heard` returns at once (a channel flooded by hand waits for the next call)."""
PING_ANSWER: Final = 5.0
"""Seconds a quiet subscription's PING has to be answered in (a Redis command's ``STORE_SOCKET_TIMEOUT``)."""
MAX_NOTICE: Final = 64
"""The longest notice taken, bytes: a vendor's slug (the registry's are a few letters); anything
else published on the channel was not published by a worker, and is dropped."""


class CutNotices:
    """The notices of vendors' first cuts (:meth:`Store.throttled` publishes the vendor's name when
    its report makes the first), on a Redis subscription of their own: a worker process that knew
    no pace for the vendor, and so asked Redis nothing at its polls, hears of it at once (it would
    otherwise at its own 429, or at its next refresh, ``PACE_REFRESH``). A notice may be missed
    (Redis restarting, this process between subscriptions): the refresh stays.

    A subscription only reads, so a link dropped without a word (a failover, a NAT's idle timeout)
    would leave it deaf for good: after a quiet ``timeout`` it sends a PING, and one unanswered
    within ``answer`` seconds is a ``ConnectionError`` (subscribe again). A message is read whole by
    redis-py before it is judged: what bounds one is Redis's ``client-output-buffer-limit`` for
    pub/sub (32 MiB by default, past which Redis drops the subscriber)."""

    def __init__(
        self, redis: Any, channel: str, *, clock: Callable[[], float] = time.monotonic, answer: float = PING_ANSWER
    ) -> None:
        self._pubsub = redis.pubsub()  # its own answers (subscribe, pong) are read as signs of life
        self._clock, self._answer = clock, answer
        try:
            self._pubsub.subscribe(channel)
        except BaseException:
            self._pubsub.close()
            raise
        self._seen = clock()  # when the subscription last said anything
        self._pinged: float | None = None

    def heard(self, timeout: float) -> list[str]:
        """The vendors named by the notices that came within ``timeout`` seconds, each once (at most
        ``MAX_NOTICES``; an empty list when none came, or only the subscription's own answers)."""
        now = self._clock()
        if self._pinged is None and now - self._seen >= timeout:
            self._pubsub.ping()
            self._pinged = now
        vendors: list[str] = []
        message = self._pubsub.get_message(timeout=timeout if self._pinged is None else min(timeout, self._answer))
        while message is not None:
            self._seen, self._pinged = self._clock(), None
            data = message.get("data") if message.get("type") == "message" else None
            if isinstance(data, bytes) and 0 < len(data) <= MAX_NOTICE and data.isascii():
                name = data.decode()
                if name.isprintable() and not any(c.isspace() for c in name) and name not in vendors:
                    vendors.append(name)
            if len(vendors) >= MAX_NOTICES:
                break
            message = self._pubsub.get_message(timeout=0.0)
        # judged after what came was read: a Redis slow for a while (a long script) answers late
        if self._pinged is not None and self._clock() - self._pinged > self._answer:
            raise ConnectionError(f"the subscription to first cuts did not answer a PING in {self._answer:g} s")
        return vendors

    def close(self) -> None:
        self._pubsub.close()


@attrs.frozen
class Claim:
    """What :meth:`Store.poll` found: ``code`` (RUN: this delivery runs the hop; DUPLICATE: another
    does; ENDED: the job's callback is out) and, for a paced vendor, ``wait`` (0.0: send now; else
    poll again in that many seconds, holding the slot booked at the cut ``booked``, at ``rate``)."""

    code: int
    wait: float = 0.0
    booked: float | None = None
    rate: float | None = None  # the rate the slot held was booked at (shown when it comes back)

    RUN: ClassVar[int] = 1
    DUPLICATE: ClassVar[int] = 0
    ENDED: ClassVar[int] = 2


def call_mark() -> str:
    """A script call's own mark: the client repeats a call whose answer a restart cut off (see
    :func:`connect`), and a script that finds its own mark answers as it did the first time."""
    return os.urandom(8).hex()


def _fields(values: list[Any]) -> dict[str, str]:
    """A pace's fields as the scripts return them (``PACE_FIELDS`` order), the missing left out."""
    return {
        name: v.decode() if isinstance(v, bytes) else str(v) for name, v in zip(PACE_FIELDS, values, strict=False) if v
    }


def _cut(at: float | None) -> str:
    """A time (a cut's, a slot's) as the store writes it (``repr``: it reads back the same float)."""
    return "" if at is None else repr(at)


def _known(values: list[Any]) -> dict[str, str] | None:
    """The pace a script or HMGET returned, None when the vendor is not paced. A pace this
    package did not write (a field set by hand: not a number, not finite, a negative curve)
    reads as not paced: each poll would otherwise fail on it, and the poll script deletes it."""
    fields = _fields(values)
    if "last_cut" not in fields:
        return None
    try:
        numbers = {name: float(value) for name, value in fields.items()}
    except ValueError:
        return None
    return fields if SharedPace.usable(numbers) else None


def _held(value: Any) -> float | None:
    """The cut a script said a slot is held at (``b""``: none)."""
    return float(value) if value else None


def _wait(value: Any) -> float:
    """A wait a script answered, seconds: within 0-``MAX_PAUSE`` (the scripts' own bound, kept here
    too: a countdown past it is a poll held for days, and one of 1e307 s an OverflowError in Celery)."""
    wait = float(value)
    return min(max(wait, 0.0), MAX_PAUSE) if math.isfinite(wait) else MAX_PAUSE


def _foreign(exc: BaseException) -> bool:
    """Redis said a key holds another type than ours (WRONGTYPE): a value set by hand, read as absent."""
    return str(exc).startswith("WRONGTYPE")


def _pace(fields: dict[str, str]) -> SharedPace:
    return SharedPace.from_fields({name: float(value) for name, value in fields.items()})


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
    """The scripts, bound to one Redis connection (``redis.Redis``), under one key prefix; also
    the :class:`~videojobs._ratecontrol.PaceStore` that keeps the vendors' paces in Redis."""

    def __init__(self, redis: Any, prefix: str = "videojobs") -> None:
        self.redis, self.prefix = redis, prefix
        self.due = f"{prefix}:due"
        self.failed_index = f"{prefix}:failed"
        self._track = redis.register_script(_TRACK)
        self._untrack = redis.register_script(_UNTRACK)
        self._poll = redis.register_script(_POLL)
        self._due = redis.register_script(_DUE)
        self._finishing = redis.register_script(_FINISHING)
        self._sent = redis.register_script(_SENT)
        self._delivering = redis.register_script(_DELIVERING)
        self._callback_failed = redis.register_script(_CALLBACK_FAILED)
        self._postpone = redis.register_script(_POSTPONE)
        self._reserve = redis.register_script(_RESERVE)
        self._throttled = redis.register_script(_THROTTLED)
        self.offset = 0.0
        """Seconds Redis's clock is ahead of this machine's (:meth:`sync_clock`): :meth:`now` is the
        fleet's one clock."""
        self._synced: float | None = None  # when (monotonic) the offset was last read
        self._gap = 0.0  # this machine's wall clock less its monotonic one, then
        self._from_redis = False  # the offset was read from Redis (else: this machine's clock)
        self._time_refused = False
        self.cuts = f"{prefix}:cuts"
        """The channel a vendor's first cut is published on (its name): the workers that knew no pace hear it at once."""
        self.reporter = os.urandom(6).hex()
        """Who this process is when it reports a throttle (the first cut adds each reporter's share once)."""
        self.paces: dict[str, dict[str, str] | None] = {}
        """What this process knows of each vendor's pace (None: not paced; refreshed by each paced
        poll, each throttle and :meth:`refresh_paces`, which the worker's timer runs)."""

    def now(self) -> float:
        """Now on the fleet's one clock, Redis's (this machine's, moved by :attr:`offset`): every time a
        worker writes for the others to read (a pace's stamps and cuts, a claim, a due time) is
        on it, whatever the machines' clocks say. A reporter 2 s ahead read the fleet's send rate
        as 2 s old and cut a paced vendor to MIN_RATE; one behind held the bucket back."""
        return time.time() + self.offset

    def sync_clock(self) -> bool:
        """Read :attr:`offset` from Redis's ``TIME``, ``CLOCK_SAMPLES`` times on one connection (see
        :func:`offset_from`). False (the offset as it was) when no reading could be used. A Redis
        (or a proxy, an ACL) that refuses ``TIME`` keeps the offset last read (at first: this
        machine's clock), said once as a WARNING, and is asked again a minute on."""
        import redis

        for _ in range(2):  # again if this machine's clock stepped during the last reading
            readings = []
            for _ in range(CLOCK_SAMPLES):
                gap = _wall_less_monotonic()
                before = time.time()
                try:
                    seconds, micros = self.redis.time()
                except redis.exceptions.ResponseError as exc:
                    self._refused(exc, gap)
                    return False
                readings.append(ClockReading(before, seconds + micros / 1e6, time.time(), gap))
            end = _wall_less_monotonic()
            if abs(end - readings[-1].gap) <= CLOCK_STEP:
                break
        offset = offset_from(readings, _CLOCK_RESOLUTION, end)
        if offset is None:
            return False
        self.offset, self._from_redis = offset, True
        self._read_at(end)
        return True

    def _refused(self, exc: BaseException, gap: float) -> None:
        """Redis refused ``TIME``: the offset last read is kept, moved by any step of this machine's
        clock since (which keep_clock would otherwise see no more); asked again a minute on."""
        if self._from_redis and self._synced is not None:
            self.offset -= gap - self._gap
        self._read_at(gap)
        if not self._time_refused:
            self._time_refused = True
            _log.warning(
                "Redis refused TIME (%s): this worker keeps the offset from Redis's clock it last "
                "read (none at first: its machine's clock)",
                printable(str(exc)),
            )

    def _read_at(self, gap: float) -> None:
        self._synced, self._gap = time.monotonic(), gap

    def keep_clock(self) -> None:
        """:meth:`sync_clock` if it was not done in the last ``CLOCK_SYNC_EVERY`` seconds, or this
        machine's clock stepped since (its wall clock moved against its monotonic one)."""
        synced = self._synced
        if (
            synced is None
            or time.monotonic() - synced >= CLOCK_SYNC_EVERY
            or abs(_wall_less_monotonic() - self._gap) > CLOCK_STEP
        ):
            self.sync_clock()

    def _job(self, ref: str) -> str:
        return f"{self.prefix}:job:{ref}"

    def _chain(self, ref: str) -> str:
        return f"{self.prefix}:chain:{ref}"

    def _rate(self, vendor: str) -> str:
        return f"{self.prefix}:rate:{vendor}"

    # --- the poll chain ---------------------------------------------------------------------------

    def track(self, ref: str, message: str, due: float, ttl: float, *, once: str | None = None) -> str:
        """Note a job's first poll, if the job is new: ``new``; else what it is (``tracked``, or
        its callback's state: ``sending``, ``delivering``, ``sent``, ``failed``), left as it was.
        ``once``: this call's mark (:func:`call_mark`; a fresh one if not given), which
        :meth:`untrack` needs."""
        args = [message, due, max(60, int(ttl)), ref, once or call_mark()]
        answer = self._track(keys=[self._job(ref), self.due, self._chain(ref)], args=args)
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    def untrack(self, ref: str, once: str) -> bool:
        """Forget a job whose first poll could not be sent (unless that poll ran after all), if
        :meth:`track` noted it with the mark ``once``."""
        return bool(self._untrack(keys=[self._job(ref), self.due, self._chain(ref)], args=[ref, once]))

    def poll(self, ref: str, hop: int, tag: str, *, ttl: float, grace: float, message: str, due: float,
             vendor: str, now: float, booked: float | None, slot: float | None = None,
             at: float | None = None, reserve: bool = True) -> Claim:  # fmt: skip
        """Claim hop ``hop`` of ``ref``'s chain for this delivery, note its ``message`` and that its
        next hop is due by ``due``, and book a slot of ``vendor``'s shared rate if it is paced (or
        keep the one this hop holds: ``booked`` at that cut, due at ``slot``, at the rate ``at``;
        asked even when this process knows of no pace yet). ``reserve`` False: the claim alone (a
        poll at its deadline calls no vendor: a slot booked for it would go unused)."""
        known = self.paces.get(vendor)
        paced = reserve and (known is not None or booked is not None)
        args = [hop, tag, max(60, int(ttl)), repr(now), grace, message, repr(due),
                "1" if paced else "0", _cut(booked), _cut(slot), _cut(at)]  # fmt: skip
        answer = self._poll(keys=[self._chain(ref), self._rate(vendor)], args=args)
        code = int(answer[0])
        if len(answer) == 1:
            if code == Claim.RUN and known is not None and paced:
                self.paces[vendor] = None  # the script found no pace (it expired, or was not one: deleted)
            return Claim(code)
        fields = _known(answer[4:])  # the script let only a usable pace through
        self.paces[vendor] = fields
        held = _held(answer[2]) if fields is not None else None
        return Claim(code, _wait(answer[1]), held, None if held is None else float(answer[3]))

    def poll_meanwhile(self, ref: str, hop: int, tag: str, *, ttl: float, grace: float, message: str,
                       due: float, vendor: str, now: float) -> Callable[[], Claim]:  # fmt: skip
        """:meth:`poll` for a vendor this process knows is not paced: the script is sent now and its
        answer read by the returned call, so the round trip overlaps the status call made meanwhile
        (whose answer counts only if the claim is this delivery's). Anything unusual (a Redis that
        lost the script, a connection that broke) reads it by :meth:`poll` instead, which retries:
        the claim is the same delivery's, so running it twice is harmless."""

        def ordinary() -> Claim:
            return self.poll(ref, hop, tag, ttl=ttl, grace=grace, message=message, due=due, vendor=vendor,
                             now=now, booked=None)  # fmt: skip

        import redis

        self.paces.setdefault(vendor, None)  # refresh_paces reads it again: another worker's cut is heard
        pool = self.redis.connection_pool
        args = [hop, tag, max(60, int(ttl)), repr(now), grace, message, repr(due), "0"]
        try:
            connection = pool.get_connection()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            raise  # its retries are spent (STORE_RETRY_BUDGET): the ordinary path would spend them again
        except Exception:  # anything else: the ordinary path says what, after its retries
            return ordinary
        try:
            connection.send_command("EVALSHA", self._poll.sha, 2, self._chain(ref), self._rate(vendor), *args)
        except Exception:
            connection.disconnect()
            pool.release(connection)
            return ordinary

        def answer() -> Claim:
            try:
                found = connection.read_response()
            except Exception:  # NOSCRIPT after a Redis restart, or the connection broke: ask again
                connection.disconnect()
                return ordinary()
            finally:
                pool.release(connection)
            return Claim(int(found[0]))

        return answer

    def due_later(self, ref: str, hop: int, due: float) -> None:
        """Hop ``hop``'s next one comes later than its claim said: by ``due``."""
        self._due(keys=[self._chain(ref)], args=[hop, repr(due)])

    def finishing(self, ref: str, payload: str, ttl: float) -> bool:
        """Note the callback before sending it (the sweeper resends one left 'sending'); False: noted already."""
        return bool(
            self._finishing(
                keys=[self._job(ref), self.due, self._chain(ref)],
                args=[payload, self.now(), max(60, int(ttl)), ref, call_mark()],
            )
        )

    def delivering(self, ref: str, tag: str, grace: float, attempts: int) -> Delivery:
        """Whether this delivery of the callback runs it (and which attempt it is), and the noted callback."""
        code, payload = self._delivering(keys=[self._job(ref)], args=[tag, self.now(), grace, attempts, call_mark()])
        return Delivery(int(code), payload.decode() if isinstance(payload, bytes) else None)

    def callback_failed(
        self, ref: str, tag: str, reason: str, *, attempts: int, backoff: float, cap: float, jitter: float
    ) -> tuple[int, int, float]:
        """An attempt of the callback failed: ``(1, n, delay)``: try again in ``delay`` seconds
        (``backoff`` doubled per failed attempt, at most ``cap``, plus ``jitter`` x half of it);
        ``(0, n, 0)``: that was the last of ``attempts``, the job's record says ``failed`` (kept
        ``JOB_TTL``) and the failed index has it; ``(-1, 0, 0)``: another delivery has it now."""
        keys = [self._job(ref), self.due, self.failed_index]
        args = [tag, reason, attempts, backoff, cap, jitter, self.now(), JOB_TTL, ref, call_mark()]
        again, made, delay = self._callback_failed(keys=keys, args=args)
        return int(again), int(made), float(delay)

    def sent(self, ref: str) -> None:
        self._sent(keys=[self._job(ref), self.due], args=[ref, JOB_TTL])

    def overdue(self, before: float, limit: int = 500) -> list[tuple[str, dict[bytes, bytes]]]:
        """Jobs whose next poll (or callback) should have happened before ``before``, with their
        records (``done``, and the chain's ``hop``, ``due`` and ``msg``: one pipelined read)."""
        refs = [ref.decode() for ref in self.redis.zrangebyscore(self.due, "-inf", before, start=0, num=limit)]
        pipe = self.redis.pipeline(transaction=False)
        for ref in refs:
            pipe.hget(self._job(ref), "done")
            pipe.get(self._chain(ref))
        import redis

        found = pipe.execute(raise_on_error=False)
        for answer in found:
            if isinstance(answer, Exception) and not (
                isinstance(answer, redis.exceptions.ResponseError) and _foreign(answer)
            ):
                raise answer
        records = []
        for i, ref in enumerate(refs):
            # a key of another type (set by hand) reads as absent: one of them stopped every sweep
            done, chain = (None if isinstance(v, Exception) else v for v in found[2 * i : 2 * i + 2])
            record: dict[bytes, bytes] = {} if done is None else {b"done": done}
            parts = chain.split(b"\n", 4) if chain else []
            if len(parts) == 5:  # "hop\ntag\nclaimed_at\ndue\nmessage": a chain going on
                record.update({b"hop": parts[0], b"due": parts[3], b"msg": parts[4]})
            records.append((ref, record))
        return records

    def look_again(self, when: dict[str, float]) -> None:
        """Move live chains on in the sweeper's index: ``ref`` is looked at again at ``when[ref]``
        (one pipelined write; ZADD XX: a job the index no longer has is not put back)."""
        if when:
            self.redis.zadd(self.due, when, xx=True)

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

    def reserve(
        self, vendor: str, now: float, booked: float | None = None, slot: float | None = None, *, ahead: bool = False
    ) -> float:
        """:meth:`SharedPace.reserve` on ``vendor``'s stored pace (what :meth:`poll` does within its round trip)."""
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
        """:meth:`SharedPace.book` on ``vendor``'s stored pace: the wait, and the slot held (its
        ``cut`` None: nothing booked: no pace, or a queue ``MAX_PAUSE`` long)."""
        args = [repr(now), _cut(booked), _cut(slot), "1" if ahead else "0", _cut(at)]
        answer = self._reserve(keys=[self._rate(vendor)], args=args)
        if not answer:
            self.paces[vendor] = None
            return Booking(0.0, None, 0.0)
        fields = _known(answer[3:])  # the script let only a usable pace through
        self.paces[vendor] = fields
        held = _held(answer[1]) if fields is not None else None
        return Booking(_wait(answer[0]), held, float(answer[2]))

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
        """:meth:`SharedPace.throttled` on the stored pace (one round trip), ``reporter`` reporting
        (this process, :attr:`reporter`, unless said)."""
        self._report(vendor, now, measured, sent, retry_after, reporter, share=False)

    def share(self, vendor: str, now: float, *, measured: float, reporter: str = "") -> None:
        """:meth:`SharedPace.share` on the stored pace (one round trip): this process heard of the
        vendor's first cut, and adds what it saw accepted (``reporter``: this process unless said)."""
        self._report(vendor, now, measured, None, None, reporter, share=True)

    def _report(self, vendor: str, now: float, measured: float, sent: float | None, retry_after: float | None,
                reporter: str, *, share: bool) -> None:  # fmt: skip
        measured = min(max(measured, 0.0), MAX_SHARED_RATE) if math.isfinite(measured) else 0.0
        args = [repr(now), pause_for(retry_after), repr(measured), reporter or self.reporter, RATE_TTL,
                "" if sent is None else repr(sent), "1" if share else "0", self.cuts, vendor]  # fmt: skip
        self.paces[vendor] = _known(self._throttled(keys=[self._rate(vendor)], args=args))

    def refresh_paces(self) -> None:
        """Read again the pace of every vendor this process polled (another worker may have cut)."""
        for vendor in list(self.paces):
            self.refresh_pace(vendor)

    def refresh_pace(self, vendor: str) -> dict[str, str] | None:
        """Read ``vendor``'s pace again (None: not paced), and keep it in :attr:`paces`."""
        import redis

        try:
            fields = _known(self.redis.hmget(self._rate(vendor), *PACE_FIELDS))
        except redis.exceptions.ResponseError as exc:
            if not _foreign(exc):
                raise
            fields = None  # not a pace of ours: the next script to meet it deletes it
        self.paces[vendor] = fields
        return fields

    def listen(self) -> CutNotices:
        """Subscribe to the notices of vendors' first cuts (:class:`CutNotices`; close it when done)."""
        return CutNotices(self.redis, self.cuts)

    def rate(self, vendor: str) -> float | None:
        """The vendor's shared rate in requests per second, None while there is no limit."""
        import redis

        try:
            value = self.redis.hget(self._rate(vendor), "rate")
        except redis.exceptions.ResponseError as exc:
            if not _foreign(exc):
                raise
            return None
        return None if value is None else float(value)
