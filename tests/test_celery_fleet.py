"""videojobs.celery's fleet costs: the per-poll script against a real redis-server (what it runs,
and that a vendor that is not throttling costs nothing more), the shared pace in Redis giving the
same answers as the one-process parts it stores (SharedPace in memory), and the Waiter a task
message carries."""

from __future__ import annotations

import contextlib
import json
import math
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

pytest.importorskip("celery")
pytest.importorskip("redis")

import redis

import videojobs
from tests.redis_server import RedisServer
from videojobs import FixedPolicy, JobStatus, State
from videojobs._ratecontrol import MAX_PAUSE, Booking, MemoryPaceStore, SharedPace
from videojobs._wait import Waiter
from videojobs.celery._local import WorkerPaces
from videojobs.celery._poll import Again, Done, PollState, decide, policy_from, policy_spec
from videojobs.celery._store import PACE_FIELDS, Claim, Delivery, Store, connect

SLOW = FixedPolicy(7)
"""A policy object a worker can import by path (``tests.test_celery_fleet:SLOW``)."""


@pytest.fixture(scope="module")
def r(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = RedisServer(tmp_path_factory.mktemp("fleet"), persist=False).start()
    client = redis.Redis.from_url(server.url)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def _commands(r: Any) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in r.info("commandstats").items()}


def _ran(r: Any, before: dict[str, int]) -> dict[str, int]:
    after = _commands(r)
    return {name: n - before.get(name, 0) for name, n in after.items() if n > before.get(name, 0) and name != "info"}


def _status(state: State = State.RUNNING, progress: float | None = 0.5) -> JobStatus:
    return JobStatus(vendor="vozo", task_id="t1", state=state, vendor_state=state.value, progress=progress)


def _poll(store: Store, ref: str, hop: int, now: float, vendor: str = "vozo", booked: float | None = None) -> Claim:
    return store.poll(ref, hop, f"tag{hop}", ttl=3600, grace=10.0, message="{}", due=now + 5,
                      vendor=vendor, now=now, booked=booked)  # fmt: skip


def test_a_poll_of_a_vendor_that_is_not_throttling_is_one_round_trip_of_two_commands(r: Any) -> None:
    store = Store(r, prefix="cost")
    store.track("vozo:t1", "{}", 1000.0, 3600)
    _poll(store, "vozo:t1", 0, 1000.0)  # the first claim gives the record its TTL (once)
    before = _commands(r)
    for hop in range(1, 11):
        assert _poll(store, "vozo:t1", hop, 1000.0 + hop).code == Claim.RUN
    ran = _ran(r, before)
    # the script and the claim's one SET ... GET: no pace read, no sweep turn, no index write
    assert ran == {"evalsha": 10, "set": 10}, ran
    assert r.ttl("cost:chain:vozo:t1") > 0


def test_the_benchs_count_of_a_fleets_hops_reads_the_stores_chains(r: Any) -> None:
    """``make bench`` judges its goal of at most 10 % of hops without a vendor call from the hops the
    store claimed. It read them from the job's record hash, where the store stopped keeping them
    when a poll's claim became one string, and said 0 % at every run (64 % in a run read right)."""
    from scripts.bench_celery import _hops

    store = Store(r)  # the bench's prefix, the default
    refs = ["duomi:bench-hops-a", "duomi:bench-hops-b", "duomi:bench-hops-untracked"]
    for ref in refs[:2]:
        store.track(ref, "{}", 1000.0, 3600)
    for hop in range(4):
        assert _poll(store, refs[0], hop, 1000.0 + hop).code == Claim.RUN
    assert _poll(store, refs[1], 0, 1000.0).code == Claim.RUN
    assert _hops(r, refs) == 4 + 1


def test_a_hop_runs_once_and_a_quiet_claim_is_taken_over_after_the_grace(r: Any) -> None:
    store = Store(r, prefix="claims")
    store.track("vozo:t2", "{}", 1000.0, 3600)
    assert _poll(store, "vozo:t2", 0, 1000.0).code == Claim.RUN
    other = store.poll("vozo:t2", 0, "another", ttl=3600, grace=10.0, message="{}", due=0, vendor="vozo",
                       now=1005.0, booked=None)  # fmt: skip
    assert other.code == Claim.DUPLICATE  # a second delivery of a hop that is running
    assert _poll(store, "vozo:t2", 0, 1005.0).code == Claim.RUN  # the same delivery back (its worker died)
    later = store.poll("vozo:t2", 0, "another", ttl=3600, grace=10.0, message="{}", due=0, vendor="vozo",
                       now=1016.0, booked=None)  # fmt: skip
    assert later.code == Claim.RUN  # quiet for longer than the grace: its worker died
    assert store.finishing("vozo:t2", "{}", 3600)
    assert _poll(store, "vozo:t2", 1, 1020.0).code == Claim.ENDED


def test_the_shared_pace_in_redis_answers_as_the_one_process_parts_do(r: Any) -> None:
    store, memory = Store(r, prefix="parity"), MemoryPaceStore()
    t0 = 1_000_000.0
    assert store.reserve("duomi", t0) == memory.reserve("duomi", t0) == 0.0  # no limit before a throttle
    for pace in (store, memory):
        pace.throttled("duomi", t0, measured=20.0, sent=t0 - 0.1, retry_after=None)
        pace.throttled("duomi", t0 + 0.5, measured=20.0, sent=t0 - 0.05, retry_after=None)  # same congestion
    times = [t0 + i * 0.02 for i in range(60)] + [t0 + 3 + i * 0.05 for i in range(60)]
    waits = [(store.reserve("duomi", t), memory.reserve("duomi", t)) for t in times]
    for got, want in waits:
        assert got == pytest.approx(want, rel=1e-6, abs=1e-6)
    assert any(w > 0 for w, _ in waits)  # paced: later callers are booked further out
    # a Retry-After pauses the vendor for every caller, who books its slot behind it
    for pace in (store, memory):
        pace.throttled("duomi", t0 + 10, measured=5.0, sent=t0 + 9.9, retry_after=4.0)
    behind = store.book("duomi", t0 + 11)
    assert behind.wait == pytest.approx(memory.reserve("duomi", t0 + 11))
    assert behind.wait == pytest.approx(3.0 + 1 / behind.rate)  # the first slot after the pause's end
    assert behind.cut == memory.pace("duomi").last_cut
    assert r.ttl("parity:rate:duomi") > 0


def test_the_first_cut_adds_each_reporters_share_once_in_redis_as_in_one_process(r: Any) -> None:
    """Two workers report the first burst's 429s, each with its own share of what the vendor accepted:
    the cut starts from their sum (each counted once, however many 429s it reports), and a later
    congestion is cut from what the fleet sent, in Redis as in one process."""
    workers = [Store(r, prefix="shares"), Store(r, prefix="shares")]
    memory = MemoryPaceStore()
    t0 = 1_000_000.0
    reports = [(0, 4.0, t0), (1, 6.0, t0 + 0.2), (0, 4.0, t0 + 0.3), (1, 6.0, t0 + 0.4), (1, float("inf"), t0 + 0.5)]
    for who, measured, now in reports:
        workers[who].throttled("duomi", now, measured=measured, sent=now - 0.05, retry_after=None)
        memory.throttled("duomi", now, measured=measured, sent=now - 0.05, retry_after=None,
                         reporter=workers[who].reporter)  # fmt: skip
    pace = memory.pace("duomi")
    assert pace.w_max == pytest.approx(10.0)  # 4 + 6: the fleet's, not the first reporter's 4
    assert float(r.hget("shares:rate:duomi", "w_max")) == pytest.approx(pace.w_max)
    assert workers[0].rate("duomi") == pytest.approx(pace.fill) == pytest.approx(8.5)
    # the fleet sends 6 calls a second for 10 s (each slot booked, then sent when it comes)
    for i in range(60):
        now = t0 + 2 + i / 6
        wait, held, _ = workers[i % 2].book("duomi", now)
        assert wait == memory.reserve("duomi", now) == 0.0
        assert held is not None
    for who in (0, 1):  # a new congestion, reported by both: one cut, from what was sent
        workers[who].throttled("duomi", t0 + 12 + who / 10, measured=50.0, sent=t0 + 11.9, retry_after=None)
        memory.throttled("duomi", t0 + 12 + who / 10, measured=50.0, sent=t0 + 11.9, retry_after=None,
                         reporter=workers[who].reporter)  # fmt: skip
    assert pace.w_max == pytest.approx(6.0, rel=0.1)
    assert float(r.hget("shares:rate:duomi", "w_max")) == pytest.approx(pace.w_max, rel=1e-6)  # Lua keeps 14 digits
    assert float(r.hget("shares:rate:duomi", "sent")) == pytest.approx(pace.sent, rel=1e-6)


