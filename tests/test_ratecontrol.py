"""Rate control: each part on its own with the time passed in, then a client against a throttling sandbox."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

import videojobs
from tests.clocks import SimClock
from videojobs._ratecontrol import (
    GROWTH_STEP,
    MAX_PAUSE,
    MAX_RATE_OVER_MEASURED,
    MIN_RATE,
    PROBE_AFTER,
    PROBE_PAUSES,
    SHARED_RECOVERY,
    SLOW_START_MIN_ROUND,
    SPARE_AHEAD,
    START_RATE,
    AcceptedRate,
    AdaptiveRate,
    CubicCalculator,
    RetryBudget,
    SharedPace,
    SlowStart,
    TokenBucket,
    is_throttle,
)
from videojobs._translate import MAX_RETRY_AFTER
from videojobs.sandbox import Sandbox

THROTTLE = videojobs.RateLimitError("slow down", retry_after=None)


def test_token_bucket_allows_its_burst_then_spaces_requests() -> None:
    bucket = TokenBucket(2.0, now=0.0)  # a burst of 2
    assert [bucket.reserve(0.0) for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]
    assert bucket.reserve(10.0) == 0.0  # refilled, up to the burst only
    assert bucket.reserve(10.0) == 0.0
    assert bucket.reserve(10.0) == pytest.approx(0.5)


def test_token_bucket_rate_changes_apply_to_the_next_reservation() -> None:
    bucket = TokenBucket(10.0, now=0.0)
    bucket.set_rate(1.0, now=0.0)
    assert bucket.capacity == 1.0
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == pytest.approx(1.0)


def test_cubic_cuts_by_beta_and_grows_back_past_the_last_rate() -> None:
    cubic = CubicCalculator(start=0.0, beta=0.7, recovery=None)  # botocore's curve: C = 0.4 req/s^3
    assert cubic.error_received(20.0, now=100.0) == pytest.approx(14.0)  # 0.7 x 20
    k = (20.0 * 0.3 / 0.4) ** (1 / 3)  # when the curve is back at 20
    assert cubic.success_received(100.0) == pytest.approx(14.0)
    assert cubic.success_received(100.0 + k) == pytest.approx(20.0)
    assert cubic.success_received(100.0 + k / 2) < 20.0 < cubic.success_received(100.0 + 2 * k)


@pytest.mark.parametrize("rate", [1.0, 5.0, 20.0, 500.0])
def test_cubic_takes_the_same_time_back_and_probes_as_gently_at_any_rate(rate: float) -> None:
    cubic = CubicCalculator(start=0.0)  # the default: K fixed at 10 s, beta 0.85
    assert cubic.error_received(rate, now=0.0) == pytest.approx(0.85 * rate)
    assert cubic.success_received(10.0) == pytest.approx(rate)  # back at the rate that was throttled
    assert cubic.success_received(15.0) == pytest.approx(rate * (1 + 0.15 / 8))  # 5 s past it: 2 % over
    assert cubic.success_received(30.0) == pytest.approx(rate * 2.2)  # an allowance that doubled is found
    restored = CubicCalculator.restored(*cubic.state)
    assert restored.success_received(15.0) == pytest.approx(cubic.success_received(15.0))


def test_accepted_rate_counts_the_last_second() -> None:
    accepted = AcceptedRate(window=1.0)
    for i in range(200):  # 20 accepted answers per second for 10 s
        accepted.record(i * 0.05)
    assert accepted.rate(9.96) == pytest.approx(20.0, abs=1)
    assert accepted.rate(30.0) == 0.0


def test_accepted_rate_since_a_time_is_measured_over_that_span_within_the_window() -> None:
    accepted = AcceptedRate()  # 10 s
    for i in range(60):  # one answer a second for a minute
        accepted.record(float(i))
    assert accepted.rate(59.5) == pytest.approx(1.0, abs=0.1)  # the last 10 s, not the whole minute
    assert accepted.rate(59.5, since=55.5) == pytest.approx(4 / 4.0)
    assert accepted.rate(59.5, since=58.8, least=1.0) == pytest.approx(1.0)  # over at least a second


def test_accepted_rate_keeps_only_its_window_and_reads_answers_recorded_out_of_order() -> None:
    accepted = AcceptedRate(window=1.0)
    for i in range(100_000):  # 10,000 answers a second for 10 s
        accepted.record(i * 1e-4)
    assert accepted.rate(10.0) == pytest.approx(10_000, rel=0.01)
    assert accepted.rate(10.0, since=9.9, least=0.1) == pytest.approx(10_000, rel=0.01)
    assert len(accepted._times) <= 2 * 10_000 + 1024  # what left the window is dropped
    accepted.record(10.0)
    accepted.record(9.99995)  # a thread that read the clock first and recorded second
    assert accepted.rate(10.0, since=9.99999, least=0.1) == pytest.approx(2 / 0.1)  # both counted


def test_slow_start_grows_per_answer_only_while_demand_keeps_up() -> None:
    slow = SlowStart(start=4.0)
    slow.round_trip(1.0)
    assert slow.grown(4.0, accepted=4.0) == 5.0  # busy: 1/round more requests per second per answer
    assert slow.grown(10.0, accepted=4.0) == 10.0  # 2.5 x what is asked: no growth, and no cut either
    assert slow.grown(7.5, accepted=4.0) == 8.0  # at most twice the demand


def test_slow_start_grows_a_step_at_a_time_by_every_answer_accepted_since() -> None:
    """Answers within GROWTH_STEP of slow start's last step are counted, and the next step adds
    1/round for each of them: what growing at every answer adds, with one reading of demand."""
    rate = AdaptiveRate(now=0.0)
    rate.observe(0.0, None, -1.0)  # a step: a round trip of 1 s (the round); demand, 1 req/s, holds the rate
    assert rate.rate == START_RATE
    for _ in range(99):
        rate.observe(GROWTH_STEP / 2, None, GROWTH_STEP / 2 - 1.0)
    assert rate.rate == START_RATE  # within the step: not grown on yet
    rate.observe(GROWTH_STEP, None, GROWTH_STEP - 1.0)  # 101 answers in the last second: demand allows 202
    assert rate.rate == pytest.approx(START_RATE + 100 / 1.0)  # the 100 answers since the last step, 1/round each


def test_slow_start_still_grows_after_its_clock_is_set_back() -> None:
    """An answer read on a clock earlier than slow start's last step (a clock set back, a thread
    that read it before another) is a step of its own: the rate does not wait for the clock to
    come back to where it was."""
    rate = AdaptiveRate(now=0.0)
    for i in range(20):  # busy: one answer a step, 1 s round trips
        rate.observe(10.0 + i * GROWTH_STEP, None, 9.0 + i * GROWTH_STEP)
    grown = rate.rate
    assert grown is not None
    assert grown > START_RATE
    for i in range(20):  # the clock was set back by 5 s
        rate.observe(5.0 + i * GROWTH_STEP, None, 4.0 + i * GROWTH_STEP)
    assert rate.rate is not None
    assert rate.rate > grown


def test_slow_start_doubles_per_smoothed_round_trip_but_not_faster_than_its_floor() -> None:
    slow = SlowStart(start=4.0)
    slow.round_trip(0.3)
    assert slow.round == pytest.approx(0.3)
    assert slow.grown(4.0, accepted=100.0) == pytest.approx(4.0 + 1 / 0.3)
    for _ in range(100):  # the vendor got fast: RFC 6298's smoothing follows it
        slow.round_trip(0.2)
    assert slow.round == pytest.approx(0.2, rel=1e-3)
    for _ in range(100):  # loopback: the round stops at its floor
        slow.round_trip(0.001)
    assert slow.round == SLOW_START_MIN_ROUND
    assert slow.grown(4.0, accepted=100.0) == pytest.approx(4.0 + 1 / SLOW_START_MIN_ROUND)


def test_token_bucket_counts_a_token_short_by_rounding_as_whole() -> None:
    bucket = TokenBucket(48.0, now=1000.0, capacity=1.0)
    assert bucket.take(1000.0) == 0.0
    assert bucket.take(1000.0 + (1 - 1e-12) / 48.0) == 0.0  # not a wait too small to move a clock


def test_a_cut_keeps_one_token_for_the_call_that_was_throttled() -> None:
    bucket = TokenBucket(20.0, now=0.0)
    bucket.set_rate(0.5, now=0.0, drain=True)
    assert bucket.take(0.0) == 0.0  # the retry goes when its Retry-After is out
    assert bucket.take(0.0) == pytest.approx(2.0)  # and no burst follows it


def test_only_a_rate_limit_is_a_throttle() -> None:
    assert is_throttle(THROTTLE)
    assert not is_throttle(videojobs.ServerError("502"))
    assert not is_throttle(None)


def test_before_any_throttle_a_single_job_never_waits_and_a_busy_client_ramps_up() -> None:
    rate = AdaptiveRate(now=0.0)
    assert rate.rate == START_RATE
    for i in range(100):  # one job, one poll a second: never waits, and the rate does not grow for it
        assert rate.acquire(float(i)) == 0.0
        rate.observe(i + 0.01, None)
    assert rate.rate == START_RATE
    t, sent, answers = 100.0, 0, []  # a queue of calls: send whenever the bucket lets one go, each
    while t < 101.0:  # answered 50 ms later (the others stay in flight meanwhile: a burst, not a lone caller)
        while answers and answers[0] <= t:
            rate.observe(answers[0], None, answers.pop(0) - 0.05)
        wait = rate.acquire(t)
        if wait == 0.0:
            answers.append(t + 0.05)
            sent += 1
        t += wait if wait else 0.001
    assert rate.rate is not None
    # slow start: it grows up to e-fold a round (0.1 s here: the round trip is shorter) while busy,
    # ten rounds in this second; demand (twice the last round's answers accepted) holds it to ~2^9
    assert 2**8 * START_RATE < rate.rate <= 2**10 * START_RATE
    assert sent > 2**6 * START_RATE


def test_a_throttle_cuts_from_what_the_vendor_accepted_since_the_last_cut() -> None:
    rate = AdaptiveRate(now=0.0)
    for i in range(200):  # 20 accepted answers a second for 10 s, the bucket ramped far above
        rate.observe(i * 0.05, None)
    rate.observe(10.0, THROTTLE)
    assert rate.throttled
    assert rate.rate == pytest.approx(0.5 * 20.0, rel=0.05)  # slow start's end: half the accepted rate, not the sent
    for i in range(100):  # 20 a second for 5 s more
        rate.observe(10.0 + i * 0.05, None)
    rate.observe(15.0, THROTTLE)
    assert rate.rate == pytest.approx(0.85 * 20.0, rel=0.05)  # later cuts: beta x what was accepted since


def test_one_429_does_not_slow_a_single_job_to_the_minimum_rate() -> None:
    rate = AdaptiveRate(now=0.0)
    for i in range(30):  # one job polled every second
        assert rate.acquire(float(i)) == 0.0
        rate.observe(i + 0.01, None)
    rate.observe(30.0, videojobs.RateLimitError("slow down", retry_after=0.0))
    assert rate.acquire(30.0) == 0.0  # the throttled call retries at once, as the vendor said
    assert rate.rate == pytest.approx(0.85, rel=0.1)  # beta x the one request a second it was sending
    waits = []
    for i in range(31, 61):
        waits.append(rate.acquire(float(i)))
        rate.observe(i + 0.01, None)
    assert max(waits) < 0.5  # was 2 s each (cut to the 0.5 req/s minimum, no token left)
    assert waits[-1] == 0.0  # and none once CUBIC is back


def test_failures_that_are_not_answers_neither_count_as_accepted_nor_grow_the_rate() -> None:
    rate = AdaptiveRate(now=0.0)
    for i in range(40):
        rate.observe(i / 40, videojobs.NetworkError("refused"))
    assert rate.rate == START_RATE  # no growth on failures
    rate.observe(1.0, THROTTLE)
    assert rate.rate == pytest.approx(0.5)  # nothing was accepted: the cut starts from the minimum
    paced = rate.rate
    for i in range(400):
        rate.observe(2.0 + i / 40, videojobs.ServerError("502"))
    assert rate.rate == paced  # 5xx answers are no reason to speed up


def test_adaptive_rate_pauses_the_vendor_for_its_retry_after() -> None:
    rate = AdaptiveRate(now=0.0)
    rate.observe(0.0, videojobs.RateLimitError("slow down", retry_after=3.0))
    assert rate.acquire(1.0) >= 2.0  # every call waits out the vendor's word


def test_adaptive_rate_never_passes_its_ceiling_and_can_be_turned_off() -> None:
    capped = AdaptiveRate(now=0.0, ceiling=2.0)
    assert [capped.acquire(0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    off = AdaptiveRate(now=0.0, adaptive=False)
    off.observe(0.0, THROTTLE)
    assert off.acquire(0.0) == 0.0


@pytest.mark.parametrize("throttle", [False, True], ids=["answers", "a throttle"])
def test_a_ceiling_below_the_slowest_pace_is_still_the_ceiling(throttle: bool) -> None:
    """``rate_limits={"vozo": 0.1}`` (a plan of 6 requests a minute): the floor of an adaptive
    rate (MIN_RATE, 0.5 req/s) was applied after the ceiling, and the first answer (or cut)
    raised the pace to one request every 2 s."""
    rate = AdaptiveRate(0.0, ceiling=0.1)
    now, sent = 0.0, []
    while now < 60.0:
        if (wait := rate.acquire(now)) == 0.0:
            sent.append(now)
            rate.observe(now + 0.05, THROTTLE if throttle and len(sent) == 2 else None, now)
            now += 0.05
        else:
            now += wait
    assert rate.rate == pytest.approx(0.1)
    assert len(sent) <= 7  # a token at the start, then one every 10 s
    assert all(b - a >= 10.0 - 1e-9 for a, b in itertools.pairwise(sent[1:]))


def test_retry_budget_bounds_retries_to_a_share_of_first_attempts() -> None:
    budget = RetryBudget(ratio=0.2, window=10.0, floor=3)
    for i in range(100):
        budget.first_attempt(i * 0.05)  # 100 first attempts in 5 s
    allowed = sum(budget.allow_retry(5.0) for _ in range(100))
    assert allowed == 3 + 20  # the floor and 20 % of the first attempts
    assert budget.refused == 77
    assert budget.allow_retry(30.0)  # the window has moved on


# --- a client against a sandbox vendor that throttles ---------------------------------------------


def _requests_per_second(sb: Sandbox, vendor: str) -> tuple[int, int]:
    served = sum(j.polls for j in sb.jobs.values() if j.vendor == vendor)
    return served, sb.throttled.get(vendor, 0)


@pytest.mark.anyio
async def test_a_client_settles_below_a_throttling_vendors_allowance() -> None:
    clock = SimClock()
    sb = Sandbox(clock=clock, rate_limits={"duomi": 5.0})
    refs = [f"duomi:t{i}-q0-d60" for i in range(40)]  # 40 jobs polling far faster than 5 req/s allows
    async with videojobs.AsyncClient(
        api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.transport(), clock=clock
    ) as client:
        fast = videojobs.FixedPolicy(0.2)
        start = clock.now()
        results = [r async for r in client.wait_all(refs, timeout=600, policy=fast)]
        elapsed = clock.now() - start
        rate = client.vendor("duomi").core.rate
    assert sorted(r.ref for r in results) == sorted(refs)
    assert all(isinstance(r, videojobs.JobStatus) for r in results), [
        r for r in results if not isinstance(r, videojobs.JobStatus)
    ]
    served, throttled = _requests_per_second(sb, "duomi")
    assert rate.throttled
    assert throttled / served < 0.10  # after the first throttles it paces itself
    assert math.isfinite(elapsed)


def test_slow_start_never_holds_back_a_lone_caller() -> None:
    """status() in a loop (one call in flight at a time) is not a burst: it goes at its own pace,
    a thousand calls a second, while a second caller in flight meanwhile waits on the bucket."""
    rate = AdaptiveRate(0.0)
    now = 0.0
    for _ in range(1000):
        assert rate.acquire(now) == 0.0
        now += 0.001
        rate.observe(now, None, now - 0.001)
    assert rate.acquire(now) == 0.0  # one in flight
    waits = [rate.acquire(now) for _ in range(int(rate.rate or 0) * 3)]
    assert max(waits) > 0  # the others of a burst are paced


def test_a_fleet_workers_slow_start_paces_its_one_call_in_flight() -> None:
    """A worker of a fleet (a prefork process: one call in flight at a time) is one caller of many
    at the vendor: its lone calls are paced by slow start, from START_RATE, growing with answers."""
    alone, fleet = AdaptiveRate(0.0), AdaptiveRate(0.0, fleet=True)
    for rate in (alone, fleet):
        for _ in range(int(START_RATE)):  # the bucket's first burst
            assert rate.acquire(0.0) == 0.0
            rate.observe(0.0, None, 0.0)
    assert alone.acquire(0.0) == 0.0  # a lone call goes
    wait = fleet.acquire(0.0)
    assert 0 < wait <= 1 / START_RATE
    now, sent = 0.0, 0
    while now < 1.0:  # one call at a time, each as soon as the ramp lets it, answered at once
        if (wait := fleet.acquire(now)) == 0.0:
            sent += 1
            fleet.observe(now + 0.001, None, now)
        now += max(wait, 0.001)
    assert sent > 4 * START_RATE  # it ramped up (slow start's growth: 1 / round per answer)
    assert fleet.rate is not None
    assert fleet.rate > 10 * START_RATE


def test_a_call_never_observed_stops_counting_as_in_flight() -> None:
    from videojobs._ratecontrol import LONE_CALL_LEASE

    rate = AdaptiveRate(0.0)
    assert rate.acquire(0.0) == 0.0  # cancelled: never observed
    for _ in range(int(START_RATE) + 1):
        rate.acquire(1.0)  # the bucket's burst is spent while it counts as in flight
    assert rate.acquire(1.0) > 0
    assert rate.acquire(LONE_CALL_LEASE + 1.0) == 0.0  # its lease ran out: a lone call again


def test_a_ceiling_and_a_throttle_hold_back_even_a_lone_caller() -> None:
    ceiling = AdaptiveRate(0.0, ceiling=1.0)
    assert ceiling.acquire(0.0) == 0.0
    ceiling.observe(0.0, None, 0.0)
    assert ceiling.acquire(0.0) > 0  # rate_limits is a hard ceiling, one caller or many
    throttled = AdaptiveRate(0.0)
    throttled.acquire(0.0)
    throttled.observe(0.0, THROTTLE, 0.0)
    assert throttled.acquire(0.0) == 0.0  # the cut keeps one token: the throttled call retries
    throttled.observe(0.1, None, 0.0)
    assert throttled.acquire(0.1) > 0  # after the vendor throttled, the bucket paces every call


@pytest.mark.anyio
async def test_a_call_waiting_out_a_pause_ends_at_its_deadline_with_the_same_error_on_both_faces() -> None:
    """The vendor pauses for 9.9 s (a 429's Retry-After); the next call has 10 s. On both faces it
    ends at 10 s with a RateLimitError: the sync face's pacing jitter (up to 10 %) used to be
    applied after the wait was cut to the call's end, so it slept past it (up to 10.9 s) and then
    ended with a NetworkError, having spent a token."""
    from tests.hostile import answer, hostile

    body = b'{"code":429,"message":"too many requests"}'
    ended: list[tuple[str, float, str]] = []
    with hostile(answer(429, body, {"Retry-After": "9.9"})) as url:
        options: dict[str, Any] = {"api_keys": {"vozo": "k" * 20}, "base_urls": {"vozo": url}, "max_retries": 0}
        for _ in range(5):  # the jitter is random: without the fix, each round overran with p = 0.99
            clock = SimClock()
            with videojobs.Client(clock=clock, request_timeout=10, **options) as client:
                with pytest.raises(videojobs.RateLimitError):
                    client.status("vozo:first")
                start = clock.now()
                with pytest.raises(videojobs.VideoJobsError) as info:
                    client.status("vozo:second")
                ended.append(("sync", clock.now() - start, type(info.value).__name__))
            clock = SimClock()
            async with videojobs.AsyncClient(clock=clock, request_timeout=10, **options) as aclient:
                with pytest.raises(videojobs.RateLimitError):
                    await aclient.status("vozo:first")
                start = clock.now()
                with pytest.raises(videojobs.VideoJobsError) as info:
                    await aclient.status("vozo:second")
                ended.append(("async", clock.now() - start, type(info.value).__name__))
                message = str(info.value)
    assert all(took <= 10.0 and kind == "RateLimitError" for _, took, kind in ended), ended
    assert "no request slot came before this call's time ran out" in message


@pytest.mark.parametrize("last_cut", [-1e200, -1e150])
def test_a_shared_pace_from_a_cut_absurdly_far_away_reads_a_rate_instead_of_overflowing(last_cut: float) -> None:
    """A pace whose cut time was set by hand in Redis: the curve's cube overflowed a float (an
    OverflowError at every poll of the vendor). Its time is read within CUBIC_SPAN of the plateau."""
    pace = SharedPace(w_max=5.0, k=10.0, last_cut=last_cut)
    rate = pace.rate(1000.0)
    assert rate is not None
    assert MIN_RATE <= rate <= MAX_RATE_OVER_MEASURED * 5.0


@pytest.mark.parametrize("retry_after", ["86400", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_retry_after_of_a_day_pauses_the_vendor_for_at_most_max_pause(retry_after: str) -> None:
    """One 429 saying to come back in a day (or in the year 9999): the call that got it reads all
    of it, but the vendor-wide pause stops after MAX_PAUSE, so another job's call is sent again and
    sees the vendor recovered. It used to stop every call of the vendor for 24 h, unsent."""
    import itertools

    from tests.hostile import OK_BODY, hostile

    served = itertools.count()

    def scenario(request: Any, conn: Any) -> None:
        if next(served) == 0:
            body = b'{"code":429,"message":"too many requests"}'
            head = f"HTTP/1.1 429 Too Many\r\nContent-Length: {len(body)}\r\nRetry-After: {retry_after}\r\n\r\n"
        else:
            body = OK_BODY
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nContent-Type: application/json\r\n\r\n"
        conn.sendall(head.encode() + body)

    clock = SimClock()
    with (
        hostile(scenario) as url,
        videojobs.Client(clock=clock, api_keys={"vozo": "k" * 20}, base_urls={"vozo": url}, max_retries=0) as client,
    ):
        with pytest.raises(videojobs.RateLimitError) as info:
            client.status("vozo:job-a")
        assert info.value.retry_after == MAX_RETRY_AFTER  # what the vendor said, for the call that got it
        with pytest.raises(videojobs.RateLimitError) as info:
            client.status("vozo:job-b")  # the vendor is paused: past this call's time, raised unsent
        assert info.value.retry_after == pytest.approx(MAX_PAUSE)
        clock.sleep(MAX_PAUSE)
        assert client.status("vozo:job-b").state is videojobs.State.RUNNING  # asked again, and it recovered


def test_a_shared_pace_pauses_for_at_most_max_pause() -> None:
    pace = SharedPace()
    pace.throttled(1000.0, measured=4.0, sent=999.0, retry_after=MAX_RETRY_AFTER)
    assert pace.reserve(1000.0) == pytest.approx(MAX_PAUSE)
    assert pace.reserve(1000.0 + MAX_PAUSE) < 1.0  # then the cut rate, not a day's pause


def test_the_retry_budget_takes_a_clock_too_large_to_move_by_its_window() -> None:
    """At 1e20 (a clock in nanoseconds, or --time-scale 1e20) now - window == now: the first
    attempt just noted was dropped with the old ones, and the next step read an empty deque
    (a bare IndexError from every status call)."""
    budget = RetryBudget()
    budget.first_attempt(1e20)
    budget.first_attempt(1e20)
    assert budget.allow_retry(1e20)


def test_a_curve_whose_k_cubes_to_zero_reads_a_rate_instead_of_dividing_by_zero() -> None:
    """``k`` = 1e-120 set by hand in Redis passed the store's check (a finite k >= 0): its cube
    rounds to 0.0 and every poll of the vendor, on every worker, raised a bare ZeroDivisionError."""
    rate = SharedPace(w_max=5.0, k=1e-120, last_cut=1000.0).rate(1001.0)
    assert rate is not None
    assert MIN_RATE <= rate <= MAX_RATE_OVER_MEASURED * 5.0


@pytest.mark.parametrize(
    "fields",
    [
        {"k": 1e-120},  # its cube rounds to 0
        {"w_max": 1e308},  # the curve, the bucket and every wait overflow
        {"rate": 1e-300},  # a wait of ~1e300 s
        {"rate": 2e6},
        {"tokens": -1e308},  # a wait of ~2e307 s: an OverflowError in Celery's countdown
        {"tokens": -1e7},  # a poll booked 23 days out
        {"tokens": 1e9},
        {"stamp": math.nan},
        {"sent": -1.0},
        {"sent": 1e300},
        {"sent_at": math.inf},
    ],
    ids=[
        "k-tiny",
        "w_max-huge",
        "rate-tiny",
        "rate-huge",
        "tokens-1e308",
        "tokens-1e7",
        "tokens-huge",
        "stamp-nan",
        "sent-negative",
        "sent-huge",
        "sent_at-inf",
    ],
)
def test_a_stored_pace_out_of_the_range_the_workers_write_is_not_usable(fields: dict[str, float]) -> None:
    good = {
        "w_max": 5.0,
        "k": 10.0,
        "last_cut": 1000.0,
        "tokens": -3.0,
        "stamp": 1000.0,
        "pause_until": 0.0,
        "rate": 4.25,
    }
    assert SharedPace.usable(good)
    assert SharedPace.usable({**good, "k": 0.0})
    assert not SharedPace.usable({**good, **fields})


def test_a_shared_pace_books_no_slot_more_than_max_pause_away() -> None:
    """At MIN_RATE each caller was booked 2 s behind the last, without end: a queue of callers
    (or a bucket set by hand) was told to wait hours. Past MAX_PAUSE nothing is booked: the
    caller hears MAX_PAUSE and asks again, and the queue did not grow."""
    pace = SharedPace()
    pace.throttled(1000.0, measured=MIN_RATE, sent=999.9, retry_after=None)
    waits = [pace.reserve(1000.0) for _ in range(400)]
    assert max(waits) == pytest.approx(MAX_PAUSE)
    assert pace.tokens == -MAX_PAUSE * MIN_RATE  # the slots within MAX_PAUSE booked, and no more
    assert pace.reserve(1000.0) == MAX_PAUSE
    assert pace.tokens == -MAX_PAUSE * MIN_RATE  # nothing booked


def test_a_clock_that_runs_ahead_neither_stops_the_bucket_refilling_nor_suppresses_later_cuts() -> None:
    """A worker an hour ahead stamps the bucket with its now: a worker on time saw no refill (``now
    > stamp`` never held) and waited for slots it had; and its cut, stamped an hour ahead, read as
    the same congestion event as every 429 in that hour, so none of them cut."""
    t = 5_000_000.0
    pace = SharedPace()
    pace.throttled(t, measured=5.0, sent=t - 0.1, retry_after=None)
    pace.reserve(t + 3600.0)  # the worker ahead
    assert [pace.reserve(t + 22.0 + 2 * i) for i in range(5)] == [0.0] * 5  # one every 2 s: well under the rate
    ahead = SharedPace()
    assert ahead.throttled(t + 3600.0, measured=50.0, sent=t + 3599.9, retry_after=None)
    assert ahead.throttled(t + 10.0, measured=2.0, sent=t + 9.9, retry_after=None)  # on time: a cut
    rate = ahead.rate(t + 10.0)
    assert rate is not None
    assert rate < 42.5 * 0.9
    assert not ahead.throttled(t + 10.5, measured=2.0, sent=t + 10.4, retry_after=None)  # then once a second


def _granted_per_second(pace: SharedPace | None, skew: float, reserve: Any = None) -> float:
    """Two workers, the second ``skew`` s behind, ask a pace cut to 4.25 req/s (grown back along its
    curve meanwhile) for a slot 50 times a second in turn for a minute: the slots it granted per
    second of true time, over the last 50 s."""
    t0 = 1_000_000.0
    if reserve is None:
        assert pace is not None
        pace.throttled(t0, measured=5.0, sent=t0 - 0.1, retry_after=None)
        reserve = pace.reserve
    sends = []
    for i in range(50 * 60):
        true = t0 + 1 + 0.02 * i
        wait = reserve(true - (skew if i % 2 else 0.0))
        if wait < MAX_PAUSE:  # booked (a full queue books nothing)
            sends.append(true + wait)
    return len([s for s in sends if t0 + 11 <= s < t0 + 61]) / 50


@pytest.mark.parametrize("skew", [0.5, 5.0, 60.0])
def test_a_worker_whose_clock_runs_behind_does_not_unpace_the_vendor(skew: float) -> None:
    """Reading a stamp more than a second ahead as now (for a worker ahead of the others) let a
    worker behind lower it at each booking, and the others refilled the skew's worth of tokens
    every time: 50 slots a second through a pace of 4.25-5 with a worker 5 s behind. The fleet is
    granted what two workers on one clock are."""
    assert _granted_per_second(SharedPace(), skew) == pytest.approx(_granted_per_second(SharedPace(), 0.0), rel=0.1)


def test_one_burst_reported_by_workers_whose_clocks_differ_is_one_cut() -> None:
    """20 calls sent within 0.4 s, all answered 429, reported in turn by two workers, one 5 s behind:
    a cut stamped ahead of a worker's clock read as stale, and the burst cut the rate 20 times."""
    pace = SharedPace()
    t0 = 1_000_000.0
    pace.throttled(t0, measured=20.0, sent=t0 - 0.1, retry_after=None)  # a cut long before
    start = t0 + 100
    cuts = 0
    for i in range(20):
        behind = 5.0 if i % 2 else 0.0
        sent, now = start + 0.02 * i - behind, start + 0.5 + 0.02 * i - behind
        cuts += pace.throttled(now, measured=20.0, sent=sent, retry_after=None)
    assert cuts == 1


