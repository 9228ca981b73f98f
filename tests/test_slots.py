"""Waiting for a slot on asyncio: the request gate (``_gate.Gate``) and a vendor's slot queue
(``_calls.SlotQueue``), each on its own, then many calls through a client against the sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import videojobs
from tests.clocks import SimClock
from videojobs._calls import slot_queue
from videojobs._gate import Gate
from videojobs.sandbox import Sandbox

pytestmark = pytest.mark.anyio


# --- the gate ---------------------------------------------------------------------------------------


async def _holder(gate: Gate, order: list[str], name: str, release: asyncio.Event) -> None:
    async with gate:
        order.append(name)
        await release.wait()


async def test_a_gate_serves_its_waiters_first_come_first_served() -> None:
    gate, order, release = Gate(2), [], asyncio.Event()
    tasks = [asyncio.create_task(_holder(gate, order, f"c{i}", release)) for i in range(6)]
    await asyncio.sleep(0)
    assert order == ["c0", "c1"]
    assert gate.locked()
    release.set()
    await asyncio.gather(*tasks)
    assert order == [f"c{i}" for i in range(6)]
    assert not gate.locked()


async def test_a_cancelled_waiter_leaves_the_line_and_its_turn_goes_to_the_next() -> None:
    gate, order, release = Gate(1), [], asyncio.Event()
    first = asyncio.create_task(_holder(gate, order, "first", release))
    await asyncio.sleep(0)
    gone = asyncio.create_task(_holder(gate, order, "gone", release))
    last = asyncio.create_task(_holder(gate, order, "last", release))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    await asyncio.gather(first, last)
    assert gone.cancelled()
    assert order == ["first", "last"]
    assert not gate.locked()


async def test_a_waiter_cancelled_as_its_slot_arrives_passes_the_slot_on() -> None:
    gate = Gate(1)
    await gate.acquire()
    late = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)  # in line
    gate.release()  # the slot is handed to it...
    late.cancel()  # ...and it is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await late
    assert not gate.locked()  # the slot was passed on, not lost
    await asyncio.wait_for(gate.acquire(), 1)


async def test_a_waiter_out_of_time_leaves_the_line_and_the_others_keep_their_turns() -> None:
    gate = Gate(1)
    await gate.acquire()
    loop = asyncio.get_running_loop()
    patient = asyncio.create_task(gate.acquire(loop.time() + 60, loop.time))
    hasty = asyncio.create_task(gate.acquire(loop.time() + 0.05, loop.time))  # behind it in line, but out of time first
    with pytest.raises(TimeoutError):
        await hasty
    assert not patient.done()
    gate.release()
    await asyncio.wait_for(patient, 1)  # the slot went to the one still waiting
    gate.release()
    assert not gate.locked()  # and the one that left took none with it


async def test_a_gate_keeps_time_limits_on_the_clients_own_clock() -> None:
    """A ScaledClock runs ahead of real time: a limit of 30 s on it may be 1 s of real time."""
    clock = SimClock(start=0.0)
    gate = Gate(1)
    await gate.acquire()
    waiting = asyncio.create_task(gate.acquire(30.0, clock.now))
    await asyncio.sleep(0.15)  # real time passes (the gate looks at the clock again), the client's does not
    assert not waiting.done()
    clock.t = 31.0  # the client's clock passes the limit
    await asyncio.wait({waiting}, timeout=5)
    assert waiting.done()
    assert isinstance(waiting.exception(), TimeoutError)  # the gate's own, not a guard's
    gate.release()
    assert not gate.locked()


# --- a vendor's slot queue --------------------------------------------------------------------------


def _spent(client: videojobs.AsyncClient, clock: SimClock) -> Any:
    """The vozo core, its bucket's burst spent: every call from here waits for the pace."""
    core = client.vendor("vozo").core
    while core.rate.acquire(clock.now()) <= 0:
        pass
    return core


def _client(clock: SimClock, sb: Sandbox, per_second: float) -> videojobs.AsyncClient:
    return videojobs.AsyncClient(
        api_keys=sb.api_keys(),
        base_urls=sb.base_urls(),
        transport=sb.transport(),
        rate_limits={"vozo": per_second},
        adaptive=False,  # a fixed pace: the queue's behaviour, not slow start's
        clock=clock,
    )