def test_shares_429s_and_slots_booked_ahead_count_in_redis_as_in_one_process(r: Any) -> None:
    """The script keeps SharedPace's rules: a worker that heard of the first cut adds its share (once,
    never a cut); a slot booked ahead is counted as sent when it is used, not when booked; each
    429 is counted, and a cut takes those before it off what was sent; after a quiet minute the
    burst is the cut's rate."""
    workers = [Store(r, prefix="rules"), Store(r, prefix="rules")]
    memory = MemoryPaceStore()
    t = 1_000_000.0

    def both(call: str, who: int, *args: Any, **kwargs: Any) -> Any:
        got = getattr(workers[who], call)("duomi", *args, **kwargs)
        want = getattr(memory, call)("duomi", *args, **kwargs, **({"reporter": workers[who].reporter}
                                     if call in ("throttled", "share") else {}))  # fmt: skip
        if call == "reserve":
            assert got == pytest.approx(want, abs=1e-6)
        return got

    both("share", 1, t, measured=3.0)  # no pace yet: nothing
    assert r.exists("rules:rate:duomi") == 0
    both("throttled", 0, t, measured=12.0, sent=t - 0.05, retry_after=None)
    both("share", 1, t + 0.2, measured=8.0)
    both("share", 1, t + 0.3, measured=8.0)  # once
    pace = memory.pace("duomi")
    assert pace.w_max == pytest.approx(20.0)
    t += 1.0
    while t < 1_000_010.0:  # 25 calls a second asked, each booked ahead with an answer, sent when due
        wait = both("reserve", t % 2 > 1, t, ahead=True)
        t += max(wait, 0.04)
        assert both("reserve", 0, t, pace.last_cut, t - 0.01) == 0.0
    for i in range(6):  # a congestion's 429s: the first cuts, all are counted
        both("throttled", i % 2, t + i / 10, measured=17.0, sent=t + i / 10 - 0.05, retry_after=None)

    def same_fields() -> None:
        _same_pace(r.hgetall("rules:rate:duomi"), pace, 1e-6, 1e-9)

    same_fields()
    assert pace.refused_rate(t + 0.5) == pytest.approx(
        sum(math.exp(i / 10 - 0.5) for i in range(6)), rel=1e-4
    )  # 6 counted
    burst = 0
    while both("reserve", 0, t + 60.0) == 0.0:  # after a quiet minute
        burst += 1
    assert burst <= pace.floor
    both("throttled", 1, t + 61.0, measured=17.0, sent=t + 60.9, retry_after=2.0)
    waits = [both("reserve", i % 2, t + 63.0) for i in range(4)]  # after the pause: at the rate, not at once
    assert waits[0] > 0
    assert waits == sorted(waits)
    for i in range(30):  # slots booked, then a pause within the same congestion (no cut): paid off by its end
        both("reserve", i % 2, t + 63.1)
    both("throttled", 0, t + 63.2, measured=17.0, sent=t + 63.1, retry_after=5.0)
    same_fields()
    assert both("reserve", 1, t + 68.2) < 1.0


def test_the_first_cut_is_published_once_and_every_worker_that_hears_it_adds_its_share(r: Any) -> None:
    """A worker's report that makes the vendor's first cut publishes the vendor's name; a worker
    process that polled the vendor hears it at once, learns the pace, and adds what it saw accepted
    (a vendor it never polled is not asked about). Later reports publish nothing."""
    from videojobs.celery import _heard_cut

    reporter, hearer = Store(r, prefix="notice"), Store(r, prefix="notice")
    notices = hearer.listen()
    try:
        assert notices.heard(0.05) == []  # the subscription's own answer is not a notice
        clock = [0.0]
        local = WorkerPaces(clock=lambda: clock[0])
        t = hearer.now()
        for i in range(10):  # in slow start, it saw 10 calls accepted over the last second
            local.wait("duomi")
            clock[0] = 0.1 + i / 10
            local.answered("duomi", None, i / 10, paced=False)
        hearer.paces.setdefault("duomi", None)  # it polled duomi, and knows no pace for it
        reporter.throttled("duomi", t, measured=6.0, sent=t - 0.05, retry_after=None)
        heard = notices.heard(2.0)
        assert heard == ["duomi"]
        _heard_cut(hearer, local, "duomi", hearer.now())
        assert hearer.paces["duomi"] is not None  # it follows the pace from now on
        assert float(r.hget("notice:rate:duomi", "w_max")) == pytest.approx(6.0 + 10.0, rel=0.1)
        _heard_cut(hearer, local, "vozo", hearer.now())  # never polled here: nothing asked, nothing kept
        assert "vozo" not in hearer.paces
        before = _commands(r)
        _heard_cut(hearer, local, "duomi", hearer.now())  # heard again (published by hand): nothing asked
        assert _ran(r, before) == {}
        reporter.throttled("duomi", t + 0.5, measured=6.0, sent=t + 0.45, retry_after=None)
        reporter.throttled("duomi", t + 5.0, measured=6.0, sent=t + 4.95, retry_after=None)  # a later cut
        assert notices.heard(0.2) == []
    finally:
        notices.close()


def test_a_process_whose_refresh_read_the_first_cut_before_its_notice_still_adds_its_share(r: Any) -> None:
    """The timer's refresh may read the new pace a moment before the listener hears its notice: the
    process skipped it as followed already, and the cut started without its share."""
    from videojobs.celery import _heard_cut

    reporter, hearer = Store(r, prefix="race"), Store(r, prefix="race")
    clock = [0.0]
    local = WorkerPaces(clock=lambda: clock[0])
    for i in range(10):  # in slow start, it saw 10 calls accepted over the last second
        assert local.wait("duomi") >= 0.0
        clock[0] = 0.1 + i / 10
        local.answered("duomi", None, i / 10, paced=False)
    hearer.paces.setdefault("duomi", None)
    t = hearer.now()
    reporter.throttled("duomi", t, measured=6.0, sent=t - 0.05, retry_after=None)
    hearer.refresh_paces()  # first
    assert hearer.paces["duomi"] is not None
    _heard_cut(hearer, local, "duomi", hearer.now())
    assert float(r.hget("race:rate:duomi", "w_max")) == pytest.approx(6.0 + 10.0, rel=0.1)


def test_a_notice_that_no_worker_published_is_dropped_and_a_flood_is_read_in_bounded_batches(r: Any) -> None:
    from videojobs.celery._store import MAX_NOTICES

    store = Store(r, prefix="flood")
    notices = store.listen()
    try:
        notices.heard(0.05)
        for junk in ("x" * 65, "du omi", "dué", "\x1b[31m", ""):
            r.publish("flood:cuts", junk)
        r.publish("flood:cuts", "vozo")
        assert notices.heard(1.0) == ["vozo"]
        for _ in range(100):  # the same name again and again: heard once
            r.publish("flood:cuts", "duomi")
        assert notices.heard(1.0) == ["duomi"]
        for i in range(MAX_NOTICES + 5):
            r.publish("flood:cuts", f"v{i}")
        assert len(notices.heard(1.0)) == MAX_NOTICES
        assert len(notices.heard(1.0)) == 5
    finally:
        notices.close()


