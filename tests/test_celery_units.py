"""videojobs.celery's pure parts: the message a poll carries, and what comes after an answer."""

from __future__ import annotations

import json
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

pytest.importorskip("celery")

import videojobs
from videojobs import AdaptivePolicy, FixedPolicy, JobStatus, State
from videojobs._policy import History
from videojobs._ratecontrol import Booking
from videojobs.celery._local import WorkerPaces
from videojobs.celery._poll import Again, Done, PollState, decide, policy_from, policy_spec


def _state(*, deadline: float = 4600.0, max_failed: int = 10, history: dict[str, object] | None = None) -> PollState:
    state = PollState.start(
        "duomi:t1", started=1000.0, timeout=deadline - 1000.0, max_failed=max_failed, policy=policy_spec(FixedPolicy(5))
    )
    return state if history is None else attrs.evolve(state, waiter={**state.waiter, "history": history})


def _status(state: State, progress: float | None = None) -> JobStatus:
    return JobStatus(vendor="duomi", task_id="t1", state=state, vendor_state=state.value, progress=progress)


def test_a_message_is_json_and_round_trips() -> None:
    state = _state(history=History.of([(1.0, _status(State.RUNNING, 0.5))]).to_dict())
    message = json.loads(json.dumps(state.to_message()))
    assert PollState.from_message(message, now=1000.0) == state
    assert len(json.dumps(message)) < 1000  # a few hundred bytes, whatever the job's age


def test_a_hop_reads_its_wait_once_and_decides_as_from_the_message() -> None:
    """received() hands the hop what checking the message read (the job's Waiter, with the
    message's policy, and the JSON the store keeps); decide() with that Waiter decides as it does
    reading the message itself, whatever the answer. A policy by import path is left to decide()."""
    state = _state(history=History.of([(1.0, _status(State.RUNNING, 0.5))]).to_dict())
    message = json.loads(json.dumps(state.to_message()))
    answers: list[JobStatus | videojobs.VideoJobsError] = [
        _status(State.RUNNING, 0.6),
        _status(State.SUCCEEDED),
        videojobs.NetworkError("refused", vendor="duomi"),
        videojobs.NotFoundError("gone", vendor="duomi"),
    ]
    for answer in answers:
        got, waiter, text = PollState.received({**message, "junk": 1}, now=1002.0)
        assert (got, json.loads(text)) == (state, message)
        assert waiter is not None
        assert waiter.policy == FixedPolicy(5)
        assert decide(got, 1002.0, answer, waiter) == decide(state, 1002.0, answer)
    imported = {**message, "policy": {"kind": "import", "path": "videojobs:FixedPolicy"}}
    assert PollState.received(imported, now=1002.0)[1] is None


def _forged(**changes: Any) -> Any:
    message = json.loads(json.dumps(_state().to_message()))
    for key, value in changes.items():
        if key in ("start", "timeout"):
            message["waiter"][key] = value
        else:
            message[key] = value
    return message


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (["not", "an", "object"], "a JSON object, not list"),
        ({"ref": "duomi:t1"}, "lacks a field"),
        (_forged(ref=5), "ref is a string"),
        (_forged(hop="abc"), "hop is a whole number"),
        (_forged(hop=2**53), "hop is a whole number"),  # Lua's doubles: 2**53 + 1 compares equal to it
        (_forged(polls=-1), "polls is a whole number"),
        (_forged(waiter=[1]), "waiter is an object"),
        (_forged(start=float("nan")), "start is a finite number"),
        (_forged(start=1e300), "deadline is more than"),  # a start far ahead: a wait that never ends
        (_forged(timeout=1e9), "deadline is more than"),
        (_forged(timeout=None), "timeout is a finite number"),
        (_forged(policy=[1]), "policy is one of"),
        (_forged(policy={"kind": "fixed", "seconds": -1}), "policy is not one"),
        (_forged(policy={"kind": "adaptive", "no_such_field": 1}), "policy is not one"),
        (_forged(on_done="videojobs.deliver"), "on_done is a signature"),
        (_forged(booked=float("inf")), "booked is a finite number"),
    ],
)
def test_a_forged_or_corrupt_poll_message_is_refused_before_anything_is_claimed(message: Any, words: str) -> None:
    with pytest.raises(videojobs.UsageError, match=words):
        PollState.from_message(message, now=1000.0)


def test_unknown_keys_of_a_message_are_not_carried_on() -> None:
    state = PollState.from_message({**_forged(), "junk": "J" * 1_000_000}, now=1000.0)
    assert "junk" not in state.to_message()  # the message a claim keeps for the sweeper, and sends on


def test_a_corrupt_wait_state_ends_the_job_typed() -> None:
    state = attrs.evolve(_state(), waiter={**_state().waiter, "history": "garbage"})
    done = decide(state, 1001.0, _status(State.RUNNING, 0.5))
    assert isinstance(done, Done)
    assert done.payload["exception"]["type"] == "UsageError"
    assert "wait state is corrupt" in done.payload["exception"]["message"]


def test_history_carried_in_a_message_is_bounded_and_reads_the_same() -> None:
    answers = [(float(i), _status(State.RUNNING, min(0.99, i / 1000))) for i in range(1, 500)]
    history = History.of(answers)
    again = History.from_dict(json.loads(json.dumps(history.to_dict())))
    assert len(again.samples) == 16
    policy = AdaptivePolicy()
    assert policy.next_delay(again) == pytest.approx(policy.next_delay(history), rel=0.05)
    assert again.last is not None
    assert again.last.state is State.RUNNING