def test_a_shared_pace_cuts_from_what_the_fleet_sent_at_most_its_rate() -> None:
    """A cut starts from the rate the fleet was sending (what the pace counted as each call went),
    not from the curve: after a quiet spell the curve stands far above anything sent, and cutting
    from it let the next burst through at twice the allowance (16-24 % of a burst's calls answered
    429). Sending faster than the pace allows is not counted past the pace."""
    pace = SharedPace()
    assert pace.throttled(0.0, measured=10.0, sent=None, retry_after=None)
    for i in range(60):  # 6 calls a second for 10 s: under the 8.5 the pace allows
        assert pace.reserve(2.0 + i / 6) == 0.0
    now = 12.0
    assert pace.throttled(now, measured=1.0, sent=11.9, retry_after=None)
    assert pace.w_max == pytest.approx(6.0, rel=0.1)
    busy = SharedPace()
    assert busy.throttled(0.0, measured=10.0, sent=None, retry_after=None)
    t = 2.0
    while t < 12.0:  # callers that wait out each wait they are told: as fast as the pace goes
        if wait := busy.reserve(t):
            t += wait
            assert busy.reserve(t, booked=busy.last_cut) == 0.0  # its slot came: sent
    rate = busy.rate(12.0)
    assert rate is not None
    assert busy.throttled(12.0, measured=1.0, sent=11.9, retry_after=None)
    assert busy.w_max == pytest.approx(rate, rel=0.1)