@contextlib.contextmanager
def _proxy(port: int) -> Iterator[tuple[str, Callable[[], None]]]:
    """A TCP proxy on loopback to Redis at ``port``: its URL, and a call that makes every link through
    it silent for good (nothing forwarded either way, nothing closed: a link dropped without a word)."""
    listener = socket.create_server(("127.0.0.1", 0))
    silent = threading.Event()
    links: list[socket.socket] = []

    def pump(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                if not silent.is_set():
                    b.sendall(data)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", port))
                links.extend((client, upstream))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0", silent.set
    finally:
        listener.close()
        for link in links:
            link.close()


def test_a_subscription_gone_deaf_without_a_word_is_found_by_its_ping(r: Any) -> None:
    """The listener only reads: a link dropped without a FIN (a failover, a NAT's idle timeout) left
    it deaf for good, the fleet back on its one-second refresh without a word. After a quiet wait
    it sends a PING, and one unanswered is a ConnectionError (the listener subscribes again); a
    live subscription answers it and goes on."""
    from videojobs.celery._store import CutNotices

    port = r.connection_pool.connection_kwargs["port"]
    clock = [0.0]
    with _proxy(port) as (url, go_silent):
        client = redis.Redis.from_url(url)
        # the injected clock says when a PING is due and overdue; a read waits for what comes (a
        # loopback answer comes at once: the waits below only bound a loaded machine's delay)
        notices = CutNotices(client, "deaf:cuts", clock=lambda: clock[0], answer=30.0)
        try:
            assert notices.heard(30.0) == []  # the subscription's own answer (no PING: not quiet yet)
            clock[0] += 60.0
            assert notices.heard(30.0) == []  # quiet: a PING, read with its answer
            clock[0] += 60.0
            assert notices.heard(30.0) == []  # quiet again: another PING, answered: no error
            go_silent()
            clock[0] += 60.0
            assert notices.heard(0.01) == []  # quiet again: a PING, into the void
            clock[0] += 31.0
            with pytest.raises(ConnectionError, match="did not answer a PING"):
                notices.heard(0.01)
        finally:
            notices.close()
            client.close()


def test_a_redis_user_not_allowed_the_channel_still_reports_its_throttles(r: Any) -> None:
    """On Redis 7 an ACL user gets no channel unless given one: the first cut's PUBLISH failed the
    script (after it had written the pace), the poll failed, and the job waited for the sweeper.
    The notice is a courtesy: the report goes through."""
    port = r.connection_pool.connection_kwargs["port"]
    r.acl_setuser("nopublish", enabled=True, passwords=["+secret"], keys=["*"], commands=["+@all"],
                  reset_channels=True)  # fmt: skip
    try:
        limited = redis.Redis.from_url(f"redis://nopublish:secret@127.0.0.1:{port}/0")
        store = Store(limited, prefix="acl")
        t = 1_000_000.0
        store.throttled("duomi", t, measured=5.0, sent=t - 0.05, retry_after=None)
        assert store.paces["duomi"] is not None
        assert float(r.hget("acl:rate:duomi", "w_max")) == pytest.approx(5.0)
        notices = store.listen()
        try:  # and its listener is refused: it backs off (install's listen loop)
            with pytest.raises(redis.exceptions.NoPermissionError):
                notices.heard(1.0)
        finally:
            notices.close()
        limited.close()
    finally:
        r.acl_deluser("nopublish")


@pytest.mark.parametrize("ahead", [0.0, 2.0])
def test_a_cut_in_redis_reads_the_fleets_send_rate_as_one_process_does(r: Any, ahead: float) -> None:
    """The fleet sends 4 calls a second through Redis, booking and coming back on its slots; a 429
    reported by a worker ``ahead`` s ahead cuts from what was sent (a 2 s lead read it as 2 s old
    and cut to MIN_RATE), in the script as in SharedPace."""
    store, memory = Store(r, prefix=f"sent{ahead:g}"), MemoryPaceStore()
    t = 1_000_000.0
    for pace in (store, memory):
        pace.throttled("duomi", t, measured=5.0, sent=t - 0.05, retry_after=None)  # first cut: 4.25 req/s
    t += 0.05
    while t < 1_000_020.0:
        wait, held, _ = store.book("duomi", t)
        assert wait == pytest.approx(memory.reserve("duomi", t), abs=1e-6)
        if wait:
            t += wait
            assert store.book("duomi", t, held)[:2] == (0.0, held)
            assert memory.reserve("duomi", t, held) == 0.0
        t += 0.25
    now = t + ahead
    for pace in (store, memory):
        pace.throttled("duomi", now, measured=0.5, sent=now - 0.05, retry_after=None)
    w_max = memory.pace("duomi").w_max
    assert w_max > 3.5
    assert float(r.hget(f"sent{ahead:g}:rate:duomi", "w_max")) == pytest.approx(w_max, rel=1e-6)


class _RedisAhead:
    """A Redis client whose server's clock reads ``ahead`` seconds ahead of this machine's (an hour:
    what a worker sees when its own clock is an hour behind), its answer to ``TIME`` coming
    ``slow`` seconds late for each reading listed there; every other command goes to the real one."""

    def __init__(self, real: Any, ahead: float = 3600.0, slow: dict[int, tuple[float, float]] | None = None) -> None:
        self._real, self._ahead, self._slow = real, ahead, slow or {}
        self.readings = 0

    def time(self) -> tuple[int, int]:
        import time

        late, ahead = self._slow.get(self.readings, (0.0, self._ahead))
        self.readings += 1
        time.sleep(late)
        seconds, micros = self._real.time()
        return seconds + int(ahead), micros

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _NoTime(_RedisAhead):
    """A Redis behind a proxy (or an ACL) that refuses ``TIME``."""

    def time(self) -> tuple[int, int]:
        self.readings += 1
        raise redis.exceptions.ResponseError("unknown command 'TIME'")


def test_the_offset_from_redis_clock_is_where_every_reading_agrees_after_any_step_of_this_machines() -> None:
    """offset_from, the pure part of a worker's reading of Redis's clock (true offset: 3600 s)."""
    from videojobs.celery._store import ClockReading, offset_from

    # a busy Redis answers the first reading 0.3 s late, reading TIME at the end of the wait (its
    # middle alone: 0.15 s off); two quick readings narrow it
    busy = [ClockReading(0.0, 3600.3, 0.3, 5.0), ClockReading(0.3, 3600.3001, 0.3002, 5.0),
            ClockReading(0.3002, 3600.3003, 0.3004, 5.0)]  # fmt: skip
    assert offset_from(busy, 0.0) == pytest.approx(3600.0, abs=1e-3)
    # readings that all take 60 ms (a worker far from Redis): within half of it
    far = [ClockReading(t, t + 3600.03, t + 0.06, 5.0) for t in (0.0, 0.06, 0.12)]
    assert offset_from(far, 0.0) == pytest.approx(3600.0, abs=0.03)
    # this machine's clock stepped 2 s ahead after the first reading: its gap (wall less monotonic)
    # moved; the first was kept as the tightest, and the offset was 2 s off until the next minute
    stepped = [ClockReading(0.0, 3600.0, 1e-4, 5.0), ClockReading(2.1, 3598.1, 2.1004, 7.0),
               ClockReading(2.2, 3598.2, 2.2004, 7.0)]  # fmt: skip
    assert offset_from(stepped, 0.0) == pytest.approx(3596.0, abs=1e-3)
    # Redis's own clock stepped between readings: they disagree, and the last alone is read
    assert offset_from([ClockReading(0.0, 3600.0, 1e-4, 5.0), ClockReading(1.0, 3611.0, 1.0001, 5.0)], 0.0) == (
        pytest.approx(3610.0, abs=1e-3)
    )
    # a clock that went back during the reading says nothing; readings of a coarse clock (a 15.6 ms
    # tick: before == after) agree within it
    assert offset_from([ClockReading(1.0, 3601.0, 0.5, 5.0)], 0.0) is None
    coarse = [ClockReading(0.0, 3600.004, 0.0, 5.0), ClockReading(0.0156, 3600.0096, 0.0156, 5.0)]
    assert offset_from(coarse, 0.0156) == pytest.approx(3600.0, abs=0.0156)
    # a step during the last reading: every reading carries the gap from before it, and the gap
    # read after the readings says so: none of them is used (the worker reads again)
    assert offset_from(busy, 0.0, gap=7.0) is None
    assert offset_from(stepped, 0.0, gap=7.0) == pytest.approx(3596.0, abs=1e-3)


def test_redis_clock_is_read_within_what_every_reading_allows_and_a_refused_one_keeps_the_last(
    r: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis runs one command at a time: a busy one reads TIME at the end of the wait, not its middle
    (a lone reading after a 1 s script put the offset 0.47 s ahead). Each reading bounds the
    offset, and the offset is the middle of what they all allow; readings that all take long
    still give it within half their round trip (a first version dropped them, and a worker far
    from Redis kept its own clock: a job's deadline, set on Redis's clock, ended it at once). A
    Redis that refuses TIME (a proxy, an ACL) failed every task; it is said once, asked again
    only a minute on."""
    import time

    from videojobs.celery._store import CLOCK_SAMPLES

    busy = _RedisAhead(r, slow={0: (0.3, 3600.0)})  # the first reading waits 0.3 s behind a busy Redis
    store = Store(busy, prefix="sync")
    assert store.sync_clock()
    assert abs(store.offset - 3600.0) < 0.1  # the lone reading's middle: 0.15 s off
    far = Store(_RedisAhead(r, slow={i: (0.06, 3600.0) for i in range(CLOCK_SAMPLES)}), prefix="sync")
    assert far.sync_clock()
    assert abs(far.offset - 3600.0) < 0.1
    readings = busy.readings
    store.keep_clock()
    assert busy.readings == readings  # read again only after CLOCK_SYNC_EVERY (or a step of the clock)
    refused = _NoTime(r)
    machine = Store(refused, prefix="sync")
    with caplog.at_level("WARNING", logger="videojobs.celery"):
        assert not machine.sync_clock()
        machine.keep_clock()
        machine.keep_clock()
    assert refused.readings == 1
    assert machine.offset == 0.0
    assert [rec.getMessage() for rec in caplog.records].count(
        "Redis refused TIME (unknown command 'TIME'): this worker keeps the offset from Redis's clock it last "
        "read (none at first: its machine's clock)"
    ) == 1
    machine.track("vozo:nt", "{}", machine.now(), 3600)
    assert _poll(machine, "vozo:nt", 0, machine.now()).code == Claim.RUN  # and the polls go on
    assert time.time() - machine.now() == pytest.approx(0.0, abs=1.0)
    # refused after it worked: the offset read is kept, and moved by a step of this machine's clock
    # (it stayed off by the step for good: the step was noted as seen, and TIME never answered)
    later = _RedisAhead(r)
    kept = Store(later, prefix="sync")
    assert kept.sync_clock()
    later.time = _NoTime(r).time  # type: ignore[method-assign]  # a proxy's failover: TIME refused from now on
    kept._gap -= 2.0  # as if this machine's wall clock stepped 2 s ahead since the reading
    kept.keep_clock()
    assert kept.now() - time.time() == pytest.approx(3598.0, abs=1.0)


def test_a_worker_keeps_the_fleets_times_on_redis_clock_whatever_its_own_says(r: Any) -> None:
    """A worker writes times the others read (a pace's stamps and cuts, a claim's time, a due time)
    on Redis's clock: its own offset from Redis's TIME, read at start and at each pace refresh."""
    import time

    store = Store(_RedisAhead(r), prefix="clock")
    assert abs(store.now() - time.time()) < 1.0  # not read yet: this machine's clock
    store.sync_clock()
    assert store.now() - time.time() == pytest.approx(3600.0, abs=1.0)
    store.track("vozo:c1", "{}", store.now(), 3600)
    assert _poll(store, "vozo:c1", 0, store.now()).code == Claim.RUN
    claimed_at = float(r.get("clock:chain:vozo:c1").split(b"\n")[2])
    assert claimed_at == pytest.approx(time.time() + 3600.0, abs=5.0)


def test_a_pause_set_by_a_worker_whose_clock_runs_ahead_lasts_max_pause_at_most(r: Any) -> None:
    """A worker an hour ahead stores a 10 s Retry-After as a pause till its now + 10: a worker on
    time was told to wait 3,610 s, past the five minutes every pause is bounded by. Both the
    store in Redis and the one-process parts read at most MAX_PAUSE."""
    from videojobs._ratecontrol import MAX_PAUSE

    store, memory = Store(r, prefix="skew"), MemoryPaceStore()
    t0, ahead = 3_000_000.0, 3600.0
    for pace in (store, memory):
        pace.throttled("vozo", t0 + ahead, measured=5.0, sent=t0 + ahead - 0.1, retry_after=10.0)
    assert store.reserve("vozo", t0) == pytest.approx(MAX_PAUSE)
    assert memory.reserve("vozo", t0) == pytest.approx(MAX_PAUSE)
    # kept so: a worker asking again after its wait is not held for the rest of the hour
    assert store.reserve("vozo", t0 + MAX_PAUSE) == pytest.approx(memory.reserve("vozo", t0 + MAX_PAUSE))
    assert store.reserve("vozo", t0 + MAX_PAUSE + 1) < 1.0


def test_a_booked_slot_is_used_without_asking_again_until_a_cut(r: Any) -> None:
    store = Store(r, prefix="booked")
    t0 = 2_000_000.0
    store.track("duomi:t3", "{}", t0, 3600)
    store.throttled("duomi", t0, measured=1.0, sent=t0, retry_after=None)  # 0.7 req/s
    first = _poll(store, "duomi:t3", 0, t0 + 0.01, vendor="duomi")
    assert first.code == Claim.RUN
    assert first.wait > 0
    assert first.booked is not None
    # the hop sent with that countdown comes back holding its slot: it goes at once
    back = _poll(store, "duomi:t3", 1, t0 + 0.01 + first.wait, vendor="duomi", booked=first.booked)
    assert back.wait == 0.0
    # after a cut the slot is void: it books again
    store.throttled("duomi", t0 + 5, measured=1.0, sent=t0 + 4.9, retry_after=None)
    again = _poll(store, "duomi:t3", 2, t0 + 5.01, vendor="duomi", booked=first.booked)
    assert again.wait > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slots_kept_thinned_and_booked_behind_a_pause_agree_in_redis_and_in_one_process(r: Any, seed: int) -> None:
    """A seeded walk of a fleet's bookings: polls booking now and ahead, hops coming back early, on
    time and late for slots booked before cuts and pauses, quiet spells, and 429s with and without
    a Retry-After. The script and SharedPace answer alike at every step (the wait, the cut a slot
    is held at, the rate it was booked at) and keep the same numbers."""
    import random

    rng = random.Random(seed)
    store, memory = Store(r, prefix=f"walk{seed}"), MemoryPaceStore()
    t = 2_000_000.0
    for pace in (store, memory):
        pace.throttled("duomi", t, measured=10.0, sent=t - 0.05, retry_after=None, reporter=store.reporter)
    held: list[tuple[float, float, float]] = []  # (cut, slot, rate) of the slots booked
    kinds: set[str] = set()
    for step in range(900):
        # a quiet spell now and then; between them, calls at ten times the pace, then at half of it
        t += rng.choice([10.0] if step % 150 == 149 else [0.0, 0.01, 0.02] if step % 150 < 75 else [0.2, 0.5])
        if step == 30:  # another worker's share of the first cut: the rate held rises past the queue's
            for pace in (store, memory):
                pace.share("duomi", t, measured=20.0, reporter="another")
        roll = rng.random()
        if roll < 0.02:
            retry_after, sent, measured = rng.choice([None, 1.0, 3.0]), t - rng.choice([0.05, 3.0]), rng.uniform(2, 30)
            for pace in (store, memory):
                pace.throttled(
                    "duomi", t, measured=measured, sent=sent, retry_after=retry_after, reporter=store.reporter
                )
            continue
        due = [i for i, (_, slot, _) in enumerate(held) if slot <= t + 1.0]  # back on time, late, or early
        last_cut, paused = memory.pace("duomi").last_cut, t < memory.pace("duomi").pause_until
        if due and roll < 0.6:
            cut, slot, at = held.pop(rng.choice(due))
            got, want = store.book("duomi", t, cut, slot, at), memory.book("duomi", t, cut, slot, at)
            if got.cut != cut:
                kinds.add("booked again")
            elif got.wait:
                kinds.add("early")
            else:
                kinds.add("sent" if cut == last_cut else "sent after a cut")
        else:
            ahead, spare = rng.random() < 0.5, memory.pace("duomi").spare
            got, want = store.book("duomi", t, ahead=ahead), memory.book("duomi", t, ahead=ahead)
            if paused and got.cut is not None:
                kinds.add("booked behind a pause")
            if memory.pace("duomi").spare != spare:
                kinds.add("booked among the queue")
        # to the last bits: the script writes each number whole (with 14 digits, as tostring keeps,
        # a slot at a pause's end fell within it in one and after it in the other)
        assert got.wait == pytest.approx(want.wait, rel=1e-12, abs=1e-12)
        assert got.cut == want.cut
        assert got.rate == pytest.approx(want.rate, rel=1e-12)
        if got.wait and got.cut is not None:
            held.append((got.cut, t + got.wait, got.rate))
    assert kinds == {
        "sent",
        "sent after a cut",
        "early",
        "booked again",
        "booked behind a pause",
        "booked among the queue",
    }  # each road
    _same_pace(r.hgetall(f"walk{seed}:rate:duomi"), memory.pace("duomi"), 1e-12, 1e-12)


def test_polls_booked_during_a_long_pause_go_at_the_rate_after_it_not_at_once(r: Any) -> None:
    """A Retry-After of an hour (a quota; paused for ``MAX_PAUSE``) stamps the bucket at the pause's
    end, which is ``CLOCK_SLACK`` ahead: a poll whose clock read a millisecond before the report
    took that stamp for a clock gone wrong, and refilled the bucket over the whole pause (every
    such poll in Redis, whose 14-digit numbers put the stamp past the slack each time): 100 polls
    booked a slot at the pause's end itself. A review's finding."""
    store, memory = Store(r, prefix="longpause"), MemoryPaceStore()
    t = 1_764_000_000.123456
    for pace in (store, memory):
        pace.throttled("duomi", t, measured=20.0, sent=t - 0.05, retry_after=None, reporter=store.reporter)
        pace.throttled("duomi", t + 5.0, measured=20.0, sent=t + 4.95, retry_after=3600.0, reporter=store.reporter)
    end = memory.pace("duomi").pause_until
    for pace in (store, memory):
        during = [pace.book("duomi", t + 5.0 - 0.001, ahead=True) for _ in range(100)]
        assert {(b.wait, b.cut) for b in during} == {(MAX_PAUSE, None)}  # nothing booked: its slot lies further
    after = {pace: [pace.book("duomi", end + 0.01, ahead=True).wait for _ in range(100)] for pace in (store, memory)}
    assert after[store] == pytest.approx(after[memory], abs=1e-9)
    waits = after[memory]  # back then: one after another at the rate, not at once
    assert waits == sorted(waits)
    assert waits[-1] - waits[0] == pytest.approx(99 / memory.pace("duomi").fill)


def test_a_task_message_carries_the_waiter_and_decides_as_one_process_does() -> None:
    state = PollState.start("vozo:t1", started=0.0, timeout=100.0, max_failed=3, policy=policy_spec(FixedPolicy(5)))
    outcome = decide(state, 10.0, _status())
    assert isinstance(outcome, Again)
    carried = Waiter.from_dict(json.loads(json.dumps(outcome.state.waiter)), policy=FixedPolicy(5))
    waiter = Waiter("vozo:t1", start=0.0, timeout=100.0, policy=FixedPolicy(5), max_failed_polls=3)
    waiter.observe(_status(), 10.0)
    assert carried.next_sleep(10.0) == waiter.next_sleep(10.0) == outcome.countdown
    outcome = decide(outcome.state, 98.0, _status(progress=0.6))
    assert isinstance(outcome, Done)  # the next poll would come after the deadline
    assert outcome.payload["exception"]["type"] == "WaitTimeout"
    assert "last seen running at 60%" in outcome.payload["exception"]["message"]  # the Waiter's own words


def test_a_policy_by_import_path_is_an_object_and_a_wrong_path_fails_at_track() -> None:
    assert policy_from(policy_spec("tests.test_celery_fleet:SLOW")) is SLOW
    with pytest.raises(videojobs.UsageError, match="could not be imported"):
        policy_spec("tests.test_celery_fleet:NOPE")
    with pytest.raises(videojobs.UsageError, match="a class, not a policy object"):
        policy_spec("videojobs:AdaptivePolicy")


def test_a_message_stays_small(tmp_path: Path) -> None:
    del tmp_path
    state = PollState.start("vozo:t1", started=0.0, timeout=3600.0, max_failed=10, policy=policy_spec(None))
    for i in range(200):
        outcome = decide(state, 1.0 + i, _status(progress=min(0.98, i / 250)))
        assert isinstance(outcome, Again)
        state = outcome.state
    assert len(json.dumps(state.to_message())) < 1200


def test_a_claim_sent_before_the_status_call_is_read_after_it_even_when_redis_forgot_the_script(r: Any) -> None:
    store = Store(r, prefix="meanwhile")
    store.track("vozo:t4", "{}", 1000.0, 3600)

    def meanwhile(hop: int, tag: str, now: float) -> int:
        return store.poll_meanwhile("vozo:t4", hop, tag, ttl=3600, grace=10.0, message="{}", due=now + 5,
                                    vendor="vozo", now=now)().code  # fmt: skip

    assert meanwhile(0, "a", 1000.0) == Claim.RUN
    assert meanwhile(0, "b", 1001.0) == Claim.DUPLICATE  # its status answer is dropped
    r.script_flush()  # as after a Redis restart without the scripts: read by the ordinary path
    assert meanwhile(1, "c", 1002.0) == Claim.RUN
    assert r.get("meanwhile:chain:vozo:t4").split(b"\n")[:2] == [b"1", b"c"]


class _CutAnswer:
    """A loopback proxy in front of redis-server that, once armed, lets the next command through
    and cuts the connection before its answer: what a Redis restart does to a call in flight (the
    call ran, the worker's client never hears so and sends it again on a new connection)."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.armed = threading.Event()
        self.cut = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(near, far, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(far, near, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self.armed.is_set():
                    self.armed.clear()
                    self.cut += 1
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


def test_a_call_whose_answer_a_restart_cut_off_is_sent_again_and_answered_as_the_first_time(r: Any) -> None:
    # the workers' client repeats a script call whose connection dropped before the answer came;
    # the call had run. Each script must then answer as it did: before, a repeated track() said
    # "already tracked", a repeated note of the callback "already delivered" (the callback then
    # waited for the sweeper), and a repeated claim of the callback "came back: its worker was
    # killed" (an attempt counted as failed, the callback run later)
    proxy = _CutAnswer(r.connection_pool.connection_kwargs["port"])
    client = connect(f"redis://127.0.0.1:{proxy.port}/0")
    store = Store(client, prefix="cut")
    try:

        def repeated(call: Callable[[str], Any]) -> tuple[Any, Any]:
            warm = call("vozo:warm")  # the script is loaded and the connection made: what is cut is the call
            proxy.armed.set()
            cut = proxy.cut
            got = call("vozo:t1")
            assert proxy.cut == cut + 1, "the answer was not cut off"
            return warm, got

        assert repeated(lambda ref: store.track(ref, "{}", 1000.0, 3600)) == ("new", "new")
        assert store.track("vozo:t1", "{}", 1000.0, 3600) == "tracked"  # another call is told
        assert repeated(lambda ref: store.finishing(ref, '{"on_done": null}', 3600)) == (True, True)
        assert not store.finishing("vozo:t1", '{"on_done": null}', 3600)
        warm, first = repeated(lambda ref: store.delivering(ref, "tag1", 10.0, 3))
        assert (warm.code, first.code) == (Delivery.RUN, Delivery.RUN)
        assert store.delivering("vozo:t1", "tag1", 10.0, 3).code == Delivery.CAME_BACK  # its message came back
        warm, again = repeated(lambda ref: store.callback_failed(ref, "tag1", "boom", attempts=3, backoff=1.0,
                                                                 cap=10.0, jitter=0.0))  # fmt: skip
        assert warm == again == (1, 1, 1.0)
        assert store.callback_failed("vozo:t1", "tag1", "boom", attempts=3, backoff=1.0, cap=10.0, jitter=0.0)[0] == -1
        # the last attempt: its claim says the attempts ran out, its failure that it failed for good
        warm, first = repeated(lambda ref: store.delivering(ref, "tag2", 10.0, 1))
        assert (warm.code, first.code) == (Delivery.EXHAUSTED, Delivery.EXHAUSTED)
        warm, again = repeated(lambda ref: store.callback_failed(ref, "tag2", "boom", attempts=1, backoff=1.0,
                                                                 cap=10.0, jitter=0.0))  # fmt: skip
        assert warm == again == (0, 1, 0.0)
        assert r.hget("cut:job:vozo:t1", "done") == b"failed"
    finally:
        client.close()
        proxy.close()


def test_an_untrack_repeated_after_another_track_forgets_nothing_of_it(r: Any) -> None:
    # track() could not send its first poll and forgets the job; its untrack's answer is lost and
    # repeated after another track() of the same job noted its own first poll: that one stays
    store = Store(r, prefix="untrack")
    assert store.track("vozo:t5", "{}", 1000.0, 3600, once="a") == "new"
    assert store.untrack("vozo:t5", "a")
    assert store.track("vozo:t5", "{}", 1001.0, 3600, once="b") == "new"
    assert not store.untrack("vozo:t5", "a")  # the repeat
    assert r.get("untrack:chain:vozo:t5") is not None
    assert r.zscore("untrack:due", "vozo:t5") == 1001.0
    assert store.untrack("vozo:t5", "b")  # its own track()'s is still forgotten
    assert r.get("untrack:chain:vozo:t5") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"last_cut": "abc"},  # not a number
        {"pause_until": "soon"},
        {"rate": "0"},  # a bucket that would never refill
        {"w_max": "nan"},
        {"rate": None},  # a field missing
        {"k": "1e-120"},  # finite and >= 0, but its cube rounds to 0: a ZeroDivisionError at every poll
        {"w_max": "1e308"},  # the curve and every wait overflow
        {"rate": "1e-300"},  # a wait of ~1e300 s
        {"tokens": "-1e308"},  # a wait of ~2e307 s: an OverflowError in Celery's countdown
        {"tokens": "-1e7"},  # a poll booked 23 days out
        {"sent": "-1"},  # the fleet's send rate
        {"sent": "1e300"},
        {"sent_at": "nan"},
        {"spare": "nan"},  # the last slot booked among the queue's
        {"emptied": "inf"},
    ],
    ids=[
        "cut-not-a-number",
        "pause-not-a-number",
        "rate-zero",
        "w_max-nan",
        "no-rate",
        "k-tiny",
        "w_max-huge",
        "rate-tiny",
        "tokens-1e308",
        "tokens-1e7",
        "sent-negative",
        "sent-huge",
        "sent_at-nan",
        "spare-nan",
        "emptied-inf",
    ],
)
def test_a_pace_set_by_hand_reads_as_not_paced_and_is_deleted_not_a_bare_error_at_every_poll(
    r: Any, fields: dict[str, str | None]
) -> None:
    """A vendor's pace in Redis that videojobs did not write (set by hand, without a TTL): every
    poll of the vendor used to fail with a bare ValueError or a script error, for ever (nothing
    refreshed the TTL). Now the vendor reads as not paced until it throttles again."""
    store = Store(r, prefix="handset")
    key = "handset:rate:vozo"
    pace = {"w_max": "5", "k": "10", "last_cut": "990", "tokens": "0", "stamp": "990", "pause_until": "0", "rate": "2"}
    for name, value in fields.items():
        if value is None:
            del pace[name]
        else:
            pace[name] = value
    r.delete(key)
    r.hset(key, mapping=pace)
    store.paces["vozo"] = None
    store.refresh_paces()
    if set(fields) & set(PACE_FIELDS):  # what a worker keeps of a pace (the rate stays in Redis)
        assert store.paces["vozo"] is None  # read as not paced (the timer's refresh)
    store.paces["vozo"] = {"w_max": "5", "k": "10", "last_cut": "990", "pause_until": "0"}  # a worker that knew it
    store.track("vozo:h1", "{}", 1000.0, 3600)
    claim = _poll(store, "vozo:h1", 0, 1000.0)
    assert claim.code == Claim.RUN
    assert claim.booked is None
    assert store.paces["vozo"] is None
    assert not r.exists(key)  # deleted: every worker sees an unpaced vendor, and the next 429 starts anew
    r.hset(key, mapping=pace)  # set again: the shared rate's own script deletes it too
    assert store.book("vozo", 1001.0)[:2] == (0.0, None)
    assert not r.exists(key)
    r.hset(key, mapping=pace)  # and again, for a worker that never knew the vendor paced: its first 429
    store.paces["vozo"] = None
    store.throttled("vozo", 1002.0, measured=4.0, sent=1001.5, retry_after=30.0)  # used to be lost for ever
    assert store.paces["vozo"] is not None
    assert float(store.paces["vozo"]["w_max"]) >= 0
    assert float(store.paces["vozo"]["last_cut"]) == 1002.0  # this 429's cut, not the hand-set one
    assert r.ttl(key) > 0  # a pace of the store's own again, that expires


@pytest.mark.parametrize("profile", ["x y", "1 2 3", "1 nan", "1 1e9", "1 0", " ".join(["1 2"] * 17), "0x10 5"])
def test_a_queues_profile_set_by_hand_reads_as_none_in_redis_and_in_one_process(r: Any, profile: str) -> None:
    """The profile of a queue (the rates its slots were booked at) is text a worker parses at each
    booking: one no worker wrote (not pairs of numbers, a rate out of range, too many marks) reads
    as none, the queue as booked at the rate held, alike in the script and in SharedPace; the
    pace stays (a profile only ever adds slots among the queue's)."""
    store, memory = Store(r, prefix="profile"), MemoryPaceStore()
    r.delete("profile:rate:duomi")
    t = 3_000_000.0
    for pace in (store, memory):
        pace.throttled("duomi", t, measured=10.0, sent=t - 0.05, retry_after=None, reporter=store.reporter)
        for i in range(30):
            pace.book("duomi", t + 0.01 * i, ahead=True)
    r.hset("profile:rate:duomi", "profile", profile)
    memory.pace("duomi").profile = profile
    for i in range(30):
        got, want = (
            store.book("duomi", t + 0.5 + 0.01 * i, ahead=True),
            memory.book("duomi", t + 0.5 + 0.01 * i, ahead=True),
        )
        assert (got.wait, got.cut) == pytest.approx((want.wait, want.cut), rel=1e-12)
    _same_pace(r.hgetall("profile:rate:duomi"), memory.pace("duomi"), 1e-12, 1e-12)


def test_a_key_of_another_type_at_a_pace_or_a_chain_is_replaced_not_an_error_at_every_call(r: Any) -> None:
    """A string (or list) at ``<prefix>:rate:<vendor>`` or a hash at ``<prefix>:chain:<ref>``, set by
    hand: every poll, throttle, refresh and sweep raised a bare WRONGTYPE ResponseError, for ever
    (nothing gave the key a TTL). The scripts delete it where they meet it; reads take it as absent."""
    store = Store(r, prefix="wrongtype")
    known = {"w_max": "5", "k": "10", "last_cut": "990", "pause_until": "0"}
    r.set("wrongtype:rate:vozo", "x")
    store.paces["vozo"] = None
    store.refresh_paces()
    assert store.paces["vozo"] is None
    assert store.rate("vozo") is None
    store.paces["vozo"] = dict(known)
    assert store.reserve("vozo", 1000.0) == 0.0
    assert not r.exists("wrongtype:rate:vozo")
    r.rpush("wrongtype:rate:vozo", "a")
    store.paces["vozo"] = dict(known)
    assert _poll(store, "vozo:w1", 0, 1000.0) == Claim(Claim.RUN)
    assert not r.exists("wrongtype:rate:vozo")
    r.set("wrongtype:rate:vozo", "x")
    store.throttled("vozo", 1001.0, measured=4.0, sent=1000.9, retry_after=None)  # the vendor's first cut
    assert store.paces["vozo"] is not None
    assert r.type("wrongtype:rate:vozo") == b"hash"
    store.paces["vozo"] = None
    for ref in ("vozo:w2", "vozo:w3"):
        r.hset(f"wrongtype:chain:{ref}", "a", "b")
    r.zadd("wrongtype:due", {"vozo:w2": 900.0, "vozo:w3": 900.0})
    assert [ref for ref, _ in store.overdue(1000.0)] == ["vozo:w2", "vozo:w3"]  # read as no chain: forgotten
    assert _poll(store, "vozo:w2", 0, 1000.0) == Claim(Claim.RUN)  # claimed, the foreign value replaced
    assert r.ttl("wrongtype:chain:vozo:w2") > 0
    assert store.poll_meanwhile("vozo:w3", 0, "t", ttl=3600, grace=10.0, message="{}", due=1005.0, vendor="vozo",
                                now=1000.0)() == Claim(Claim.RUN)  # fmt: skip
    r.hset("wrongtype:chain:vozo:w4", "a", "b")
    assert store.track("vozo:w4", "{}", 1000.0, 3600) == "new"
    store.due_later("vozo:w4", -1, 2000.0)


def test_a_slot_further_out_than_the_broker_holds_a_message_is_kept_when_its_poll_comes_back_sooner(r: Any) -> None:
    """A poll behind a queue longer than the broker's visibility timeout (200 jobs at 5 req/s is
    40 s; a 5 s timeout) is sent with a shorter countdown. Comes back before its slot, it hears the
    time left and nothing else changes: no token spent, the callers behind it keep their turns;
    at its slot it sends. (Given up instead, as a first fix did, the slot went to the jobs that
    had just been answered and booked at once: 238 of 400 jobs never called the vendor in 180 s.)
    In Redis as in one process."""
    store, memory = Store(r, prefix="kept"), MemoryPaceStore()
    t = 4_000_000.0
    for pace in (store, memory):
        pace.throttled("duomi", t, measured=1.0, sent=t - 0.1, retry_after=None)  # 0.85 req/s
    booked = [store.book("duomi", t + 0.01) for _ in range(8)]
    assert [memory.reserve("duomi", t + 0.01) for _ in range(8)] == pytest.approx([b.wait for b in booked], abs=1e-6)
    wait, cut, _ = booked[-1]
    assert cut is not None
    assert wait > 5.0  # further out than a 5 s visibility timeout lets a message wait
    slot = t + 0.01 + wait
    fields = dict(r.hgetall("kept:rate:duomi"))
    for early in (t + 1.0, t + 4.0, slot - 1.0):  # back sooner, again and again: the time left, nothing spent
        assert store.book("duomi", early, cut, slot)[:2] == pytest.approx((slot - early, cut), abs=1e-6)
        assert memory.reserve("duomi", early, cut, slot) == pytest.approx(slot - early, abs=1e-6)
    assert dict(r.hgetall("kept:rate:duomi")) == fields
    later = store.book("duomi", t + 0.02)  # a caller after them all queues behind the kept slots
    assert later[0] > wait
    assert memory.reserve("duomi", t + 0.02) == pytest.approx(later[0], abs=1e-6)
    assert store.book("duomi", slot, cut, slot)[:2] == (0.0, cut)  # its slot came: it sends
    assert memory.reserve("duomi", slot, cut, slot) == 0.0
    assert store.poll("vozo:kept", 0, "t", ttl=3600, grace=10.0, message="{}", due=slot + 5, vendor="duomi",
                      now=slot - 2.0, booked=cut, slot=slot).wait == pytest.approx(2.0, abs=1e-6)  # fmt: skip
    other = store.book("duomi", t + 1.0, cut + 1.0, slot)  # held at a cut that is not the pace's: booked anew,
    assert t + 1.0 + other[0] > t + 0.02 + later[0]  # at the back of the queue


class _NoVendorCall:
    """A client for a hop that must not call the vendor (its slot has not come, or its deadline passed)."""

    def status(self, ref: str) -> Any:
        raise AssertionError(f"the vendor was called about {ref}")


def _hop_task(sent: list[dict[str, Any]]) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(
        request=SimpleNamespace(delivery_info={"delivery_tag": "t"}, id="x"),
        app=SimpleNamespace(send_task=lambda name, args, **k: sent.append({"name": name, "args": args, **k})),
    )


def test_a_worker_process_that_never_saw_the_pace_keeps_a_held_slot_and_learns_the_pace(r: Any) -> None:
    """A prefork child that has polled the vendor only unpaced (or a fresh one) knew of no pace: a
    hop back early, holding a slot 30 s out, took the unpaced path, called the vendor at once
    and dropped its slot; and since that path never named the vendor, the child's timer never
    read its pace (it learned of a cut only from a 429 of its own). A review's finding."""
    from videojobs.celery import _poll

    knows, fresh = Store(r, prefix="fresh"), Store(r, prefix="fresh")
    t0 = knows.now()
    knows.throttled("duomi", t0, measured=1.0, sent=t0 - 0.1, retry_after=None)  # 0.85 req/s
    waits = [knows.book("duomi", t0) for _ in range(30)]
    wait, cut, _ = waits[-1]
    assert cut is not None
    assert wait > 20.0
    state = attrs.evolve(PollState.start("duomi:held", started=t0, timeout=600.0, max_failed=5,
                                         policy=policy_spec(FixedPolicy(1.0))), booked=cut, slot=t0 + wait)  # fmt: skip
    sent: list[dict[str, Any]] = []
    assert fresh.paces == {}
    assert _poll(_hop_task(sent), state.to_message(), _NoVendorCall(), fresh, WorkerPaces(), 120.0, longest=3.75) == (
        "next poll in 3.75 s"
    )
    message = sent[-1]["args"][0]
    assert (message["booked"], message["slot"]) == (cut, pytest.approx(t0 + wait, abs=1e-6))  # its place kept
    assert fresh.paces["duomi"] is not None  # and the process knows the pace now
    other = Store(r, prefix="fresh")  # a process whose polls of the vendor all went unpaced
    other.poll_meanwhile("duomi:other", 0, "t", ttl=3600, grace=10.0, message="{}", due=t0 + 5, vendor="duomi",
                         now=t0)()  # fmt: skip
    other.refresh_paces()
    assert other.paces["duomi"] is not None  # its timer reads the vendor's pace: a cut is heard within a second


def test_a_poll_past_its_deadline_books_no_slot_of_the_shared_rate(r: Any) -> None:
    """A hop that comes back at or after its job's deadline ends the wait without calling the
    vendor, but its claim booked a slot of the shared rate first (one token of the fleet's
    rate spent for nothing). A review's finding."""
    from videojobs.celery import _poll

    store = Store(r, prefix="late")
    t0 = store.now()
    store.throttled("duomi", t0, measured=1.0, sent=t0 - 0.1, retry_after=None)
    store.book("duomi", t0)
    before = r.hgetall("late:rate:duomi")
    state = PollState.start("duomi:late", started=t0 - 10.0, timeout=5.0, max_failed=5,
                            policy=policy_spec(FixedPolicy(1.0)))  # fmt: skip
    sent: list[dict[str, Any]] = []
    assert (
        _poll(_hop_task(sent), state.to_message(), _NoVendorCall(), store, WorkerPaces(), 120.0, longest=3.75) == "done"
    )
    assert r.hgetall("late:rate:duomi") == before  # nothing booked, nothing counted
    assert store.paces["duomi"] is not None  # and the pace this process knew is kept


def test_a_worker_whose_clock_runs_behind_keeps_the_fleets_pace(r: Any) -> None:
    """The script's rule as the one-process pace's (tests/test_ratecontrol.py): two workers booking
    in turn, one 5 s behind, are granted the pace's rate, not every slot they ask for (the bucket
    refilled 5 s of tokens at each of the behind worker's bookings)."""
    from tests.test_ratecontrol import _granted_per_second

    store = Store(r, prefix="behind")
    t0 = 1_000_000.0
    store.throttled("vozo", t0, measured=5.0, sent=t0 - 0.1, retry_after=None)
    granted = _granted_per_second(None, 5.0, reserve=lambda now: store.reserve("vozo", now))
    assert granted == pytest.approx(_granted_per_second(SharedPace(), 0.0), rel=0.1)


def test_a_bucket_stamped_by_a_clock_that_runs_ahead_refills_for_the_others(r: Any) -> None:
    """A worker an hour ahead books a slot: the bucket's stamp is its now, and every worker on time
    saw no refill (``now > stamp``) and was told to wait for slots the rate gave it, in Redis as
    in one process. A stamp further ahead than CLOCK_SLACK is read as now."""
    store, memory = Store(r, prefix="ahead"), MemoryPaceStore()
    t = 5_000_000.0
    for pace in (store, memory):
        pace.throttled("vozo", t, measured=5.0, sent=t - 0.1, retry_after=None)
        pace.reserve("vozo", t + 3620.0)
    for i in range(10):  # one poll every 2 s, far under the vendor's 4.25 req/s
        assert store.reserve("vozo", t + 22.0 + 2 * i) == memory.reserve("vozo", t + 22.0 + 2 * i) == 0.0


def test_a_fleet_follows_a_vendor_that_raises_its_allowance_through_redis(r: Any) -> None:
    """tests/test_ratecontrol.py's raise from 5 to 20 req/s with 400 jobs queued (80 s of slots), each
    of 8 workers with its own Store on one Redis: the scripts book among the queue's slots as
    SharedPace does, and the vendor sees the rate held within a second, not a queue later."""
    from tests.pace_sim import simulate

    fleet = [_StoreWorker(Store(r, prefix="raised")) for _ in range(8)]
    run = simulate(fleet, allowance=5.0, jobs=400, seconds=160.0, raised=(60.0, 20.0))
    accepted = sum(ok for when, ok in run.sent if 130.0 <= when < 160.0) / 30.0
    assert accepted >= 0.85 * 20.0, accepted
    assert run(60.0, 160.0)[1] <= 0.02


@pytest.mark.parametrize("skew", [0.0, 1.5, 30.0])
def test_slots_among_a_queue_keep_their_spacing_when_workers_clocks_differ(r: Any, skew: float) -> None:
    """Two workers whose clocks differ by ``skew`` (CLOCK_SLACK allows 300 s) book by turns, at one
    real instant, among a queue of 80 s booked at 5 req/s (the last cut's rate 17). A slot among
    the queue's more than SPARE_AHEAD past a worker's now was read as a clock gone wrong, and each
    worker booked at its own now, over the other's: all 40 were sent at once (a review's finding,
    in Redis as in one process). Now one further than that is no room yet, for either."""
    t = 1_000_000.0

    def queued(pace: SharedPace) -> SharedPace:
        pace.throttled(t - 30, measured=20.0, sent=None, retry_after=None)  # the last cut's rate: 17
        pace.fill, pace.tokens, pace.stamp, pace.profile = 5.0, -400.0, t, f"{t!r} 5"
        pace.sent, pace.sent_at = 20.0, t
        return pace

    key = f"skew{skew:g}:rate:duomi"
    r.delete(key)
    r.hset(key, mapping={name: str(value) if isinstance(value, str) else repr(float(value))
                         for name, value in queued(SharedPace()).to_fields().items()})  # fmt: skip
    r.expire(key, 600)
    store, memory = Store(r, prefix=f"skew{skew:g}"), MemoryPaceStore()
    queued(memory.pace("duomi"))
    for pace in (store, memory):
        waits = [pace.book("duomi", t + (skew if i % 2 else 0.0)) for i in range(40)]
        assert sum(1 for booked in waits if booked.wait == 0.0 and booked.cut is not None) <= 2
        assert all(booked.cut is not None for booked in waits)  # booked: among the queue, or behind it


def _same_pace(stored: dict[bytes, bytes], pace: SharedPace, rel: float, abs: float) -> None:
    """The pace Redis keeps (``stored``, its hash) holds the numbers ``pace`` does: a field never
    written (no pause) is the pace's default; the profile's marks number by number."""
    fields = {k.decode(): v.decode() for k, v in stored.items()}
    for name, value in pace.to_fields().items():
        if name == "profile":
            marks = [float(x) for x in fields.get(name, "").split()]
            assert marks == pytest.approx([float(x) for x in str(value).split()], rel=rel, abs=abs)
        elif name not in SharedPace.TEXT:
            assert float(fields.get(name, 0.0)) == pytest.approx(value, rel=rel, abs=abs), name


class _StoreWorker:
    """A worker of tests/pace_sim.py's fleet whose pace is in Redis: a Store of its own, knowing only
    what its own answers said (as each worker process of videojobs.celery)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def paced(self) -> bool:
        return self.store.paces.get("duomi") is not None

    def book(
        self, now: float, booked: float | None, slot: float | None, at: float | None, *, ahead: bool = False
    ) -> Booking:
        return self.store.book("duomi", now, booked, slot, at, ahead=ahead)

    def throttled(self, now: float, *, measured: float, sent: float, retry_after: float | None) -> None:
        self.store.throttled("duomi", now, measured=measured, sent=sent, retry_after=retry_after)

    def heard(self, now: float, local: WorkerPaces) -> None:
        from videojobs.celery import _heard_cut

        self.store.paces.setdefault("duomi", None)  # it polled the vendor (poll_meanwhile notes it so)
        _heard_cut(self.store, local, "duomi", now)


@pytest.mark.parametrize("allowance", [5.0, 20.0])
def test_a_fleet_of_workers_keeps_the_vendor_at_its_allowance_through_redis(r: Any, allowance: float) -> None:
    """tests/test_ratecontrol.py's fleet, each worker with its own Store on one Redis: 8 workers held a
    vendor at 10-30 % of its allowance (each cut from one worker's share, the rate never past
    twice it). The scripts count what the fleet sends and add up the first burst's shares."""
    from tests.pace_sim import simulate

    fleet = [_StoreWorker(Store(r, prefix=f"sim{allowance:g}")) for _ in range(8)]
    window = simulate(fleet, allowance=allowance, seconds=120.0)
    accepted, throttled = window(40.0, 120.0)
    assert accepted >= 0.95, (accepted, throttled)
    assert throttled <= 0.04, (accepted, throttled)