def test_a_running_answer_schedules_the_next_poll_by_the_policy() -> None:
    outcome = decide(_state(), 1010.0, _status(State.RUNNING, 0.2))
    assert isinstance(outcome, Again)
    assert outcome.countdown == 5
    assert outcome.state.hop == 1
    assert outcome.state.waiter["history"]["polls"] == 1


def test_an_ended_job_calls_back_with_its_status_as_json() -> None:
    outcome = decide(_state(), 1010.0, _status(State.SUCCEEDED, 1.0))
    assert isinstance(outcome, Done)
    assert outcome.payload["state"] == "succeeded"
    assert outcome.payload["exception"] is None
    json.dumps(outcome.payload)


def test_failures_back_off_then_end_the_wait() -> None:
    state = _state(max_failed=3)
    outcome = decide(state, 1010.0, videojobs.ServerError("502", vendor="duomi"))
    assert isinstance(outcome, Again)
    assert outcome.countdown == 5  # the policy's 5 s beats the first backoff (1 s)
    outcome = decide(outcome.state, 1015.0, videojobs.RateLimitError("429", vendor="duomi", retry_after=30))
    assert isinstance(outcome, Again)
    assert outcome.countdown == 30  # Retry-After
    done = decide(outcome.state, 1045.0, videojobs.NetworkError("refused", vendor="duomi"))
    assert isinstance(done, Done)
    assert done.payload["exception"]["type"] == "NetworkError"


def test_a_permanent_error_ends_at_once_and_a_deadline_ends_with_a_timeout() -> None:
    done = decide(_state(), 1010.0, videojobs.NotFoundError("gone", vendor="duomi", status_code=404))
    assert isinstance(done, Done)
    assert done.payload["exception"]["status_code"] == 404
    late = decide(_state(deadline=1012.0), 1010.0, _status(State.RUNNING, 0.1))
    assert isinstance(late, Done)
    assert late.payload["exception"]["type"] == "WaitTimeout"
    assert late.payload["state"] == "running"  # the last status seen


def test_only_policies_that_can_travel_are_taken() -> None:
    assert policy_from(policy_spec(AdaptivePolicy(max_delay=30))) == AdaptivePolicy(max_delay=30)
    with pytest.raises(videojobs.UsageError, match="a class, not a policy object"):
        policy_spec("videojobs:FixedPolicy")  # a class: its next_delay would fail at the first poll
    with pytest.raises(videojobs.UsageError, match="travels in its task message"):
        policy_spec(lambda history: 1.0)  # type: ignore[arg-type]


AT = datetime(2026, 12, 2, tzinfo=UTC)


def test_failed_callbacks_go_in_a_set() -> None:
    """A frozen record hashed its ``result`` dict: a bare TypeError, 'unhashable type'."""
    from videojobs.celery import FailedCallback

    one = FailedCallback(ref="vozo:t", reason="RuntimeError: x", attempts=3, failed_at=AT, result={"ref": "vozo:t"})
    same = FailedCallback(ref="vozo:t", reason="RuntimeError: x", attempts=3, failed_at=AT, result={"ref": "vozo:t"})
    assert {one, same} == {one}


def test_install_wants_redis() -> None:
    from celery import Celery

    from videojobs.celery import install

    with pytest.raises(videojobs.UsageError, match="keeps its claims and rates in Redis"):
        install(Celery("x", broker="amqp://guest@localhost//"))


@pytest.mark.parametrize(
    ("broker", "redis_url", "secret"),
    [
        ("sqs://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@", None, "K7MDENG"),
        ("amqp://app:hunter#2pw@rabbit:5672//", None, "hunter"),
        ("memory://", "redis://:Sup3rS3cret@10.0.0.5:notaport/0", "Sup3rS3cret"),  # redis-py: a bare ValueError
    ],
)
def test_install_shows_no_password_of_a_broker_or_redis_url(broker: str, redis_url: str | None, secret: str) -> None:
    """A password holding "/", "?" or "#" (an AWS secret key) ended the URL's host part, and the
    message showed it whole; a Redis URL redis-py cannot read was its bare ValueError quoting
    the password's start, at the first track()."""
    from celery import Celery

    from videojobs.celery import install

    with pytest.raises(videojobs.UsageError) as info:
        install(Celery("x", broker=broker), redis_url=redis_url)
    assert secret not in str(info.value)
    assert (info.value.__cause__ is None and info.value.__suppress_context__) or info.value.__context__ is None


def test_a_redis_that_keeps_nothing_or_only_snapshots_is_named_with_what_a_restart_loses() -> None:
    from videojobs.celery import persistence_problem

    assert persistence_problem({"appendonly": "yes", "save": ""}, None) is None
    nothing = persistence_problem({"appendonly": "no", "save": ""}, None)
    assert nothing is not None
    assert "persists nothing" in nothing
    assert "every job in flight" in nothing
    snapshots = persistence_problem({"appendonly": "no", "save": "3600 1 300 100"}, None)
    assert snapshots is not None
    assert "since the last snapshot" in snapshots
    # CONFIG disabled (a managed Redis): INFO persistence's aof_enabled is all there is
    assert persistence_problem(None, True) is None
    unknown = persistence_problem(None, False)
    assert unknown is not None
    assert "CONFIG is disabled" in unknown
    refused = persistence_problem(None, None)
    assert refused is not None
    assert "could not be asked" in refused


def _app(**conf: object) -> object:
    from celery import Celery

    app = Celery("units", broker="redis://:s3cret-pass@127.0.0.1:1/0", set_as_current=False)
    app.conf.update(conf)
    return app


