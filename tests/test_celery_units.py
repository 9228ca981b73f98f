"""videojobs.celery's pure parts: the message a poll carries, and what comes after an answer."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("celery")

import videojobs
from videojobs import AdaptivePolicy, FixedPolicy, JobStatus, State
from videojobs._policy import History
from videojobs.celery._poll import Again, Done, PollState, decide, policy_from, policy_spec


def _state(**kwargs: object) -> PollState:
    base = {"ref": "duomi:t1", "started": 1000.0, "deadline": 4600.0, "policy": policy_spec(FixedPolicy(5))}
    return PollState(**{**base, **kwargs})  # type: ignore[arg-type]


def _status(state: State, progress: float | None = None) -> JobStatus:
    return JobStatus(vendor="duomi", task_id="t1", state=state, vendor_state=state.value, progress=progress)


def test_a_message_is_json_and_round_trips() -> None:
    state = _state(history=History.of([(1.0, _status(State.RUNNING, 0.5))]).to_dict())
    message = json.loads(json.dumps(state.to_message()))
    assert PollState.from_message(message) == state
    assert len(json.dumps(message)) < 1000  # a few hundred bytes, whatever the job's age


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
    assert outcome.state.history is not None


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
    assert policy_from(policy_spec("videojobs:FixedPolicy")) is FixedPolicy
    with pytest.raises(videojobs.UsageError, match="travels in its task message"):
        policy_spec(lambda history: 1.0)  # type: ignore[arg-type]


def test_install_wants_redis() -> None:
    from celery import Celery

    from videojobs.celery import install

    with pytest.raises(videojobs.UsageError, match="keeps its claims and rates in Redis"):
        install(Celery("x", broker="amqp://guest@localhost//"))