def test_a_cut_starts_from_what_the_vendor_accepted_of_what_the_fleet_sent() -> None:
    """A pace 70 % over a vendor that accepts 20 calls a second (a token bucket with a one-second
    burst), callers asking 28 a second: each cut started from what the fleet sent, 15 % off it,
    and it took three cuts (and 11 429s) to come under the allowance. A cut now takes the 429s
    reported before it off what was sent: under it at the second cut. A probe's one 429 takes
    nothing off (the cut is from what was sent)."""
    pace = SharedPace()
    pace.throttled(0.0, measured=40.0, sent=None, retry_after=None)  # first cut: 34 req/s
    tokens, stamp, t = 20.0, 0.0, 0.05
    accepted = AcceptedRate(window=1.0)
    floors, refused = [], 0
    while t < 10.0:
        if wait := pace.reserve(t):
            t += wait
            assert pace.reserve(t, booked=pace.last_cut) == 0.0
        tokens, stamp = min(20.0, tokens + (t - stamp) * 20.0), t
        if tokens >= 1:
            tokens -= 1
            accepted.record(t)
        else:
            refused += 1
            if pace.throttled(t + 0.01, measured=accepted.rate(t), sent=t, retry_after=None):
                floors.append(pace.floor)
        t += 1 / 28
    assert floors[0] > 20, floors
    assert floors[1] < 20 * 1.02, floors  # at the allowance (0.85 of what was accepted over about a second)
    assert refused <= 8
    probe = SharedPace()
    probe.throttled(0.0, measured=22.0, sent=None, retry_after=None)
    t = _fleet_sending(probe, 0.05, 5.0, 1 / 18)
    assert probe.throttled(t, measured=18.0, sent=t - 0.05, retry_after=None)
    assert probe.w_max == pytest.approx(18.0, rel=0.05)  # what was sent