def test_install_keeps_a_callback_inside_the_times_that_would_deliver_it_twice() -> None:
    from videojobs.celery import install

    with pytest.raises(videojobs.UsageError, match="callback_time_limit < sweep_grace"):
        install(_app(), callback_time_limit=200.0, callback_soft_time_limit=100.0)  # grace 120 s
    with pytest.raises(videojobs.UsageError, match="callback_soft_time_limit <= callback_time_limit"):
        install(_app(), callback_soft_time_limit=50.0, callback_time_limit=40.0)
    with pytest.raises(videojobs.UsageError, match="visibility_timeout"):
        install(_app(broker_transport_options={"visibility_timeout": 60}), callback_time_limit=80.0)
    with pytest.raises(videojobs.UsageError, match="visibility_timeout"):  # 10 s x 2^4 x 1.5 = 240 s of backoff
        install(_app(broker_transport_options={"visibility_timeout": 200}), callback_retries=5)
    with pytest.raises(videojobs.UsageError, match="callback_retries"):
        install(_app(), callback_retries=-1)
    with pytest.raises(videojobs.UsageError, match="callback_backoff"):
        install(_app(), callback_backoff=float("nan"))
    install(_app(broker_transport_options={"visibility_timeout": 300}))  # the README's example: the defaults fit
    for odd in (float("nan"), float("inf"), 0, -5, "300", True):  # NaN passed, and then cut no countdown
        with pytest.raises(videojobs.UsageError, match=r"visibility_timeout'\] is a positive number"):
            install(_app(broker_transport_options={"visibility_timeout": odd}))


def test_a_refused_broker_url_is_named_without_its_password() -> None:
    from celery import Celery

    from videojobs.celery import install

    with pytest.raises(videojobs.UsageError, match="keeps its claims") as caught:
        install(Celery("x", broker="amqp://guest:hunter2secret@localhost//", set_as_current=False))
    assert "hunter2secret" not in str(caught.value)
    assert "amqp://localhost" in str(caught.value)


def test_track_refuses_what_it_cannot_keep_before_touching_redis() -> None:
    from videojobs.celery import AlreadyTrackedError, install, track

    app = _app()
    install(app)
    with pytest.raises(videojobs.UsageError, match="at most 30 days"):
        track("vozo:t1", timeout=31 * 24 * 3600.0, app=app)
    with pytest.raises(videojobs.UsageError, match="timeout"):
        track("vozo:t1", timeout=None, app=app)  # type: ignore[arg-type]
    assert issubclass(AlreadyTrackedError, videojobs.UsageError)


def test_a_failed_callbacks_reason_is_printable_and_bounded() -> None:
    from videojobs.celery import REASON_LIMIT
    from videojobs.celery import _reason as reason

    text = reason(RuntimeError("\x1b]0;pwned\x07 \u202e" + "x" * 10_000), None)
    assert text.startswith("RuntimeError: \\x1b]0;pwned\\x07 \\u202e")
    assert len(text) == REASON_LIMIT
    assert text.endswith("...")

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise ValueError("no")

    assert reason(Unprintable(), None) == "Unprintable: <its message could not be read>"


def test_a_failed_callbacks_reason_never_shows_a_key_of_the_workers_client() -> None:
    """In a process that only delivers callbacks, its client has opened no vendor: the keys it
    would send (given, or in its environment) are scrubbed all the same."""
    from videojobs.celery import _reason as reason

    given, from_env = "sk-vozo-Given-0123456789", "sk-duomi-FromEnv/9876543210"
    client = videojobs.Client(api_keys={"vozo": given}, environ={"DUOMI_API_KEY": from_env})
    with client:
        error = RuntimeError(f"CMS said 401 to Bearer {given}; retry with {urllib.parse.quote(from_env, safe='')}")
        text = reason(error, client)
    assert given not in text
    assert "FromEnv" not in text
    assert text.count("[REDACTED]") == 2


def test_a_failed_callbacks_reason_is_scrubbed_of_every_key_at_once() -> None:
    """Another open client's key that shares pieces with the worker's (``sk-duomi-``, digits):
    scrubbed one scrubber after another, the first one's pieces cut into the worker's
    percent-encoded key, and the rest of it ("FromEnv") was no longer an echo to see (a full
    run's test order left such a key open). One scrubber of every key now reads the text."""
    from videojobs._scrub import LOG_SCRUBBER
    from videojobs.celery import _reason as reason

    other, from_env = "sk-duomi-Other-9876543210", "sk-duomi-FromEnv/9876543210"
    LOG_SCRUBBER.add(other)  # as a client of this process that opened duomi
    try:
        with videojobs.Client(environ={"DUOMI_API_KEY": from_env}) as client:
            text = reason(RuntimeError(f"retry with {urllib.parse.quote(from_env, safe='')}"), client)
    finally:
        LOG_SCRUBBER.discard(other)
    assert "FromEnv" not in text
    assert text == "RuntimeError: retry with [REDACTED]"