async def test_calls_queued_for_a_vendor_get_their_slots_in_order_at_its_pace() -> None:
    clock = SimClock()
    sb = Sandbox(clock=clock)
    async with _client(clock, sb, 4.0) as client:
        core = _spent(client, clock)
        start = clock.now()
        granted: list[tuple[int, float]] = []

        async def one(i: int) -> None:
            assert await slot_queue(core).wait(f"t{i}", start + 60)
            granted.append((i, clock.now()))

        await asyncio.gather(*(one(i) for i in range(8)))
    assert [i for i, _ in granted] == list(range(8))
    assert granted[-1][1] - start == pytest.approx(8 / 4.0, abs=0.3)  # one slot every 0.25 s
    assert core.queue is not None
    assert core.queue.pacer is None


async def test_a_queued_call_whose_time_runs_out_fails_typed_without_being_sent() -> None:
    clock = SimClock()
    sb = Sandbox(clock=clock)
    async with _client(clock, sb, 0.5) as client:
        core = _spent(client, clock)
        queue = slot_queue(core)
        early = queue.wait("soon", clock.now() + 1.0)  # a slot every 2 s: this one cannot get one in time
        later = queue.wait("later", clock.now() + 60)
        with pytest.raises(videojobs.RateLimitError) as info:
            await early
        assert await later
    assert info.value.vendor == "vozo"
    assert "soon" in str(info.value)
    assert "no request slot" in str(info.value)


async def test_a_pacer_that_fails_leaves_no_call_hanging() -> None:
    class Broken(SimClock):
        async def asleep(self, seconds: float) -> None:
            raise OSError("the clock broke")

    clock = Broken()
    sb = Sandbox(clock=clock)
    async with _client(clock, sb, 1.0) as client:
        core = _spent(client, clock)
        waiting = [slot_queue(core).wait(f"t{i}", clock.now() + 60) for i in range(3)]
        results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, videojobs.NetworkError) and r.vendor == "vozo" for r in results), results


async def test_many_calls_waiting_for_a_pace_cost_one_wake_up_a_request() -> None:
    """200 status calls at once against a vendor paced at 10 req/s: every one answered, at the
    pace, and the clock is slept on about once a request (each waiting call asking again on a
    timer of its own slept many times a request, more the more calls waited)."""
    clock = SimClock()
    sb = Sandbox(clock=clock)
    async with _client(clock, sb, 10.0) as client:
        start = clock.now()
        results = await asyncio.gather(*(client.status(f"vozo:s{i}-q0-d60") for i in range(200)))
        elapsed = clock.now() - start
    assert all(isinstance(r, videojobs.JobStatus) for r in results)
    assert elapsed == pytest.approx((200 - 10) / 10.0, abs=1.0)  # a burst of 10, then 10 a second
    assert len(clock.sleeps) <= 200


async def test_a_pacer_cancelled_before_it_runs_fails_its_calls_and_the_next_call_gets_a_new_one() -> None:
    """Code that cancels every other task on the loop (a shutdown helper) may cancel the pacer
    before its first step: its queued calls end typed, and the queue starts a new pacer after."""
    clock = SimClock()
    sb = Sandbox(clock=clock)
    async with _client(clock, sb, 1.0) as client:
        core = _spent(client, clock)
        queue = slot_queue(core)
        first = queue.wait("first", clock.now() + 60)
        assert queue.pacer is not None
        queue.pacer.cancel()
        with pytest.raises(videojobs.NetworkError) as info:
            await first
        assert info.value.vendor == "vozo"
        assert await slot_queue(core).wait("next", clock.now() + 60)


async def test_a_call_queued_as_the_pacer_ends_gets_a_pacer_of_its_own() -> None:
    """The pacer ends when it has served the queue; the call it served may queue again at once,
    before the pacer's done-callbacks run: it must be served, not wait for a pacer that ended."""
    clock = SimClock()
    sb = Sandbox(clock=clock)
    async with _client(clock, sb, 4.0) as client:
        core = _spent(client, clock)
        assert await slot_queue(core).wait("first", clock.now() + 60)
        again = slot_queue(core).wait("again", clock.now() + 60)  # in the same step the first was woken in
        await asyncio.wait({again}, timeout=5)  # a guard: served in no time on the client's clock
        assert again.done()
        assert again.result() is True