def test_a_share_heard_of_the_first_cut_adds_once_and_never_cuts() -> None:
    """A worker that hears of the vendor's first cut (its notice) adds what it saw accepted, once and
    within FIRST_BURST, as a reporter of the burst's 429s does: with slow start most workers see
    no 429. A share heard late, twice, or of a vendor with no pace changes nothing."""
    from videojobs._ratecontrol import FIRST_BURST

    nothing = SharedPace()
    assert not nothing.share(0.0, measured=5.0, reporter="w1")
    assert not nothing.paced
    pace = SharedPace()
    assert pace.throttled(0.0, measured=5.0, sent=-0.05, retry_after=None, reporter="w0")
    assert pace.share(0.3, measured=3.0, reporter="w1")
    assert (pace.w_max, pace.fill) == (pytest.approx(8.0), pytest.approx(6.8))
    last_cut = pace.last_cut
    assert not pace.share(0.4, measured=3.0, reporter="w1")  # once
    assert not pace.share(0.5, measured=3.0, reporter="w0")  # the reporter's share is in
    assert not pace.share(FIRST_BURST + 0.1, measured=3.0, reporter="w2")  # late
    assert not pace.share(0.5, measured=3.0, reporter="")  # nobody
    assert (pace.w_max, pace.last_cut) == (pytest.approx(8.0), last_cut)  # and never a cut
    assert pace.refused_rate(0.0) == pytest.approx(1.0)  # shares are no 429s