def test_install_counts_a_retried_callbacks_backoff_and_run_together_against_the_visibility_timeout() -> None:
    """A retried callback's message waits out its backoff, then runs, unacknowledged throughout:
    visibility 10 s, backoff 3 s (6 s at the second retry, 9 with jitter) and a time limit of 8 s
    passed (max(8, 9) < 10), and its third attempt ran twice. Sentinel brokers are checked too."""
    from videojobs.celery import install

    options = {"callback_retries": 2, "callback_backoff": 3.0, "callback_soft_time_limit": 7.0, "callback_time_limit": 8.0,
               "sweep_grace": 9.0}  # fmt: skip
    with pytest.raises(videojobs.UsageError, match=r"longest backoff and then its time limit \(17 s\)"):
        install(_app(broker_transport_options={"visibility_timeout": 10}), **options)
    install(_app(broker_transport_options={"visibility_timeout": 10}), **{**options, "callback_retries": 0})  # no
    # retry, no backoff: 8 s < 10 s fits (it was refused as 8 + 4.5)
    sentinel = _app(broker_transport_options={"visibility_timeout": 5})
    sentinel.conf.broker_url = "sentinel://127.0.0.1:26379"  # type: ignore[attr-defined]
    with pytest.raises(videojobs.UsageError, match="visibility_timeout"):
        install(sentinel, callback_time_limit=90.0, redis_url="redis://127.0.0.1:1/0")


def _installed_with_a_callback() -> tuple[Any, Any]:
    """An app with videojobs installed (its broker unreachable), and a callback task of another app."""
    from celery import Celery

    from videojobs.celery import install

    app = _app()
    install(app)
    callbacks = Celery("callbacks", set_as_current=False)

    @callbacks.task(name="units.record")
    def record(payload: object, *extra: object) -> None:
        del payload, extra

    return app, record


def test_track_refuses_an_on_done_that_is_no_signature_or_no_json_or_too_large() -> None:
    """A task instead of task.s(), a lambda, a name: bare TypeErrors and ValueErrors; a datetime
    argument: a bare TypeError from json; 5 MB of arguments went into every poll message."""
    import datetime

    from videojobs.celery import track

    app, record = _installed_with_a_callback()
    for on_done, words in (
        (record, r"on_done must be a Celery signature such as task.s\(\), not .* \(a task: pass task.s\(\)"),
        (lambda payload: None, "on_done must be a Celery signature such as task.s"),
        ("units.record", "on_done must be a Celery signature such as task.s"),
        (record.s(datetime.datetime(2026, 1, 1)), "on_done's arguments must be JSON"),
        (record.s("x" * 100_000), "on_done makes each poll message"),
    ):
        with pytest.raises(videojobs.UsageError, match=words):
            track("vozo:t1", on_done=on_done, app=app)


def test_a_first_poll_of_a_30_day_job_from_a_caller_a_little_ahead_is_ours() -> None:
    """The worker's clock 0.05 s behind the caller's: the message's deadline read as more than 30
    days away, and the first poll was dropped as not one of ours (the sweeper sent it again)."""
    from videojobs.celery._poll import MAX_TIMEOUT, PollState

    state = PollState.start("vozo:t1", started=1000.05, timeout=MAX_TIMEOUT, max_failed=5, policy={"kind": "adaptive"})
    assert PollState.from_message(state.to_message(), 1000.0).ref == "vozo:t1"


def test_a_payloads_exception_says_which_job() -> None:
    from videojobs.celery._poll import payload

    body = payload("vozo:t1", None, videojobs.NotFoundError("no such task", vendor="vozo"), 1)
    assert body["exception"]["ref"] == "vozo:t1"


def test_a_pool_that_cannot_enforce_time_limits_is_said_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    """On the solo and threads pools a callback past the visibility timeout ran twice, unsaid."""
    from celery.concurrency.prefork import TaskPool as Prefork
    from celery.concurrency.solo import TaskPool as Solo
    from celery.concurrency.thread import TaskPool as Threads

    from videojobs.celery import _warn_if_no_time_limits

    gevent = type("TaskPool", (), {"__module__": "celery.concurrency.gevent"})  # its module imports gevent
    for pool in (Solo, Threads, Prefork, gevent):
        _warn_if_no_time_limits(pool.__new__(pool), 90.0)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.args[0] for r in errors] == ["solo", "thread", "gevent"]  # type: ignore[index]
    assert "would be delivered again and run twice" in errors[0].getMessage()


def test_a_poll_is_never_held_past_the_visibility_timeout() -> None:
    """A countdown past the broker's visibility timeout (FixedPolicy(7200), a Retry-After of a
    day) was published as is: the held message came back while the first copy waited, and each
    copy called the vendor (3 and 4 status calls at once). It is cut to below the timeout."""
    from types import SimpleNamespace

    from videojobs.celery import _again
    from videojobs.celery._poll import Again

    sent: list[float] = []
    due: list[float] = []
    task = SimpleNamespace(app=SimpleNamespace(send_task=lambda *a, **k: sent.append(k["countdown"])))
    store = SimpleNamespace(due_later=lambda ref, hop, when: due.append(when), now=time.time)
    state = _state()
    assert _again(task, store, state, Again(state, 7200.0), bound=60.0, longest=3540.0) == "next poll in 3540.00 s"
    assert sent == [3540.0]
    assert len(due) == 1  # the sweeper is told when it is due
    _again(task, store, state, Again(state, 30.0), bound=60.0, longest=3540.0)
    assert sent[-1] == 30.0
    booked = attrs.evolve(state, booked=1000.0, slot=time.time() + 90.0)  # holds a slot of the shared rate
    _again(task, store, booked, Again(booked, 90.0), bound=60.0, longest=3540.0)
    assert sent[-1] == 90.0
    # a slot further out than the broker holds a message (a queue of 200 jobs at 5 req/s is 40 s
    # long; a 5 s visibility timeout): cut too, the slot kept in the message (back before it, the
    # hop hears the time left: tests/test_celery_fleet.py)
    _again(task, store, booked, Again(booked, 90.0), bound=60.0, longest=3.75)
    assert sent[-1] == 3.75


