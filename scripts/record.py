"""Re-record every cassette from nothing: ``make record`` (``make record VENDOR=slug``: that vendor's only).

Serves the sandbox with uvicorn on a free loopback port (a fixed epoch, and the sandbox reset
before each test by ``POST /sandbox/reset``, so each test's timestamps start at the epoch
whichever tests ran before it; a time scale so that waits take seconds, which is also why a
timestamp moves by a second or a few between recordings: the test's real pace, scaled), deletes
tests/cassettes/test_cassettes/ (never tests/cassettes/live/: a real exchange cannot be
re-recorded), and runs tests/test_cassettes.py with ``--record-mode=rewrite``. The
test module rewrites each request to the vendor's real host and scrubs the keys. Nothing
else ever records: ``make test`` replays with ``--record-mode=none --block-network``.

With a vendor's slug (a sixth vendor's first cassettes, or one vendor's again), only the
cassettes of that vendor (``<test>[<slug>].yaml``) are deleted and recorded: the others stay
byte for byte as they are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import serve  # noqa: E402
from videojobs.sandbox import Sandbox  # noqa: E402

EPOCH = 1767225600.0  # 2026-01-01T00:00:00Z: the sandbox vendors' clock at start
SCALE = 20.0


PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"]


def collected() -> list[str]:
    """The node ids of tests/test_cassettes.py, as pytest collects them."""
    listed = subprocess.run(
        [*PYTEST, "--collect-only", "tests/test_cassettes.py"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:  # the module does not even collect: say why, not "no test"
        raise SystemExit(f"record.py: pytest could not list tests/test_cassettes.py:\n{listed.stdout}{listed.stderr}")
    return [line for line in listed.stdout.splitlines() if "::" in line]


def tests_of(slug: str, ids: list[str]) -> list[str]:
    """The cassette tests of one vendor (``test_x[slug]``, each its cassette's name): by node id,
    as ``-k slug`` took every test whose name held the word (another vendor's name, a test's)."""
    return [node for node in ids if node.endswith(f"[{slug}]")]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cassettes = ROOT / "tests" / "cassettes" / "test_cassettes"
    only: list[str] = []
    if args:
        from videojobs import known_vendors

        slug = args[0]
        if len(args) > 1 or slug not in known_vendors():
            print(f"usage: record.py [VENDOR], VENDOR one of {', '.join(known_vendors())}", file=sys.stderr)
            return 2
        only = tests_of(slug, collected())
        if not only:
            print(f"record.py: tests/test_cassettes.py has no test of {slug}", file=sys.stderr)
            return 1
        for old in cassettes.glob(f"*[[]{slug}[]].yaml"):
            old.unlink()
    elif cassettes.exists():
        shutil.rmtree(cassettes)
    with serve(Sandbox(time_scale=SCALE, epoch=EPOCH, retry_after=0.2), files=False) as (_, root):
        env = {**os.environ, "VIDEOJOBS_RECORD_URL": root, "VIDEOJOBS_RECORD_SCALE": str(SCALE)}
        cmd = [*PYTEST, "--record-mode=rewrite", *(only or ["tests/test_cassettes.py"])]
        result = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    count = len(list(cassettes.glob(f"*[[]{args[0]}[]].yaml" if args else "*.yaml")))
    print(f"recorded {count} cassettes into {cassettes.relative_to(ROOT)}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