def test_a_slot_booked_ahead_is_counted_as_sent_once_when_it_is_used() -> None:
    """A poll books its next call's slot with its answer; that call goes when its hop comes back. It
    was counted when booked (with no wait) and again when sent: the fleet's send rate read up to
    twice what the vendor saw, and a cut started from it."""
    pace = SharedPace()
    pace.throttled(0.0, measured=10.0, sent=None, retry_after=None)
    before = pace.sent_rate(5.0)
    assert pace.reserve(5.0, ahead=True) == 0.0
    assert pace.sent_rate(5.0) == before  # booked, not sent
    assert pace.reserve(5.05, booked=pace.last_cut, slot=5.0) == 0.0
    once = pace.sent_rate(5.05)
    assert once == pytest.approx(before * math.exp(-0.05) + 1.0)  # sent: counted once
    assert pace.reserve(5.1) == 0.0
    assert pace.sent_rate(5.1) == pytest.approx(once * math.exp(-0.05) + 1.0)  # sent now: counted


def test_after_a_quiet_spell_the_burst_a_paced_vendor_gets_is_the_cuts_rate() -> None:
    """The rate held grows with what the fleet sends while slots booked at an older rate hold the
    vendor at it; the bucket saved up a burst of that rate, and after a quiet minute the next
    wave of polls went out at twice the allowance. It saves up the cut's rate."""
    pace = SharedPace()
    pace.throttled(0.0, measured=5.0, sent=None, retry_after=None)  # 4.25 req/s
    pace.fill = 9.5  # what the rate held grew to meanwhile (as in tests/pace_sim.py's quiet minute)
    burst = 0
    while pace.reserve(100.0) == 0.0:
        burst += 1
    assert burst <= pace.floor == pytest.approx(4.25)