def test_a_paced_vendors_poll_is_not_held_past_the_visibility_timeout_either() -> None:
    """A vendor the fleet paces (for a day after any 429) had every hop's slot booked, and a
    booked hop kept its countdown: FixedPolicy(7200) was published as 7200 s against a 3,600 s
    visibility timeout, and both copies of the message called the vendor. It is cut to below it
    and books no slot (it books one when it comes back); a poll due within it books its slot."""
    from types import SimpleNamespace

    from videojobs.celery import _poll
    from videojobs.celery._store import Claim
    from videojobs.sandbox import Sandbox

    sandbox = Sandbox()
    ref = sandbox.create("duomi", queue=0.0, run=600.0)
    sent: list[dict[str, Any]] = []
    booked: list[str] = []
    task = SimpleNamespace(
        request=SimpleNamespace(delivery_info={"delivery_tag": "t"}, id="x"),
        app=SimpleNamespace(send_task=lambda name, args, **k: sent.append({"message": args[0], **k})),
    )
    store = SimpleNamespace(
        paces={"duomi": {"last_cut": "5.0"}},  # paced: the vendor throttled once
        poll=lambda *a, **k: Claim(Claim.RUN, 0.0, None),
        book=lambda vendor, now, ahead=False: booked.append(vendor) or Booking(0.02, now, 5.0),
        due_later=lambda *a: None,
        now=time.time,
    )
    with videojobs.Client(**sandbox.client_kwargs()) as client:
        for delay, countdown, books in ((7200.0, 3540.0, False), (30.0, 30.0, True)):
            booked.clear()
            state = PollState.start(ref, started=time.time(), timeout=86400.0, max_failed=5,
                                    policy=policy_spec(FixedPolicy(delay)))  # fmt: skip
            assert _poll(task, state.to_message(), client, store, WorkerPaces(), 120.0, longest=3540.0) == (
                f"next poll in {countdown:.2f} s"
            )
            assert sent[-1]["countdown"] == countdown
            assert (sent[-1]["message"].get("booked") is not None) is books
            assert bool(booked) is books


def test_track_takes_a_signature_that_came_as_data_and_refuses_one_too_deep() -> None:
    from videojobs.celery import track

    app, record = _installed_with_a_callback()
    deep: list[object] = []
    for _ in range(3000):
        deep = [deep]
    with pytest.raises(videojobs.UsageError, match="on_done's arguments must be JSON"):
        track("vozo:t1", on_done=record.s(deep), app=app)  # a bare RecursionError
    with pytest.raises(videojobs.UsageError, match="on_done is a mapping that is no Celery signature"):
        track("vozo:t1", on_done={"not": "a signature"}, app=app)
    with pytest.raises(videojobs.NetworkError):  # a signature as data is taken: the call gets as far as Redis
        track("vozo:t1", on_done=dict(record.s()), app=app)


def test_a_hand_written_signature_is_delivered_and_a_malformed_one_refused() -> None:
    """{"task": ..., "args": [1]} (no "options", as another tool writes it) passed track() and
    failed at every delivery, in Celery's merge of options=None: a callback never run."""
    from celery import Celery, signature

    from videojobs.celery import _signature

    app = Celery("units", set_as_current=False)
    ran: list[tuple[object, ...]] = []

    @app.task(name="units.ran")
    def record(*args: object) -> None:
        ran.append(args)

    for data in ({"task": "units.ran", "args": [1]}, {"task": "units.ran", "args": None, "options": None}):
        noted = json.loads(json.dumps(_signature(data)))  # as the job's record keeps it
        signature(noted, app=app).apply(args=({"ref": "vozo:t1"},), throw=True)  # as _deliver runs it
    assert ran == [({"ref": "vozo:t1"}, 1), ({"ref": "vozo:t1"},)]
    for data, words in (
        ({"task": ""}, "names no task"),
        ({"task": "units.ran", "args": 5}, "'args' must be a list, not int"),
        ({"task": "units.ran", "kwargs": [1]}, "'kwargs' must be a mapping, not list"),
        ({"task": "units.ran", "options": "fast"}, "'options' must be a mapping, not str"),
    ):
        with pytest.raises(videojobs.UsageError, match=words):
            _signature(data)


def test_track_says_a_timeout_is_seconds_and_none_is_no_timeout_here() -> None:
    """track(timeout=-1) said "a positive number of seconds or None", and None was refused."""
    from videojobs.celery import track

    app, _ = _installed_with_a_callback()
    with pytest.raises(videojobs.UsageError, match=r"timeout must be a positive number of seconds, not -1$"):
        track("vozo:t1", timeout=-1, app=app)
    with pytest.raises(videojobs.UsageError, match=r"a tracked job's timeout is seconds, at most 30 days .*, not None"):
        track("vozo:t1", timeout=None, app=app)  # type: ignore[arg-type]


def test_a_wait_for_the_shared_rate_never_holds_a_poll_past_the_jobs_deadline() -> None:
    """The shared rate's wait came from Redis as is: a bucket booked far ahead held the poll past
    its job's deadline (23 days for a 10-minute job), and one of ~1e307 s made Celery raise an
    OverflowError. The hop comes back at the deadline at the latest, and ends the wait there."""
    from types import SimpleNamespace

    from videojobs.celery import _poll
    from videojobs.celery._store import Claim

    sent: list[float] = []
    task = SimpleNamespace(
        request=SimpleNamespace(delivery_info={"delivery_tag": "t"}, id="x"),
        app=SimpleNamespace(send_task=lambda name, args, **k: sent.append(k["countdown"])),
    )
    store = SimpleNamespace(
        paces={"duomi": {"last_cut": "5.0"}},
        poll=lambda *a, **k: Claim(Claim.RUN, 250.0, 5.0),
        due_later=lambda *a: None,
        now=time.time,
    )
    state = PollState.start("duomi:t1", started=time.time(), timeout=10.0, max_failed=5, policy=policy_spec(None))
    _poll(task, state.to_message(), None, store, WorkerPaces(), 120.0, longest=3540.0)
    assert 0 < sent[-1] <= 10.0


