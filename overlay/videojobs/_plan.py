"""The one plan walker: a plan is a generator that yields what it needs done and is sent the result.

Status calls and waits (``_calls``) and downloads (``_download``) are written as plans, without
I/O (the sans-I/O pattern of h11 and hyper); their drivers (``_calls.drive``/``adrive``,
``_fetch.run_plan``/``arun_plan``) do what each action names and hand the result, or the error,
back through a :class:`Walk`. Nothing here does I/O, and nothing here imports the rest of videojobs.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Generic, TypeVar

__all__ = ["Walk"]

A = TypeVar("A")  # what a plan asks for (its actions)
V = TypeVar("V")  # what it is sent back for an action
R = TypeVar("R")  # what it returns


class Walk(Generic[A, V, R]):
    """Walks a plan: hands the driver each action; the driver sets ``value`` (the action's result)
    or ``error`` (thrown into the plan) before asking for the next one. ``result`` is the plan's
    return value once the iteration ends."""

    __slots__ = ("error", "plan", "result", "value")

    def __init__(self, plan: Generator[A, V | None, R]) -> None:
        self.plan = plan
        self.value: V | None = None
        self.error: BaseException | None = None
        self.result: R

    def __iter__(self) -> Iterator[A]:
        plan = self.plan
        while True:
            try:
                action = plan.send(self.value) if self.error is None else plan.throw(self.error)
            except StopIteration as stop:
                self.result = stop.value
                return
            self.value = self.error = None
            yield action