def test_after_a_retry_after_the_fleets_calls_go_at_the_rate_not_at_once() -> None:
    """A 429 with a Retry-After pauses the vendor for every worker; the bucket refilled meanwhile, and
    every poll held by the pause went at its end at once: the fleet's send rate read high and the
    next cut started from it (a third congestion within four seconds, two workers sharing a
    20 req/s vendor). It saves nothing up while the vendor is paused."""
    pace = SharedPace()
    pace.throttled(0.0, measured=20.0, sent=None, retry_after=None)
    _fleet_sending(pace, 0.05, 3.0, 1 / 17)
    assert pace.throttled(3.0, measured=20.0, sent=2.95, retry_after=1.0)
    behind = pace.book(3.5)  # paused: its slot is booked behind the pause, at the rate
    assert behind.cut == pace.last_cut
    assert behind.wait == pytest.approx(0.5 + 1 / pace.floor, rel=0.01)
    waits = [pace.reserve(4.0) for _ in range(5)]
    assert waits[0] == pytest.approx(behind.wait - 0.5 + 1 / pace.fill)  # behind it, at the rate then
    assert waits == sorted(waits)  # one after another at the rate
    assert waits[-1] - waits[0] == pytest.approx(4 / pace.fill)
    assert pace.fill == pytest.approx(pace.floor, rel=0.05)  # the cut's, grown a little along the curve


def test_a_pause_pays_off_the_slots_booked_before_it_and_a_cut_within_it_saves_nothing_up() -> None:
    """Slots booked before a Retry-After's pause: their callers come back to the pause and book again
    after it, so the queue they were is paid off by its end (kept as a debt past it, it held the
    first caller after a 10 s pause 1.9 s for nothing). A cut while the vendor is paused (a 429
    without a Retry-After, for a call sent before the pause) starts the bucket empty at the
    pause's end too, not refilled meanwhile."""
    pace = SharedPace()
    pace.throttled(0.0, measured=20.0, sent=None, retry_after=None)  # 17 req/s
    waits = [pace.reserve(0.5) for _ in range(60)]
    assert waits[-1] > 2.0  # a queue of two seconds and more
    assert not pace.throttled(0.9, measured=20.0, sent=0.8, retry_after=10.0)  # the same congestion: no cut
    assert pace.reserve(10.9) == pytest.approx(0.0, abs=1 / pace.fill)
    paused = SharedPace()
    paused.throttled(0.0, measured=20.0, sent=None, retry_after=10.0)
    assert paused.throttled(5.0, measured=0.0, sent=4.9, retry_after=None)  # a cut within the pause
    burst = 0
    while paused.reserve(10.0) == 0.0:
        burst += 1
    assert burst <= 1