def test_a_hung_redis_holds_a_worker_about_half_a_minute_and_a_restart_is_still_ridden_out() -> None:
    """connect() retried 20 times with a 10 s socket timeout: a Redis that hangs held a worker four
    minutes per command (the docs say about half a minute), and each timed-out try's script ran
    once it woke (21 slots booked). Retries are now bounded by time: a hung Redis ends a command
    within STORE_RETRY_BUDGET plus one socket timeout; a refused one (a restart) is still retried
    for all of the budget."""
    import redis

    from videojobs.celery._store import STORE_RETRY_BUDGET, STORE_SOCKET_TIMEOUT, connect

    clock = [0.0]
    kind = type(connect("redis://127.0.0.1:1/0").get_retry())
    retry = kind(STORE_RETRY_BUDGET, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    for error, took in ((redis.exceptions.TimeoutError, STORE_SOCKET_TIMEOUT), (redis.exceptions.ConnectionError, 0.0)):
        clock[0] = 0.0
        tries: list[float] = []

        def do(error: type[Exception] = error, took: float = took, tries: list[float] = tries) -> None:
            tries.append(clock[0])
            clock[0] += took
            raise error("no answer")

        with pytest.raises(error):
            retry.call_with_retry(do, lambda exc: None)
        assert clock[0] <= STORE_RETRY_BUDGET + STORE_SOCKET_TIMEOUT <= 35.0  # about half a minute
        assert tries[-1] >= STORE_RETRY_BUDGET - 2.0  # tried till the budget ran out
    assert STORE_RETRY_BUDGET >= 20.0  # a restart's seconds of refused connections are ridden out


def test_redis_away_past_the_retries_is_a_typed_error_naming_the_store_without_its_password() -> None:
    """A poll task whose Redis stayed away raised a bare redis ConnectionError."""
    import redis

    from videojobs.celery import StoreRefusedError, UnreachableError, _store_errors

    unreachable = pytest.raises(UnreachableError, match=r"Redis \(videojobs.celery's store\) at redis://h:6379/0")
    with unreachable as info, _store_errors("redis://:s3cret@h:6379/0"):
        raise redis.exceptions.ConnectionError("Connection refused")
    assert isinstance(info.value, videojobs.NetworkError)
    assert "s3cret" not in str(info.value)
    with pytest.raises(StoreRefusedError, match="OOM"), _store_errors("redis://h:6379/0"):
        raise redis.exceptions.ResponseError("OOM command not allowed")


@pytest.mark.parametrize(
    ("waiter", "words"),
    [
        ({"last_error": "E" * 5_000_000}, "more than the"),  # claimed, kept in Redis a day, sent on
        ({"junk": "J" * 3_000_000}, "more than the"),
        ({"ref": "vozo:someone-else"}, "waiter is another job's"),
        ({"failed_in_a_row": -5}, "failed_in_a_row is a whole number"),
    ],
    ids=["last-error-5MB", "junk-in-waiter", "another-jobs-waiter", "failures-negative"],
)
def test_a_poll_message_too_large_or_inconsistent_is_refused_before_anything_is_claimed(
    waiter: dict[str, Any], words: str
) -> None:
    """MAX_MESSAGE was checked only in track(): a worker claimed and carried on a 5 MB wait state;
    a waiter naming another job, or failures in a row below 0 (more failed polls before the end),
    were taken too."""
    message = json.loads(json.dumps(_state().to_message()))
    message["waiter"].update(waiter)
    with pytest.raises(videojobs.UsageError, match=words):
        PollState.from_message(message, now=1000.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": None}, {"timeout": -1}, {"max_failed_polls": 0}, {"policy": object()}],
    ids=["timeout-None", "timeout-negative", "max_failed_polls", "policy"],
)
def test_an_argument_error_of_track_says_which_job(kwargs: dict[str, Any]) -> None:
    """The clients' calls about one job set ``error.ref`` whatever ended them; ``track()`` left it
    None for its arguments (checked before any app or store is needed)."""
    from videojobs.celery import track

    with pytest.raises(videojobs.UsageError) as caught:
        track("vozo:t1", **kwargs)
    assert caught.value.ref == "vozo:t1"


def test_an_unpaced_poll_spends_one_retry_budget_on_a_redis_that_is_away() -> None:
    """``poll_meanwhile`` (a vendor not paced: the common path) fell back to the ordinary poll
    when the pool could not connect: another whole budget of retries (46-56 s against the half a
    minute documented), and the vendor was called meanwhile. It is the store's error at once."""
    import redis

    from videojobs.celery._store import STORE_RETRY_BUDGET, STORE_SOCKET_TIMEOUT, Store, connect

    clock = [0.0]
    kind = type(connect("redis://127.0.0.1:1/0").get_retry())
    retry = kind(STORE_RETRY_BUDGET, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    away = redis.Redis.from_url(  # nothing listens on port 1: each try is refused at once
        "redis://127.0.0.1:1/0", retry=retry, retry_on_error=[redis.exceptions.ConnectionError]
    )
    store = Store(away, prefix="away")
    with pytest.raises(redis.exceptions.ConnectionError):
        store.poll_meanwhile("vozo:t1", 0, "tag", ttl=3600, grace=10.0, message="{}", due=5.0, vendor="vozo", now=0.0)
    assert clock[0] <= STORE_RETRY_BUDGET + STORE_SOCKET_TIMEOUT  # one budget, not two


def test_a_failed_callbacks_time_reads_as_every_time_a_user_reads_even_set_by_hand() -> None:
    """``failed_at`` was Unix seconds where every other time is an aware UTC datetime; a record set by
    hand (``nan``, ``1e300``) reads as the epoch, not a bare ValueError or OverflowError."""
    from videojobs.celery import _utc

    assert _utc(b"1764633600.5") == datetime(2025, 12, 2, 0, 0, 0, 500000, tzinfo=UTC)
    assert _utc(b"nan") == _utc(b"1e300") == _utc(b"x") == datetime(1970, 1, 1, tzinfo=UTC)


class _Clock:
    """Time that moves only when a poll sleeps (the store's clock and the sleep a poll is given)."""

    def __init__(self) -> None:
        self.now, self.slept = 1000.0, 0.0

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds
        self.slept += seconds


def test_before_the_fleets_first_throttle_a_poll_waits_for_its_own_process_slow_start() -> None:
    """Each worker process ramps its calls to a vendor up from START_RATE until its fleet's first cut
    (without it every job's first poll went at once): its first burst goes, the next call sleeps
    at most a token's time, none sleeps once the fleet's pace is known, nor past the deadline."""
    from types import SimpleNamespace

    from videojobs._ratecontrol import START_RATE
    from videojobs.celery import _slow_start

    clock = _Clock()
    store = SimpleNamespace(paces={"duomi": None}, now=lambda: clock.now)
    local = WorkerPaces(clock=lambda: clock.now)
    for _ in range(int(START_RATE)):
        assert _slow_start(store, local, "duomi", clock.now, clock.now + 60, clock.sleep) == (clock.now, 0.0)
    assert clock.slept == 0.0
    assert _slow_start(store, local, "duomi", clock.now, clock.now + 60, clock.sleep) == (clock.now, 0.0)
    assert 0 < clock.slept <= 1 / START_RATE + 1e-9
    clock.slept = 0.0
    deadline = clock.now + 0.01
    assert _slow_start(store, local, "duomi", clock.now, deadline, clock.sleep)[0] >= deadline
    assert clock.slept == pytest.approx(0.01)
    clock.slept = 0.0
    fleet_clock = [clock.now + 600.0]  # the fleet's clock stepped ahead of this process's: its ramp is its own
    stepped = SimpleNamespace(paces={"duomi": None}, now=lambda: fleet_clock[0])
    _slow_start(stepped, local, "duomi", fleet_clock[0], fleet_clock[0] + 60, clock.sleep)
    fleet_clock[0] -= 600.0  # and back
    _slow_start(stepped, local, "duomi", fleet_clock[0], fleet_clock[0] + 60, clock.sleep)
    assert clock.slept <= 2 / START_RATE + 1e-9
    clock.slept = 0.0
    store.paces["duomi"] = {"last_cut": "999.0"}  # the fleet's pace rules it now: its slot is booked in Redis
    for _ in range(10):
        _slow_start(store, local, "duomi", clock.now, clock.now + 60, clock.sleep)
    assert clock.slept == 0.0


def test_a_poll_crowded_out_of_its_process_slow_start_goes_back_to_the_broker_not_asleep() -> None:
    """The threads of a threads or gevent pool share their process's ramp, taking its tokens in no
    order: against a vendor answering 5xx (which grows no ramp) 32 of them slept up to 19 s each,
    holding their pool slots. A poll sleeps START_WAIT at most, then goes back to the broker with
    the ramp's wait as its countdown, its hop claimed, no vendor called."""
    from types import SimpleNamespace

    from videojobs._ratecontrol import START_RATE
    from videojobs.celery import START_WAIT, _poll
    from videojobs.celery._store import Claim

    clock = _Clock()
    local = WorkerPaces(clock=lambda: clock.now)

    def crowded(seconds: float) -> None:  # the process's other threads take each token as it comes
        clock.sleep(seconds)
        while local.wait("duomi") == 0.0:
            pass

    sent: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    task = SimpleNamespace(
        request=SimpleNamespace(delivery_info={"delivery_tag": "t"}, id="x"),
        app=SimpleNamespace(send_task=lambda name, args, **k: sent.append({"message": args[0], **k})),
    )
    store = SimpleNamespace(
        paces={"duomi": None},
        poll=lambda *a, **k: claims.append(k) or Claim(Claim.RUN),
        due_later=lambda *a: None,
        now=lambda: clock.now,
    )
    state = PollState.start("duomi:t1", started=clock.now, timeout=3600.0, max_failed=5,
                            policy=policy_spec(FixedPolicy(5)))  # fmt: skip
    crowded(0.0)  # the ramp's first burst, taken
    outcome = _poll(task, state.to_message(), None, store, local, 120.0, sleep=crowded)  # None: no vendor call
    assert outcome.startswith("next poll in")
    assert clock.slept == pytest.approx(START_WAIT)
    assert claims[-1]["reserve"] is False  # claimed, nothing booked
    assert 0 < sent[-1]["countdown"] <= 2 / START_RATE  # its token's time, and its turn among one waiting
    assert sent[-1]["message"]["hop"] == state.hop + 1
    assert sent[-1]["message"]["polls"] == state.polls  # no poll made


def test_a_worker_process_ramp_grows_with_answers_and_starts_again_after_the_fleets_pace() -> None:
    from videojobs._ratecontrol import START_RATE

    clock = _Clock()
    local = WorkerPaces(clock=lambda: clock.now)
    start, sent = clock.now, 0
    while clock.now < start + 1.0:  # one call at a time, answered in 5 ms
        if (wait := local.wait("duomi")) == 0.0:
            sent += 1
            clock.now += 0.005
            local.answered("duomi", None, clock.now - 0.005, paced=False)
        else:
            clock.now += wait
    assert sent > 2 * START_RATE  # it grew
    assert local.measured("duomi") == pytest.approx(sent - 1, abs=2)  # what it saw accepted
    local.answered("duomi", videojobs.RateLimitError("429", vendor="duomi"), clock.now - 0.01, paced=True)
    assert local.measured("duomi") == pytest.approx(sent - 1, abs=2)  # a 429 is no accepted call
    clock.now += 86_400.0  # the pace went (a day without a throttle): a new ramp from its start
    for _ in range(int(START_RATE)):
        assert local.wait("duomi") == 0.0
    assert local.wait("duomi") > 0


def test_polls_crowded_out_of_a_ramp_come_back_spread_over_the_time_the_queue_needs() -> None:
    """Sent back in the ramp's next token's time, every crowded-out poll was a hop a poll: 500 threads
    of a gevent pool, 493 hops a second against a vendor down that grows no ramp. Each is now
    sent back to somewhere in the time the polls waiting need at the ramp's rate."""
    import contextlib

    from videojobs._ratecontrol import START_RATE

    clock = _Clock()
    local = WorkerPaces(clock=lambda: clock.now)
    assert local.backlog("duomi") == 0.0  # no ramp yet
    local.wait("duomi")
    with contextlib.ExitStack() as stack:
        for _ in range(100):
            stack.enter_context(local.waiting("duomi"))
        assert local.backlog("duomi") == pytest.approx(100 / START_RATE)
    assert local.backlog("duomi") == 0.0  # none waiting


def test_a_listener_refused_says_so_once_and_tries_again_less_and_less_often(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Redis user not allowed the channel is refused at every subscription: it logged a WARNING
    with a traceback every second, for ever. Once, then at DEBUG, the wait doubling to its cap."""
    import logging
    from types import SimpleNamespace

    import redis

    from videojobs.celery import NOTICE_RETRY_CAP, PACE_REFRESH, _listen_for_cuts

    def refused() -> Any:
        raise redis.exceptions.NoPermissionError("this user has no permissions to access the 'videojobs:cuts' channel")

    store = SimpleNamespace(listen=refused)
    waits: list[float] = []

    class Enough(BaseException):
        pass

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 14:
            raise Enough

    with caplog.at_level(logging.DEBUG, logger="videojobs.celery"), pytest.raises(Enough):
        _listen_for_cuts(lambda: (None, store, WorkerPaces()), sleep)
    assert waits[:4] == [PACE_REFRESH, 2 * PACE_REFRESH, 4 * PACE_REFRESH, 8 * PACE_REFRESH]
    assert waits[-1] == NOTICE_RETRY_CAP
    levels = [record.levelno for record in caplog.records if "first cuts" in record.getMessage()]
    assert levels == [logging.WARNING] + [logging.DEBUG] * 13


def test_a_process_ramp_grows_on_a_vendors_errors_and_keeps_its_cut_after_a_429() -> None:
    """Slow start grows on every answer that came back through the vendor's limiter, a 5xx too (TCP's
    on every ACK), and counts it as accepted: counted as none, a vendor failing before it ever throttled held each process at
    START_RATE (100 jobs of a threads pool: none done in a minute, 27 s before the ramp). And a
    ramp that met a 429 keeps its cut and its pause: a new one's full bucket after each 429 handed
    out START_RATE tokens a 429."""
    from videojobs._ratecontrol import START_RATE

    clock = _Clock()
    failing = WorkerPaces(clock=lambda: clock.now)
    start, sent = clock.now, 0
    while clock.now < start + 1.0:  # every answer a 502, 5 ms each
        if (wait := failing.wait("duomi")) == 0.0:
            sent += 1
            clock.now += 0.005
            failing.answered("duomi", videojobs.ServerError("502", vendor="duomi", status_code=502), clock.now - 0.005,
                             paced=False)  # fmt: skip
        else:
            clock.now += wait
    assert sent > 4 * START_RATE  # it grew
    # and each counts as accepted (a cut's share): the vendor's limiter let it through. Counted as
    # none, a vendor answering 502 to a third of the calls had the fleet's first cut start from
    # 0.5 req/s, and a 20 req/s allowance was polled at 1 req/s (an attack with real workers)
    assert failing.measured("duomi") == pytest.approx(sent, rel=0.2)
    throttled = WorkerPaces(clock=lambda: clock.now)
    while throttled.wait("duomi") == 0.0:  # its first burst, spent
        pass
    granted = 0
    for _ in range(10):  # ten 429s at once, before the fleet's pace is known
        throttled.answered("duomi", videojobs.RateLimitError("429", vendor="duomi", retry_after=1.0), clock.now - 0.01,
                           paced=False)  # fmt: skip
        granted += sum(1 for _ in range(40) if throttled.wait("duomi") == 0.0)
    assert granted == 0  # paused for the Retry-After, not four fresh tokens a 429
