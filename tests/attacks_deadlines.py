"""Attacks on deadlines: a vendor that accepts connections and never answers, at scale.

``wait_all(refs, timeout=T)`` must hand back every job within T plus one request's timeout,
whatever the vendor does: the time a job waits for a concurrency slot counts (issue 18).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import videojobs
from tests import hostile

WAIT = 3.0  # the whole wait_all's timeout
REQUEST = 2.0  # the client's per-request timeout

ATTACKS: dict[str, float] = {
    "wait_all: 500 refs, vendor never answers (max_requests 64)": WAIT + REQUEST,
    "wait_all: 200 refs, max_requests 1, vendor never answers": WAIT + REQUEST,
    "wait: vendor never answers, max_retries=5": WAIT + REQUEST,
}


def run(name: str) -> dict[str, Any]:
    refs = 500 if "500" in name else 200
    concurrency = 1 if "max_requests 1" in name else 64
    with hostile.hostile(hostile.silent()) as url:
        kwargs: dict[str, Any] = {"api_keys": {"vozo": "sk-deadline-test"}, "base_urls": {"vozo": url}}
        start = time.monotonic()
        if name.startswith("wait:"):
            with videojobs.Client(request_timeout=REQUEST, max_retries=5, **kwargs) as client:
                try:
                    client.wait("vozo:t", timeout=WAIT)
                except videojobs.VideoJobsError as exc:
                    return {"outcome": f"{type(exc).__name__}", "typed": True, "safe": True}
                return {"outcome": "returned", "typed": True, "safe": False}

        async def go() -> tuple[int, float]:
            async with videojobs.AsyncClient(request_timeout=REQUEST, **kwargs) as client:
                seen, last = 0, 0.0
                async for result in client.wait_all(
                    [f"vozo:t{i}" for i in range(refs)], timeout=WAIT, max_requests=concurrency
                ):
                    seen += isinstance(result, videojobs.WaitTimeout)
                    last = time.monotonic() - start
                return seen, last

        errors, last = asyncio.run(go())
    return {
        "outcome": f"{errors}/{refs} ended in WaitTimeout; the last at {last:.2f} s",
        "typed": errors == refs,
        "safe": last <= WAIT + REQUEST,
    }