@pytest.mark.parametrize("workers", [1, 3, 8])
@pytest.mark.parametrize("allowance", [5.0, 20.0])
def test_a_fleets_first_burst_is_its_workers_slow_starts_not_every_jobs_first_poll(
    workers: int, allowance: float
) -> None:
    """400 jobs tracked at once: until the vendor first throttled, every worker sent each poll at once,
    and half the first 10 seconds' calls were answered 429 (199 at 20 req/s, 208 at 5). Each worker
    now ramps up from START_RATE, and hears of the first cut at once: the 429s are at most each
    worker's first burst and a second of the allowance."""
    from tests.pace_sim import memory_fleet, simulate

    run = simulate(memory_fleet(workers), allowance=allowance, seconds=10.0)
    refused = sum(1 for when, accepted in run.sent if when < 10.0 and not accepted)
    assert refused <= workers * START_RATE + allowance, refused
    assert run(0.0, 10.0)[0] >= 0.9  # and the allowance is used meanwhile


@pytest.mark.parametrize("workers", [1, 3, 8])
@pytest.mark.parametrize("allowance", [5.0, 20.0])
def test_a_fleet_finds_the_vendors_allowance_whatever_its_size(workers: int, allowance: float) -> None:
    """Workers sharing a pace (tests/pace_sim.py) keep a vendor at its allowance with few 429s, at any
    fleet size. The first cut came from one worker's share of what the vendor accepted, and the
    rate never grew past twice it: 8 workers held a 5 req/s vendor at 0.5 req/s for minutes
    (10 % of the allowance), 20 req/s at 1.7-6. Each reporter of that first burst now adds its
    share, and the rate grows with what the fleet sends."""
    from tests.pace_sim import memory_fleet, simulate

    window = simulate(memory_fleet(workers), allowance=allowance)
    accepted, throttled = window(60.0, 180.0)
    assert accepted >= 0.95, (accepted, throttled)
    assert throttled <= 0.04, (accepted, throttled)
    assert window(10.0, 60.0)[0] >= 0.8  # found within seconds, not minutes


@pytest.mark.parametrize("retry_after", [None, 1.0])
@pytest.mark.parametrize("workers", [1, 8])
@pytest.mark.parametrize("allowance", [5.0, 20.0])
def test_a_fleet_held_at_a_throttling_vendors_rate_sends_few_polls_back_for_nothing(
    workers: int, allowance: float, retry_after: float | None
) -> None:
    """400 jobs queue for a vendor's rate (20-80 s of slots booked ahead). Each cut withdrew every
    slot booked, and every poll of the queue went back to the broker to book again: 58-77 % of
    the hops called no vendor (66-81 % with the sandbox's 1 s Retry-After, whose pause sent each
    poll back twice; 64 % in ``make bench``). A cut now keeps the share of each slot's rate the
    new rate is, a pause books behind itself, a slot booked before the rate grew keeps its time
    (repaid at the faster rate, the queue's end moved in among the slots already booked), and
    a fleet probes past the rate last throttled half as often as one process (each probe's
    Retry-After sends the slots within its pause back): 1-9 % (6-13 % with the Retry-After)."""
    from tests.pace_sim import memory_fleet, simulate

    run = simulate(memory_fleet(workers), allowance=allowance, jobs=400, seconds=120.0, retry_after=retry_after)
    accepted, throttled = run(20.0, 120.0)
    assert run.idle(20.0, 120.0) <= (0.1 if retry_after is None else 0.15)
    assert throttled <= 0.03
    # each 429's pause (a second) leaves the vendor idle for that long: 95-100 % of it used without
    assert accepted >= (0.95 if retry_after is None else 0.94), (accepted, throttled)


@pytest.mark.parametrize("workers", [1, 8])
@pytest.mark.parametrize("allowance", [5.0, 20.0])
def test_a_fleet_back_from_a_quiet_minute_does_not_burst_past_the_allowance(workers: int, allowance: float) -> None:
    """After a minute without a poll the curve stood at twice the rate last throttled, and the next
    wave of polls went out at it: 36-38 % of its calls answered 429. The rate now holds while the
    fleet is quiet, and grows only with what the fleet sends."""
    from tests.pace_sim import memory_fleet, simulate

    window = simulate(memory_fleet(workers), allowance=allowance, quiet=(60.0, 120.0))
    assert window(120.0, 130.0)[1] <= 0.1, window(120.0, 130.0)
    assert window(130.0, 180.0)[0] >= 0.95


@pytest.mark.parametrize("retry_after", [None, 1.0])
@pytest.mark.parametrize("jobs", [100, 400])
@pytest.mark.parametrize("workers", [1, 8])
def test_a_fleet_follows_a_vendor_that_raises_its_allowance_whatever_its_queue(
    workers: int, jobs: int, retry_after: float | None
) -> None:
    """A vendor raises its allowance from 5 to 20 req/s. A queue's slots keep the rate they were
    booked at, and a rate grown since was booked only behind them: the vendor saw it a queue later,
    and 400 jobs (80 s of queue) were still polled at 5.4-7.8 req/s 70-100 s after the raise. Slots
    booked among the queue's, in the rate it leaves free, carry the rate to the vendor within a
    second: 17-20 req/s then, whatever the queue; the curve's own pace is what is left."""
    from tests.pace_sim import memory_fleet, simulate

    run = simulate(
        memory_fleet(workers), allowance=5.0, jobs=jobs, seconds=160.0, raised=(60.0, 20.0), retry_after=retry_after
    )
    accepted = sum(ok for when, ok in run.sent if 130.0 <= when < 160.0) / 30.0
    assert accepted >= 0.85 * 20.0, accepted
    assert run(60.0, 160.0)[1] <= 0.02  # few 429s on the way
    assert run.idle(60.0, 160.0) <= 0.1


def _among(pace: SharedPace, now: float) -> int:
    """How many slots ``pace`` books among its queue's at ``now``, one booking after another, until
    one goes behind the queue: the rate left free there, over ``SPARE_AHEAD``."""
    count = 0
    while True:
        spare = pace.spare
        booking = pace.book(now, ahead=True)
        if pace.spare == spare:
            return count
        assert booking.cut == pace.last_cut
        assert 0.0 <= booking.wait < SPARE_AHEAD
        count += 1


