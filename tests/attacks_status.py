"""Attacks on the status boundary: hostile vendors on loopback sockets (tests/hostile.py).

Each attack is one status call (or one wait) with ``timeout`` seconds per attempt and
``max_retries=2``, sync and async. ``scripts/attacks.py`` runs each in a fresh process; the
contract (``ATTACKS``, ``run``) is the same for every surface.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import videojobs
from tests import hostile

KEY = "sk-vozo-ECHOED-key/42"

# name -> (scenario factory, what, timeout per attempt)
_SCENARIOS: dict[str, tuple[Any, str, float]] = {
    "trickled headers (1 byte / 0.2 s)": (hostile.trickle_headers, "status", 2.0),
    "trickled body (1 byte / 0.2 s)": (hostile.trickle_body, "status", 2.0),
    "silent server": (hostile.silent, "status", 2.0),
    "silent server, wait(timeout=2)": (hostile.silent, "wait", 2.0),
    "endless chunked body": (hostile.endless_body, "status", 10.0),
    "1 GB gzip bomb": (hostile.gzip_bomb, "status", 10.0),
    "1 GB deflate bomb": (lambda: hostile.gzip_bomb(encoding="deflate"), "status", 10.0),
    "claims gzip, is not": (lambda: hostile.claims("gzip"), "status", 2.0),
    "claims br": (lambda: hostile.claims("br"), "status", 2.0),
    "reset mid-body": (hostile.reset_mid_body, "status", 2.0),
    "100,000-deep JSON": (lambda: hostile.answer(body=b"[" * 100000 + b"]" * 100000), "status", 2.0),
    "progress = 10**400": (
        lambda: hostile.answer(body=b'{"task_id":"t","status":"processing","x":1' + b"0" * 400 + b"}"),
        "status",
        2.0,
    ),
    "429, Retry-After: 999999999": (
        lambda: hostile.answer(429, b"{}", {"Retry-After": "999999999"}),
        "status",
        2.0,
    ),
    "429 storm, wait(timeout=2)": (lambda: hostile.answer(429, b"{}", {"Retry-After": "999999999"}), "wait", 2.0),
    "key echoed in body and header": (lambda: hostile.echo_authorization(400), "status", 2.0),
}

ATTACKS: dict[str, float] = {}
for _name, (_, _what, _timeout) in _SCENARIOS.items():
    for _mode in ("sync", "async"):
        # three attempts of `timeout` plus backoff for a status call; the wait's own deadline plus 1 s
        ATTACKS[f"{_name} [{_mode}]"] = _timeout * 3 + 1 if _what == "status" else _timeout + 1


def run(name: str) -> dict[str, Any]:
    base, _, mode = name.rpartition(" [")
    mode = mode.rstrip("]")
    factory, what, timeout = _SCENARIOS[base]
    with hostile.hostile(factory()) as url:
        kwargs: dict[str, Any] = {
            "api_keys": {"vozo": KEY},
            "base_urls": {"vozo": url},
            "max_retries": 2,
            "request_timeout": timeout,
        }
        try:
            if mode == "sync":
                with videojobs.Client(**kwargs) as client:
                    result = client.wait("vozo:t", timeout=timeout) if what == "wait" else client.status("vozo:t")
            else:

                async def go() -> videojobs.JobStatus:
                    async with videojobs.AsyncClient(**kwargs) as aclient:
                        if what == "wait":
                            return await aclient.wait("vozo:t", timeout=timeout)
                        return await aclient.status("vozo:t")

                result = asyncio.run(go())
            outcome = f"JobStatus {result.state.value}" + (
                f", problems: {len(result.problems)}" if result.problems else ""
            )
            leaked = KEY in repr(result) or KEY in json.dumps(result.to_dict())
        except videojobs.VideoJobsError as exc:
            outcome = f"{type(exc).__name__}: {exc.message[:60]}"
            leaked = KEY in str(exc) or KEY.encode() in (exc.raw or b"")
    return {"outcome": outcome, "typed": True, "safe": not leaked}
