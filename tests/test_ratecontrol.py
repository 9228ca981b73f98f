"""Rate control: each part on its own with the time passed in, then a client against a throttling sandbox."""

from __future__ import annotations

import math

import pytest

import videojobs
from tests.clocks import SimClock
from videojobs._ratecontrol import AcceptedRate, AdaptiveRate, CubicCalculator, RetryBudget, TokenBucket, is_throttle
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
    cubic = CubicCalculator(start=0.0)
    assert cubic.error_received(20.0, now=100.0) == pytest.approx(14.0)  # 0.7 x 20
    k = (20.0 * 0.3 / 0.4) ** (1 / 3)  # when the curve is back at 20
    assert cubic.success_received(100.0) == pytest.approx(14.0)
    assert cubic.success_received(100.0 + k) == pytest.approx(20.0)
    assert cubic.success_received(100.0 + k / 2) < 20.0 < cubic.success_received(100.0 + 2 * k)


def test_accepted_rate_counts_the_last_second() -> None:
    accepted = AcceptedRate()
    for i in range(200):  # 20 accepted answers per second for 10 s
        accepted.record(i * 0.05)
    assert accepted.rate(9.96) == pytest.approx(20.0, abs=1)
    assert accepted.rate(30.0) == 0.0


def test_only_a_rate_limit_is_a_throttle() -> None:
    assert is_throttle(THROTTLE)
    assert not is_throttle(videojobs.ServerError("502"))
    assert not is_throttle(None)


def test_adaptive_rate_is_unlimited_until_the_vendor_throttles() -> None:
    rate = AdaptiveRate(now=0.0)
    assert all(rate.acquire(0.0) == 0.0 for _ in range(1000))
    assert rate.rate is None
    for i in range(40):  # 40 answers a second for a second
        rate.observe(i / 40, None)
    rate.observe(1.0, THROTTLE)
    assert rate.throttled
    assert rate.rate is not None
    assert rate.rate < 40 * 0.75  # cut below what it was sending


def test_failures_that_are_not_answers_neither_count_as_accepted_nor_grow_the_rate() -> None:
    rate = AdaptiveRate(now=0.0)
    for i in range(40):
        rate.observe(i / 40, videojobs.NetworkError("refused"))
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
