"""videojobs.celery's callbacks under attack, on real workers (``tests/attacks_callbacks.py``: the
same scenarios ``scripts/attacks.py`` runs, each in a fresh process there, all on one shared rig
here): a callback that raises or hangs ends in bounded attempts and time while other jobs'
callbacks go on; a second ``track()`` is a typed error; an unreachable Redis or broker is a typed
error within seconds; forged messages run nothing and leave no key without a TTL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("celery")
pytest.importorskip("redis")

from tests.attacks_callbacks import ATTACKS, SCENARIOS, Rig, until


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """One worker of two processes, on a Redis that persists nothing, with short callback limits."""
    with Rig(tmp_path_factory.mktemp("rig")) as rig:
        yield rig


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_ends_typed_and_safe(rig: Rig, name: str) -> None:
    result = SCENARIOS[name](rig)
    assert result["typed"], result
    assert result["safe"], result


def test_a_worker_warns_at_start_when_its_redis_does_not_persist(rig: Rig) -> None:
    assert rig.workers is not None
    said = until(lambda: "persists nothing (appendonly no, save '')" in rig.workers.log(), 20)  # type: ignore[union-attr]
    assert said, rig.workers.log()[-2000:]
    line = next(line for line in rig.workers.log().splitlines() if "persists nothing" in line)
    assert "WARNING" in line
    assert rig.redis.url in line
    assert "a restart loses every job in flight" in line
