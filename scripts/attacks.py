"""Every hostile-server attack of tests/hostile.py, each in a fresh process: outcome, time, peak RSS.

    python scripts/attacks.py            # the table (markdown), sync and async

Each row runs one status call (or one wait) against a server on a loopback port, in a new
interpreter so that its peak RSS is its own. The goal (issue 9): a typed error or a readable
JobStatus within timeout + 1 s, under 300 MB of RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ATTACKS = [
    ("trickled headers (1 byte / 0.2 s)", "hostile.trickle_headers()", "status", 2.0),
    ("trickled body (1 byte / 0.2 s)", "hostile.trickle_body()", "status", 2.0),
    ("silent server", "hostile.silent()", "status", 2.0),
    ("silent server, wait(timeout=2)", "hostile.silent()", "wait", 2.0),
    ("endless chunked body", "hostile.endless_body()", "status", 10.0),
    ("1 GB gzip bomb", "hostile.gzip_bomb()", "status", 10.0),
    ("1 GB deflate bomb", "hostile.gzip_bomb(encoding='deflate')", "status", 10.0),
    ("claims gzip, is not", "hostile.claims('gzip')", "status", 2.0),
    ("claims br", "hostile.claims('br')", "status", 2.0),
    ("reset mid-body", "hostile.reset_mid_body()", "status", 2.0),
    ("100,000-deep JSON", "hostile.answer(body=b'[' * 100000 + b']' * 100000)", "status", 2.0),
    (
        "progress = 10**400",
        'hostile.answer(body=b\'{"task_id":"t","status":"processing","x":1\' + b\'0\' * 400 + b\'}\')',
        "status",
        2.0,
    ),
    ("429, Retry-After: 999999999", "hostile.answer(429, b'{}', {'Retry-After': '999999999'})", "status", 2.0),
    ("429 storm, wait(timeout=2)", "hostile.answer(429, b'{}', {'Retry-After': '999999999'})", "wait", 2.0),
    ("key echoed in body and header", "hostile.echo_authorization(400)", "status", 2.0),
]

CHILD = r"""
import asyncio, json, resource, sys, time
sys.path.insert(0, {root!r})
import videojobs
from tests import hostile
KEY = "sk-vozo-ECHOED-key/42"
mode, what, timeout = {mode!r}, {what!r}, {timeout!r}
with hostile.hostile({scenario}) as url:
    kwargs = dict(api_keys={{"vozo": KEY}}, base_urls={{"vozo": url}}, max_retries=2, timeout=timeout)
    start = time.monotonic()
    try:
        if mode == "sync":
            with videojobs.Client(**kwargs) as c:
                r = c.wait("vozo:t", timeout=timeout) if what == "wait" else c.status("vozo:t")
        else:
            async def run():
                async with videojobs.AsyncClient(**kwargs) as c:
                    return await (c.wait("vozo:t", timeout=timeout) if what == "wait" else c.status("vozo:t"))
            r = asyncio.run(run())
        outcome = f"JobStatus {{r.state.value}}" + (f", problems: {{len(r.problems)}}" if r.problems else "")
        leaked = KEY in repr(r) or KEY in json.dumps(r.to_dict())
    except videojobs.VideoJobsError as exc:
        outcome = f"{{type(exc).__name__}}: {{exc.message[:60]}}"
        leaked = KEY in str(exc) or KEY.encode() in (exc.raw or b"")
    elapsed = time.monotonic() - start
print(json.dumps({{"outcome": outcome, "seconds": elapsed,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "leaked": leaked}}))
"""


def main() -> int:
    print("| attack | client | outcome | time | limit | peak RSS | key shown |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for name, scenario, what, timeout in ATTACKS:
        for mode in ("sync", "async"):
            code = CHILD.format(root=str(ROOT), mode=mode, what=what, timeout=timeout, scenario=scenario)
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                print(f"| {name} | {mode} | CRASHED: {proc.stderr.strip().splitlines()[-1]} | | | | |")
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            limit = timeout * 3 + 1 if what == "status" else timeout + 1  # 3 attempts, or the wait
            worst = max(worst, row["rss_mib"])
            print(
                f"| {name} | {mode} | {row['outcome']} | {row['seconds']:.2f} s | {limit:g} s "
                f"| {row['rss_mib']:.0f} MiB | {'YES' if row['leaked'] else 'no'} |"
            )
    print(f"\nworst peak RSS: {worst:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