@pytest.mark.parametrize(
    ("since_cut", "pause", "since_empty", "whole"),
    [
        (PROBE_AFTER - 5.0, 0.0, 100.0, False),  # the curve not long past its return: the last cut's rate
        (PROBE_AFTER + 5.0, 0.0, 100.0, True),  # a queue sent at its rate for PROBE_AFTER: the whole rate
        (PROBE_AFTER + 5.0, 0.0, 10.0, False),  # no queue 10 s ago: the vendor has not seen the rate
        (PROBE_AFTER + 50.0, 5.0, 100.0, True),  # a 5 s pause: 45 s after it
        (PROBE_AFTER + 50.0, 10.0, 100.0, False),  # a 10 s pause: 90 s
    ],
)
def test_slots_among_a_queue_booked_slower_fill_it_to_the_last_cuts_rate_and_probe_only_after_a_while(
    since_cut: float, pause: float, since_empty: float, whole: bool
) -> None:
    """A queue booked at 5 req/s, the rate since grown past the last cut's (8.5 req/s; the curve past
    its return, the fleet sending 14 req/s): the slots booked among the queue's, within a
    second, fill it to 8.5 req/s, the rate the vendor took; to 21 only when the queue has been sent
    at its rate for ``PROBE_AFTER`` with no cut, no pause (and ``PROBE_PAUSES`` times the last
    pause's length): a probe past the rate last throttled then reaches the vendor at once."""
    now = 1000.0
    cut = now - since_cut
    pace = SharedPace(
        w_max=10.0,
        k=SHARED_RECOVERY,
        last_cut=cut,
        fill=5.0,
        tokens=-400.0,  # 80 s of queue at 5 req/s
        stamp=now,
        pause_until=cut + pause,
        sent=14.0,
        sent_at=now,
        profile=f"{cut:.17g} 5",
        emptied=now - since_empty,
    )
    assert pace.floor == pytest.approx(8.5)
    rate = pace.rate(now)
    assert rate is not None
    assert rate > pace.floor + 1  # the curve past its return, the fleet sending past the rate held
    target = rate if whole else pace.floor
    assert PROBE_PAUSES * pause <= since_cut - pause or not whole
    assert _among(pace, now) == pytest.approx((target - 5.0) * SPARE_AHEAD, abs=1)


def test_slots_among_a_queue_go_at_the_rate_the_vendor_sees_in_any_second() -> None:
    """Another worker's share of the first cut raises the rate held from 1.7 to 8.5 req/s after 40
    slots were booked at 1.7 (23 s of queue): the slots then booked among them bring what is due in
    each coming second to 8.5, not more (the queue's own, plus those among them)."""
    pace = SharedPace()
    pace.throttled(0.0, measured=2.0, sent=-0.05, retry_after=None, reporter="w0")
    slots = [pace.book(0.1, ahead=True).wait + 0.1 for _ in range(40)]
    old = pace.fill
    assert pace.share(0.2, measured=8.0, reporter="w1")
    assert pace.floor == pytest.approx(8.5)
    assert old == pytest.approx(1.7, rel=0.01)
    for step in range(30):  # polls keep booking (more than the rate), a tenth of a second apart
        now = 0.3 + step / 10
        slots += [now + pace.book(now, ahead=True).wait for _ in range(3)]
    for start in (0.3, 1.0, 1.7, 2.2):  # any second of the next three
        due = sum(1 for slot in slots if start <= slot < start + 1.0)
        assert pace.floor - 1 <= due <= pace.floor + 1, (start, due)


@pytest.mark.parametrize("allowance", [5.0, 20.0])
def test_a_fleet_whose_polls_wait_less_than_the_queue_keeps_the_rate_and_the_order(allowance: float) -> None:
    """A broker holds a message for less than its visibility timeout (the tests' app: 5 s, so a poll
    waits at most 3.75 s), and 400 jobs queue for 80 s at 5 req/s. A first fix booked no slot past
    that: the jobs just answered took each slot that came free, and 238 of the 400 never called
    the vendor in three minutes. A poll now keeps its slot and is sent on until it comes."""
    from tests.pace_sim import memory_fleet, simulate

    run = simulate(memory_fleet(8), allowance=allowance, longest=3.75)
    accepted, throttled = run(60.0, 180.0)
    assert accepted >= 0.95, (accepted, throttled)
    assert throttled <= 0.04, (accepted, throttled)
    assert sum(1 for calls in run.calls if not calls) == 0  # every job called the vendor


def _fleet_sending(pace: SharedPace, start: float, end: float, every: float) -> float:
    """Callers send through ``pace`` one every ``every`` seconds from ``start`` (each waiting out the
    wait it is told, then sending on its booked slot) until ``end``; the time the last one went."""
    t = start
    while t < end:
        if wait := pace.reserve(t):
            t += wait
            assert pace.reserve(t, booked=pace.last_cut) == 0.0
        t += every
    return t


@pytest.mark.parametrize("ahead", [0.5, 2.0, 10.0])
def test_a_reporter_whose_clock_runs_ahead_cuts_from_what_the_fleet_sent(ahead: float) -> None:
    """The fleet's send rate was read back to the reporter's now: one 2 s ahead of the workers that
    counted the sends read it as 2 s old (e^-2) and cut a vendor sending 4.5 req/s to MIN_RATE.
    It is read back over no longer than the throttled call's own round trip."""
    on_time, skewed = SharedPace(), SharedPace()
    for pace in (on_time, skewed):
        pace.throttled(1000.0, measured=5.0, sent=999.95, retry_after=None, reporter="a")
        t = _fleet_sending(pace, 1000.25, 1020.0, 0.25)
    on_time.throttled(t, measured=0.6, sent=t - 0.05, retry_after=None, reporter="b")
    skewed.throttled(t + ahead, measured=0.6, sent=t + ahead - 0.05, retry_after=None, reporter="b")
    assert on_time.w_max > 4.0
    assert skewed.w_max == pytest.approx(on_time.w_max, rel=0.1)


def test_a_share_reported_late_changes_nothing() -> None:
    """A worker reporting a 429 of the first burst 40 s late (a slow answer, or a clock behind) set the
    rate held back to 0.85 x the cut's base: a queue of slots booked at the rate grown since was
    then past what a pace may hold, and the store deleted the vendor's pace (every waiting job
    then called at once). Shares count within FIRST_BURST of the cut; and none lowers the rate.
    (A minute late here: the curve takes ``SHARED_RECOVERY`` to come back to the cut's rate.)"""
    pace = SharedPace()
    pace.throttled(0.0, measured=1.0, sent=-0.05, retry_after=None, reporter="w0")
    t = 0.05
    while t < 60.0:  # callers always waiting: the rate grows along the curve
        t += pace.reserve(t)
        pace.reserve(t, booked=pace.last_cut)
    for _ in range(600):  # a wave of new jobs books its slots
        pace.reserve(60.0)
    held = pace.fill
    assert held > 2 * pace.w_max  # grown past what the cut said
    w_max = pace.w_max
    assert not pace.throttled(60.0, measured=3.0, sent=-0.1, retry_after=None, reporter="w9")
    assert (pace.fill, pace.w_max) == (held, w_max)
    early = SharedPace()
    early.throttled(0.0, measured=1.0, sent=-0.05, retry_after=None, reporter="w0")
    for _ in range(600):
        early.reserve(0.5)
    assert early.throttled(1.0, measured=0.0, sent=-0.1, retry_after=None, reporter="w9")  # within the burst
    assert early.fill >= 0.85
    assert SharedPace.usable(
        {name: float(value) for name, value in pace.to_fields().items() if name not in SharedPace.TEXT}
    )
