"""Every attack on every surface, each in a fresh process: outcome, time, peak RSS, safe or not.

    python scripts/attacks.py                 # the whole table (markdown)
    python scripts/attacks.py files cli       # some surfaces only

A surface is a module ``tests/attacks_<surface>.py`` that defines ``ATTACKS`` (attack name ->
the seconds it must end within) and ``run(name)``, which performs the attack in its own
process and returns ``{"outcome": str, "typed": bool, "safe": bool}``: ``typed`` when it
ended in a result or a ``VideoJobsError`` (an exception escaping ``run`` is a crash),
``safe`` when the surface's own property held (no key shown, no escape emitted, no file
clobbered or spliced, other jobs unharmed). The pytest suite runs the same ``run`` functions,
so this table and the tests cannot drift apart. The goal (issue 18): every row typed, safe,
within its limit and under 300 MiB of RSS.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SURFACES = ("status", "deadlines", "files", "cli", "keys", "callbacks")
RSS_LIMIT_MIB = 300

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from tests import attacks_{surface} as surface
start = time.monotonic()
row = surface.run({name!r})
row["seconds"] = time.monotonic() - start
try:  # its own peak (VmHWM): on Linux ru_maxrss keeps the parent's peak across execve
    with open("/proc/self/status") as status:
        row["rss_mib"] = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
except OSError:  # no /proc (macOS: ru_maxrss is this process's own, in bytes)
    row["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024)
print(json.dumps(row))
"""


def available(names: list[str]) -> list[str]:
    return [s for s in names if (ROOT / "tests" / f"attacks_{s}.py").exists()]


def attack(surface: str, name: str, limit: float) -> dict[str, object]:
    """Run one attack in a fresh interpreter; a crash or an overrun is a row too, never an exception."""
    code = CHILD.format(root=str(ROOT), surface=surface, name=name)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=limit * 3 + 30, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"outcome": "HUNG (killed)", "typed": False, "safe": False, "seconds": limit * 3 + 30, "rss_mib": 0.0}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"outcome": f"CRASHED: {last[:80]}", "typed": False, "safe": False, "seconds": 0.0, "rss_mib": 0.0}
    row: dict[str, object] = json.loads(lines[-1])
    return row


def main(argv: list[str]) -> int:
    surfaces = available(argv or list(SURFACES))
    print("| surface | attack | outcome | time | limit | peak RSS | typed | safe |")
    print("|---|---|---|---|---|---|---|---|")
    worst_rss, failures = 0.0, 0
    sys.path.insert(0, str(ROOT))
    for surface in surfaces:
        module = importlib.import_module(f"tests.attacks_{surface}")
        for name, limit in module.ATTACKS.items():
            row = attack(surface, name, limit)
            seconds, rss = float(row["seconds"]), float(row["rss_mib"])  # type: ignore[arg-type]
            ok = bool(row["typed"]) and bool(row["safe"]) and seconds <= limit and rss <= RSS_LIMIT_MIB
            failures += not ok
            worst_rss = max(worst_rss, rss)
            outcome = str(row["outcome"]).replace("|", "\\|").replace("\n", " ")
            print(
                f"| {surface} | {name} | {outcome} | {seconds:.2f} s | {limit:g} s | {rss:.0f} MiB "
                f"| {'yes' if row['typed'] else 'NO'} | {'yes' if row['safe'] else 'NO'} |",
                flush=True,
            )
    print(f"\nworst peak RSS: {worst_rss:.0f} MiB; rows that missed (untyped, unsafe, late or too big): {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
