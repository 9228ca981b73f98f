"""Benchmarks, side by side with the alternatives: ``make bench`` (``--smoke`` for CI).

Every figure is a ratio against an alternative measured in the same run on this machine,
over real loopback sockets against the sandbox served by uvicorn in its own process,
with warm-up, alternation (A B A B) and medians. Prints one table (goals marked met or
not) and writes bench-results.json.

1. status call per vendor: ``Client.status()`` vs raw ``httpx.Client.get(url).json()``
   (and, for ezmodel, the openai SDK's ``client.videos.retrieve``);
2. import time in fresh interpreters: ``import videojobs`` vs ``import httpx`` / ``import openai``;
3. polling policy by simulation: AdaptivePolicy vs FixedPolicy(5) and FixedPolicy(1);
4. scale: ``wait_all`` over 1,000, 10,000 and 100,000 time-scaled sandbox jobs on one event loop;
5. rate control against a sandbox vendor that throttles (and the figure docs/rate-control.png);
6. client CPU per poll: ``wait_all`` vs raw aiohttp and httpx, against a bare asyncio server, at 1,000 and 10,000 jobs;
7. a vendor down for a minute while 1,000 jobs wait;
8. downloads: throughput vs ``curl -o`` and raw ``httpx.stream()``, peak RSS of a 1 GB download, bytes re-fetched after a drop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

import videojobs  # noqa: E402
import videojobs.sandbox  # noqa: E402
from videojobs import known_vendors as vendors  # noqa: E402

KEY = "sk-sandbox"
RESULTS = ROOT / "bench-results.json"
RUNNING_JOB = "bench-ok-q0-d1000000"
"""A job that runs for 11 days of sandbox time: every vendor answers it as running, in its own words."""


def peak_rss_mib() -> float:
    """This process's own peak RSS: ``VmHWM`` from /proc/self/status. Not ``ru_maxrss``: Linux
    keeps the high-water mark of the image a process replaced across ``execve``, so a child of
    this bench reported the bench's own peak at the time it was started (108 MiB for a 1 GB
    download that peaked at 52 MiB). Elsewhere, ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere


def compile_sources() -> None:
    """Compile the overlay and the generated clients to bytecode, as ``pip install`` does for an
    installed wheel, before any child process imports them. The checkout is an editable install,
    which pip leaves uncompiled, and a machine that sets ``PYTHONDONTWRITEBYTECODE`` (this one
    does) never caches what an import compiles: each fresh interpreter of a run then compiled the
    overlay's modules anew, 70-90 ms of client CPU that the raw clients, whose packages pip had
    compiled, never paid (a 1,000-job CPU run: 1.41x aiohttp without it, 1.33x with it, in one
    session). ``py_compile`` writes the ``__pycache__`` files whatever that variable says."""
    import compileall

    for folder in ("overlay", "generated"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The sandbox under uvicorn in its own process (so it never shares our GIL)."""

    def __init__(self, time_scale: float = 1.0, limits: dict[str, float] | None = None) -> None:
        self.port = _free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        limit_args = [arg for vendor, rate in (limits or {}).items() for arg in ("--limit", f"{vendor}={rate:g}")]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "videojobs.sandbox",
                "--port",
                str(self.port),
                "--time-scale",
                str(time_scale),
                *limit_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{self.root}/sandbox/health", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.05)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _alternate(a: Callable[[], None], b: Callable[[], None], calls: int, rounds: int) -> tuple[float, float]:
    """Median seconds per call of a and b, over rounds run A B A B after a warm-up."""
    for fn in (a, b):
        for _ in range(max(5, calls // 5)):
            fn()
    times: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(rounds):
        for i, fn in enumerate((a, b)):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[i].append((time.perf_counter() - start) / calls)
    return statistics.median(times[0]), statistics.median(times[1])


def _alternate_cpu(
    a: Callable[[], None], b: Callable[[], None], calls: int, rounds: int
) -> tuple[float, float, float, float]:
    """As :func:`_alternate`, with this process's CPU per call too (the server runs in its own
    process): median wall a, wall b, CPU a, CPU b, in seconds per call."""
    for fn in (a, b):
        for _ in range(max(5, calls // 5)):
            fn()
    wall: dict[int, list[float]] = {0: [], 1: []}
    cpu: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(rounds):
        for i, fn in enumerate((a, b)):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn()
            wall[i].append((time.perf_counter() - start) / calls)
            cpu[i].append((time.process_time() - start_cpu) / calls)
    median = statistics.median
    return median(wall[0]), median(wall[1]), median(cpu[0]), median(cpu[1])


# --- 1. per status call ------------------------------------------------------------------------


def bench_status(calls: int, rounds: int) -> list[dict[str, Any]]:
    server = Server()
    rows = []
    try:
        client = videojobs.Client(
            api_keys=dict.fromkeys(vendors(), KEY),
            base_urls=videojobs.sandbox.Sandbox().base_urls(server.root),
        )
        raw = httpx.Client(headers={"Authorization": f"Bearer {KEY}"})
        prefix = videojobs.sandbox.Sandbox().path_prefix
        for vendor in vendors():
            task = RUNNING_JOB
            url = f"{server.root}{prefix(vendor)}{task}"
            handle = client.vendor(vendor)
            ours, theirs, ours_cpu, theirs_cpu = _alternate_cpu(
                lambda h=handle, t=task: h.status(t), lambda u=url: raw.get(u).json(), calls, rounds
            )
            rows.append(
                {
                    "vendor": vendor,
                    "videojobs_us": ours * 1e6,
                    "raw_httpx_us": theirs * 1e6,
                    "ratio": ours / theirs,
                    "videojobs_cpu_us": ours_cpu * 1e6,
                    "raw_httpx_cpu_us": theirs_cpu * 1e6,
                    "cpu_ratio": ours_cpu / theirs_cpu,
                }
            )
        try:
            import openai
        except ImportError:
            rows.append({"vendor": "ezmodel vs openai SDK", "skipped": "pip install -e '.[bench]' for the openai SDK"})
        else:
            sdk = openai.OpenAI(api_key=KEY, base_url=f"{server.root}/v1", max_retries=0)
            handle = client.vendor("ezmodel")
            task = RUNNING_JOB
            ours, theirs = _alternate(lambda: handle.status(task), lambda: sdk.videos.retrieve(task), calls, rounds)
            rows.append(
                {
                    "vendor": "ezmodel vs openai SDK",
                    "videojobs_us": ours * 1e6,
                    "openai_us": theirs * 1e6,
                    "ratio": ours / theirs,
                }
            )
        client.close()
        raw.close()
    finally:
        server.close()
    return rows


# --- 2. import time -------------------------------------------------------------------------------


def minimal_python() -> str:
    """A venv with ``pip install .`` and nothing else (``.venv-min``): what a service that only
    calls status() has. In the dev venv, httpx imports its own CLI (click, rich) because they are
    installed, which would flatter the ratio."""
    venv = ROOT / ".venv-min"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--force-reinstall",
         "--no-deps", str(ROOT)],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)], check=True
    )
    return str(python)


def _import_once(module: str, python: str = sys.executable) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    return float(out.stdout)


def bench_import(repeats: int, python: str = sys.executable) -> dict[str, Any]:
    modules = ["httpx", "videojobs"]
    for module in modules:
        _import_once(module, python)  # warm the file cache
    samples: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(repeats):
        for module in modules:
            samples[module].append(_import_once(module, python))
    medians = {m: statistics.median(v) * 1000 for m, v in samples.items()}
    try:
        import openai  # noqa: F401  (the dev venv's, for comparison)

        medians["openai"] = statistics.median(_import_once("openai") for _ in range(repeats)) * 1000
    except ImportError:
        pass
    return {
        "ms": medians,
        "ratio_vs_httpx": medians["videojobs"] / medians["httpx"],
        "environment": "minimal install (.venv-min)" if python != sys.executable else "dev venv",
    }


# --- 3. the polling policy -----------------------------------------------------------------------


def bench_policy(jobs: int) -> list[dict[str, Any]]:
    from scripts.policy_sim import population, simulate
    from videojobs._policy import AdaptivePolicy, FixedPolicy

    pop = population(jobs)
    rows = []
    for progress in (True, False):
        base = simulate(FixedPolicy(5), pop, progress=progress)
        for name, policy in (
            ("AdaptivePolicy()", AdaptivePolicy()),
            ("FixedPolicy(5)", FixedPolicy(5)),
            ("FixedPolicy(1)", FixedPolicy(1)),
        ):
            f = base if name == "FixedPolicy(5)" else simulate(policy, pop, progress=progress)
            rows.append(
                {
                    "jobs": "with progress" if progress else "no progress",
                    "policy": name,
                    "requests_per_job": f.requests_per_job,
                    "vs_fixed5": f.requests_per_job / base.requests_per_job,
                    "p95_lag_s": f.p95_lag,
                    "p95_lag_share": f.p95_lag_share,
                }
            )
    return rows


# --- 4. scale ------------------------------------------------------------------------------------


def _scale_child(root: str, jobs: int, time_scale: float) -> dict[str, Any]:
    """Runs in a fresh interpreter: wait_all over `jobs` sandbox jobs; prints figures."""
    from videojobs._policy import AdaptivePolicy
    from videojobs.sandbox import Sandbox

    names = vendors()
    refs = [f"{names[i % len(names)]}:scale{i}-q{i % 10}-d{40 + i % 80}" for i in range(jobs)]
    policy = AdaptivePolicy().scaled(time_scale)

    async def run() -> tuple[int, int]:
        async with videojobs.AsyncClient(
            api_keys=dict.fromkeys(names, KEY),
            base_urls=Sandbox().base_urls(root),
        ) as client:
            ok = errors = 0
            async for result in client.wait_all(refs, policy=policy):  # default concurrency and timeout
                if isinstance(result, videojobs.JobStatus):
                    ok += 1
                else:
                    errors += 1
            return ok, errors

    cpu0, wall0 = time.process_time(), time.perf_counter()
    ok, errors = asyncio.run(run())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    polls = httpx.get(f"{root}/sandbox/jobs").json()["jobs"]
    total_polls = sum(j["polls"] for j in polls if j["ref"].split(":", 1)[1].startswith("scale"))
    return {
        "jobs": jobs,
        "ok": ok,
        "errors": errors,
        "wall_s": wall,
        "requests": total_polls,
        "requests_per_s": total_polls / wall,
        "cpu_s_per_1000_polls": cpu / total_polls * 1000,
        "peak_rss_mib": peak_rss_mib(),
    }


def bench_scale(sizes: list[int], time_scale: float) -> list[dict[str, Any]]:
    rows = []
    for jobs in sizes:
        server = Server(time_scale=time_scale)
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--scale-child", server.root, str(jobs), str(time_scale)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        finally:
            server.close()
    return rows


# --- 5. rate control against a vendor that throttles ------------------------------------------------

RATE_CONFIGS = {
    "default (adaptive)": {},
    "fixed 10 req/s": {"adaptive": False, "ceiling": 10.0},
    "no limit": {"adaptive": False},
}


def _rate_child(root: str, vendor: str, jobs: int, window: float, config: str) -> dict[str, Any]:
    """Runs in a fresh interpreter: `jobs` waits on one throttling vendor for `window` seconds."""
    from videojobs.sandbox import Sandbox

    options = RATE_CONFIGS[config]
    refs = [f"{vendor}:rate{i}-q0-d1000000" for i in range(jobs)]  # none ends within the window
    before = httpx.get(f"{root}/sandbox/health").json()

    async def run() -> int:
        async with videojobs.AsyncClient(
            api_keys={vendor: KEY},
            base_urls=Sandbox().base_urls(root),
            adaptive=options.get("adaptive", True),
            rate_limits={vendor: options.get("ceiling")},
        ) as client:
            return len([r async for r in client.wait_all(refs, timeout=window)])  # default concurrency

    series: list[tuple[float, int, int]] = []  # (seconds, served, throttled) every half second
    stop = threading.Event()

    def sample() -> None:
        start = time.monotonic()
        while not stop.wait(0.5):
            health = httpx.get(f"{root}/sandbox/health").json()
            series.append((time.monotonic() - start, health["served"][vendor], health["throttled"][vendor]))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    returned = asyncio.run(run())
    stop.set()
    sampler.join()
    after = httpx.get(f"{root}/sandbox/health").json()
    served = after["served"][vendor] - before["served"].get(vendor, 0)
    throttled = after["throttled"][vendor] - before["throttled"].get(vendor, 0)
    per_second = [  # requests per second in each half-second step
        (round(t, 2), (s1 - s0) / (t - t0), (h1 - h0) / (t - t0))
        for (t0, s0, h0), (t, s1, h1) in zip(
            [(0.0, before["served"].get(vendor, 0), before["throttled"].get(vendor, 0)), *series], series, strict=False
        )
    ]
    return {"served": served, "throttled": throttled, "returned": returned, "jobs": jobs, "series": per_second}


def bench_rate(limits: list[float], jobs: int, window: float, runs: int = 1) -> list[dict[str, Any]]:
    """Each limit with each config once, and the default ``runs`` times (run 0 is the one drawn)."""
    rows = []
    for limit in limits:
        for config, run in [(c, r) for c in RATE_CONFIGS for r in range(runs if c.startswith("default") else 1)]:
            server = Server(time_scale=20.0, limits={"duomi": limit})
            try:
                out = subprocess.run(
                    [sys.executable, __file__, "--rate-child", server.root, "duomi", str(jobs), str(window), config],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                row = json.loads(out.stdout.strip().splitlines()[-1])
            finally:
                server.close()
            row.update(limit=limit, config=config, window=window, run=run)
            row["allowance_used"] = row["served"] / (limit * window)
            row["share_429"] = row["throttled"] / max(1, row["served"] + row["throttled"])
            rows.append(row)
    return rows


# --- 6. client CPU per poll against a server that is never the bottleneck ------------------------

CPU_CLIENTS = (
    "videojobs AsyncClient (default)",
    "videojobs on httpcore (transport=)",
    "raw aiohttp.ClientSession",
    "raw httpx.AsyncClient",
    "videojobs, adaptive=False (labelled)",
)
"""The last row is not a goal: the default without rate control's slow start, whose ramp (from 4
req/s, e-fold every 0.1 s) is most of a 1,000-job run's first half."""
CPU_POLLS_PER_JOB = 5
CPU_CONCURRENCY = 64  # wait_all's default; the raw clients get the same semaphore


def _cpu_child(root: str, jobs: int, client: str) -> dict[str, Any]:
    """Runs in a fresh interpreter: `jobs` jobs polled to their end by one kind of client."""
    refs = [f"cpu{i}" for i in range(jobs)]
    pause = 0.01  # between two polls of one job: the same for every client

    async def ours(**options: Any) -> int:
        async with videojobs.AsyncClient(api_keys={"vozo": KEY}, base_urls={"vozo": root}, **options) as c:
            policy = videojobs.FixedPolicy(pause)
            return len([r async for r in c.wait_all([f"vozo:{r}" for r in refs], policy=policy)])

    async def raw_aiohttp() -> int:
        import aiohttp

        gate = asyncio.Semaphore(CPU_CONCURRENCY)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session:

            async def one(ref: str) -> None:
                while True:
                    async with gate, session.get(f"{root}/v1/video_generation/{ref}") as response:
                        if (await response.json())["status"] == "done":
                            return
                    await asyncio.sleep(pause)

            await asyncio.gather(*(one(r) for r in refs))
        return jobs

    async def raw_httpx() -> int:
        gate = asyncio.Semaphore(CPU_CONCURRENCY)
        limits = httpx.Limits(max_connections=CPU_CONCURRENCY, max_keepalive_connections=CPU_CONCURRENCY)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, limits=limits) as http:

            async def one(ref: str) -> None:
                while True:
                    async with gate:
                        response = await http.get(f"{root}/v1/video_generation/{ref}")
                        if response.json()["status"] == "done":
                            return
                    await asyncio.sleep(pause)

            await asyncio.gather(*(one(r) for r in refs))
        return jobs

    runs: dict[str, Callable[[], Any]] = {
        CPU_CLIENTS[0]: ours,
        CPU_CLIENTS[1]: lambda: ours(transport=httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=100))),
        CPU_CLIENTS[2]: raw_aiohttp,
        CPU_CLIENTS[3]: raw_httpx,
        CPU_CLIENTS[4]: lambda: ours(adaptive=False),
    }
    cpu0, wall0 = time.process_time(), time.perf_counter()
    returned = asyncio.run(runs[client]())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    served = httpx.get(f"{root}/count").json()["served"]
    rss_mib = peak_rss_mib()
    return {"client": client, "jobs": jobs, "returned": returned, "polls": served, "wall_s": wall,
            "cpu_ms_per_poll": cpu / served * 1000, "peak_rss_mib": rss_mib}  # fmt: skip


CPU_LARGE_CLIENTS = (CPU_CLIENTS[0], CPU_CLIENTS[2])  # past 1,000 jobs: ours and the reference only
CPU_GOAL_CLIENTS = (CPU_CLIENTS[0], CPU_CLIENTS[2], CPU_CLIENTS[4])
"""The rows the goal (and its labelled ablation) is read from: they take every round. The httpx
rows, informational and ten times slower, take ``CPU_INFO_ROUNDS``."""
CPU_INFO_ROUNDS = 3


def _cores() -> tuple[set[int], set[int]] | None:
    """The client's core and the server's, two different ones (None: fewer than two, or no
    ``sched_setaffinity``). Left to the scheduler, the two processes of a run shared or swapped
    cores now and then: single rounds' ratios spread 0.75-2.3x on this 2-core machine."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return ({cores[0]}, {cores[-1]}) if len(cores) >= 2 else None


def _pinned(proc: subprocess.Popen[str], cores: set[int] | None) -> subprocess.Popen[str]:
    if cores is not None:
        os.sched_setaffinity(proc.pid, cores)  # at once: the run's timed part starts after its imports
    return proc


def bench_cpu(sizes: list[int], rounds: dict[int, int]) -> list[dict[str, Any]]:
    """At each size, each client ``rounds[size]`` times (the httpx rows at most
    ``CPU_INFO_ROUNDS``), alternating, each run in a fresh interpreter on a fresh server, the
    client on one core and the server on another; a row is a client's median run, with
    ``vs_aiohttp`` the median of the rounds' ratios to raw aiohttp (each round's runs side by
    side, so a busy moment weighs on both)."""
    pinning = _cores()
    client_core, server_core = pinning if pinning is not None else (None, None)
    rows = []
    for jobs in sizes:
        clients = CPU_CLIENTS if jobs <= 1000 else CPU_LARGE_CLIENTS
        samples: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
        raw_by_round: list[float] = []
        for round_ in range(rounds[jobs]):
            for client in clients:
                if client not in CPU_GOAL_CLIENTS and round_ >= CPU_INFO_ROUNDS:
                    continue
                port = _free_port()
                server = _pinned(
                    subprocess.Popen(
                        [sys.executable, str(ROOT / "scripts" / "fastserver.py"), str(port), str(CPU_POLLS_PER_JOB)],
                        text=True,
                    ),
                    server_core,
                )
                try:
                    _wait_for(f"http://127.0.0.1:{port}/count")
                    argv = [sys.executable, __file__, "--cpu-child", f"http://127.0.0.1:{port}", str(jobs), client]
                    child = _pinned(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True), client_core)
                    out, _ = child.communicate()
                    if child.returncode:
                        raise subprocess.CalledProcessError(child.returncode, child.args, out)
                    run = json.loads(out.strip().splitlines()[-1])
                    run["round"] = round_
                    samples[client].append(run)
                finally:
                    server.terminate()
                    server.wait(timeout=10)
            raw_by_round.append(samples[CPU_CLIENTS[2]][-1]["cpu_ms_per_poll"])
        for runs in samples.values():
            row = sorted(runs, key=lambda r: r["cpu_ms_per_poll"])[len(runs) // 2]  # the median run
            each = [r["cpu_ms_per_poll"] / raw_by_round[r["round"]] for r in runs]
            row["vs_aiohttp"] = statistics.median(each)
            row["vs_aiohttp_each"] = each
            row["rounds"] = len(runs)
            row["pinned"] = pinning is not None
            rows.append(row)
    return rows


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answered at {url}") from None
            time.sleep(0.05)


# --- 7. a vendor down for a minute while jobs wait ------------------------------------------------

OUTAGE_START, OUTAGE_SECONDS = 15.0, 60.0


def _outage_child(root: str, jobs: int, outage: bool) -> dict[str, Any]:
    """Runs in a fresh interpreter: `jobs` duomi jobs of 80-90 s under wait_all with defaults; the
    vendor answers 503 from 15 s to 75 s (or, for the baseline, not). Counts the requests in that window."""
    from videojobs.sandbox import Sandbox

    refs = [f"duomi:out{i}-q0-d{80 + i % 10}" for i in range(jobs)]

    async def requests(http: httpx.AsyncClient) -> int:
        health = (await http.get(f"{root}/sandbox/health")).json()
        return int(health["served"]["duomi"]) + int(health.get("refused", {}).get("duomi", 0))

    async def window() -> tuple[int, int]:
        async with httpx.AsyncClient() as http:
            await asyncio.sleep(OUTAGE_START)
            before = await requests(http)
            if outage:
                await http.post(f"{root}/sandbox/outage", json={"vendor": "duomi", "seconds": OUTAGE_SECONDS})
            await asyncio.sleep(OUTAGE_SECONDS)
            return before, await requests(http)

    async def run() -> tuple[list[Any], tuple[int, int]]:
        async with videojobs.AsyncClient(api_keys={"duomi": KEY}, base_urls=Sandbox().base_urls(root)) as client:
            counter = asyncio.create_task(window())
            results = [r async for r in client.wait_all(refs)]  # every default
            return results, await counter

    results, (before, after) = asyncio.run(run())
    succeeded = sum(isinstance(r, videojobs.JobStatus) and r.state is videojobs.State.SUCCEEDED for r in results)
    return {"jobs": jobs, "outage": outage, "returned": len({r.ref for r in results}), "succeeded": succeeded,
            "requests_in_window": after - before}  # fmt: skip


def bench_outage(jobs: int) -> dict[str, Any]:
    """The outage run and its baseline at the same time, each on its own sandbox."""
    servers = [Server(), Server()]
    try:
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--outage-child", s.root, str(jobs), str(int(outage))],
                stdout=subprocess.PIPE,
                text=True,
            )
            for s, outage in zip(servers, (False, True), strict=True)
        ]
        baseline, down = (json.loads(c.communicate(timeout=900)[0].strip().splitlines()[-1]) for c in children)
    finally:
        for s in servers:
            s.close()
    return {
        "baseline": baseline,
        "outage": down,
        "ratio": down["requests_in_window"] / max(1, baseline["requests_in_window"]),
    }


# --- 8. downloads ------------------------------------------------------------------------------

DOWNLOAD_MB = 200


def _download_child(root: str, ref: str, folder: str) -> dict[str, Any]:
    """Runs in a fresh interpreter: one Client.download with defaults; its peak RSS."""
    from videojobs.sandbox import Sandbox

    with videojobs.Client(api_keys=dict.fromkeys(vendors(), KEY), base_urls=Sandbox().base_urls(root)) as client:
        start = time.perf_counter()
        got = client.download(ref, folder, overwrite=True)
        seconds = time.perf_counter() - start
    Path(got.path).unlink()
    rss = peak_rss_mib()
    return {"bytes": got.bytes, "seconds": seconds, "peak_rss_mib": rss, "resumed_from": got.resumed_from}


def _interleaved(runs: dict[str, Callable[[], None]], rounds: int, after: Callable[[], None]) -> dict[str, list[float]]:
    """Seconds of each run in each round, the runs taking turns (A B C D A B C D ...) after one
    warm-up each; ``after`` runs untimed after each (the download files are removed: a file
    left dirty by a run without fsync would make the next run that truncates it wait for its
    write-back, and that run, not the one that left it, would be charged)."""
    for fn in runs.values():
        fn()
        after()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
            after()
    return times


def _sha256_rate(size_mb: int) -> float:
    """MB/s of SHA-256 alone on this CPU (hashlib, one thread, ``size_mb`` MiB from one 1 MiB
    buffer in memory: no disk, no network), the best of three: the ceiling of any download that
    hashes its bytes, on one core."""
    import hashlib

    buffer = os.urandom(1 << 20)
    best = float("inf")
    for _ in range(3):
        hasher, start = hashlib.sha256(), time.perf_counter()
        for _ in range(size_mb):
            hasher.update(buffer)
        best = min(best, time.perf_counter() - start)
    return size_mb * (1 << 20) / 1e6 / best


def bench_download(rounds: int, size_mb: int, big_mb: int) -> dict[str, Any]:
    import shutil
    import tempfile

    # the disk starts clean: the sections before this one leave hundreds of MB dirty in the page
    # cache (Redis's append-only files, the sandbox's), and the kernel writes them back while this
    # one runs: a run that fsyncs (ours) then waits for them too, `curl -o` (no fsync) does not.
    # 600 MB left dirty took the ratio from 1.01x to 0.88x.
    os.sync()
    server = Server()
    folder = tempfile.mkdtemp(prefix="videojobs-bench-")
    try:
        prefix = videojobs.sandbox.Sandbox().path_prefix
        task = f"bench-at_done-sz{size_mb}m"
        # the file's URL, as the vendor hands it out (the sandbox serves files under /files)
        status = httpx.get(f"{server.root}{prefix('vozo')}{task}", headers={"Authorization": f"Bearer {KEY}"}).json()
        url = status["video_url"]
        with videojobs.Client(
            api_keys=dict.fromkeys(vendors(), KEY), base_urls=videojobs.sandbox.Sandbox().base_urls(server.root)
        ) as c:
            job = c.status(f"vozo:{task}")

            def ours() -> None:
                c.download(job, folder, overwrite=True)

            def raw(durable: bool = False) -> None:
                with httpx.stream("GET", url) as response, open(Path(folder) / "raw.mp4", "wb") as out:
                    for chunk in response.iter_raw():
                        out.write(chunk)
                    if durable:
                        out.flush()
                        os.fsync(out.fileno())

            def curl() -> None:  # the reference issue 21 names: a plain `curl -o` of the same file
                subprocess.run(["curl", "-s", "-f", "-o", str(Path(folder) / "curl.mp4"), url], check=True)

            def by_hand() -> None:  # the same guarantees from C tools: hashed as the bytes come, then fsync
                path = Path(folder) / "by-hand.mp4"
                pipeline = f"curl -s -f {shlex.quote(url)} | tee {shlex.quote(str(path))} | openssl dgst -sha256"
                subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], stdout=subprocess.DEVNULL, check=True)
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

            runs = {"ours": ours, "raw": raw, "raw_fsync": lambda: raw(durable=True)}
            if shutil.which("curl"):
                runs["curl"] = curl
                if all(shutil.which(tool) for tool in ("bash", "tee", "openssl")):
                    runs["by_hand"] = by_hand
            times = _interleaved(runs, rounds, after=lambda: [p.unlink() for p in Path(folder).iterdir()])
        megabytes = size_mb * 1024 * 1024 / 1e6
        ours_s, raw_s, durable_s = (statistics.median(times[name]) for name in ("ours", "raw", "raw_fsync"))
        vs_curl: dict[str, float] = {}
        if (
            "curl" in times
        ):  # the goal's ratio: the median of each round's, so that a load drifting between rounds cancels
            vs_curl["curl_mb_s"] = megabytes / statistics.median(times["curl"])
            each = [c / o for c, o in zip(times["curl"], times["ours"], strict=True)]
            vs_curl["curl_ratio"] = statistics.median(each)
            vs_curl["curl_ratio_each"] = each
        if "by_hand" in times:
            vs_curl["by_hand_mb_s"] = megabytes / statistics.median(times["by_hand"])
            vs_curl["by_hand_ratio"] = statistics.median(
                [h / o for h, o in zip(times["by_hand"], times["ours"], strict=True)]
            )
        vs_curl["sha256_mb_s"] = _sha256_rate(size_mb)

        def child(ref: str) -> dict[str, Any]:
            out = subprocess.run([sys.executable, __file__, "--download-child", server.root, ref, folder],
                                 capture_output=True, text=True, check=True)  # fmt: skip
            return dict(json.loads(out.stdout.strip().splitlines()[-1]))

        big = child(f"vozo:big-at_done-sz{big_mb}m")
        dropped_ref = f"vozo:drop-at_done-sz{size_mb // 2}m-fdrop"
        dropped = child(dropped_ref)
        jobs = httpx.get(f"{server.root}/sandbox/jobs").json()["jobs"]
        served = next(j for j in jobs if j["ref"] == dropped_ref)["file_bytes"]
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "size_mb": size_mb,
        "ours_mb_s": megabytes / ours_s,
        "raw_mb_s": megabytes / raw_s,
        "ratio": raw_s / ours_s,
        "raw_fsync_mb_s": megabytes / durable_s,
        **vs_curl,
        "big_mb": big_mb,
        "big_peak_rss_mib": big["peak_rss_mib"],
        "big_mb_s": big["bytes"] / 1e6 / big["seconds"],
        "resume_refetched_bytes": served - dropped["bytes"],
        "resume_resumed_from": dropped["resumed_from"],
    }


def bench_download_fresh(rounds: int, size_mb: int, big_mb: int) -> dict[str, Any]:
    """:func:`bench_download` in a fresh interpreter, as a user's program would download: in the
    full run, the bench's own process had every earlier section's heap and threads behind it
    (0.93x curl there, 1.01x for the same section run alone)."""
    out = subprocess.run(
        [sys.executable, __file__, "--download-section", str(rounds), str(size_mb), str(big_mb)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --- the figure ------------------------------------------------------------------------------------

FIGURE = ROOT / "docs" / "rate-control.png"


def draw_rate_figure(rows: list[dict[str, Any]]) -> str:
    """Requests per second over time against each throttling sandbox vendor, one panel per limit."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no figure: pip install -e '.[bench]' for matplotlib"
    limits = sorted({row["limit"] for row in rows}, reverse=True)
    fig, axes = plt.subplots(1, len(limits), figsize=(6 * len(limits), 3.8), sharey=False, squeeze=False)
    styles = {"default (adaptive)": "C0", "fixed 10 req/s": "C1", "no limit": "C3"}
    for ax, limit in zip(axes[0], limits, strict=True):
        for row in (r for r in rows if r["limit"] == limit and not r.get("run")):
            times = [t for t, _, _ in row["series"]]
            color = styles.get(row["config"], "C7")
            ax.plot(times, [ok for _, ok, _ in row["series"]], color=color, label=f"{row['config']}: answered")
            ax.plot(
                times, [no for _, _, no in row["series"]], color=color, linestyle=":", label=f"{row['config']}: 429"
            )
        ax.axhline(limit, color="k", linewidth=0.8, linestyle="--", label=f"the vendor's allowance ({limit:g}/s)")
        ax.set_title(f"400 waits on a sandbox vendor allowing {limit:g} req/s")
        ax.set_xlabel("seconds")
        ax.set_ylabel("requests per second")
        ax.set_ylim(0, limit * 3)
    axes[0][0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    FIGURE.parent.mkdir(exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    plt.close(fig)
    return f"wrote {FIGURE.relative_to(ROOT)}"


# --- the table ---------------------------------------------------------------------------------


SANE_ROUND_TRIP_MS = 5.0
"""The most one kept-alive status poll of the served sandbox may take over loopback in section 1,
by raw httpx (0.4-1.1 ms on the bench's 2-core machine, by the run). Every ratio of the bench
compares two clients against the same server, so a server that stalls every answer slows both
alike and each ratio still reads met: run I's sandbox answered in 44 ms (Nagle's algorithm held
each body back for the client's delayed ACK, fixed in 9e1be72) and only absolute figures showed it."""
DELAYED_ACK_MS = 40.0
"""Linux's shortest delayed-ACK timer (TCP_DELACK_MIN): the stall a lost TCP_NODELAY costs a poll."""


def _mark(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def report(results: dict[str, Any]) -> str:
    lines = [f"videojobs benchmark, {results['machine']}", ""]
    lines.append(
        "1. status call, median per call over loopback, defaults (goal: <= 1.05x raw httpx, wall;"
        " faster than the openai SDK); client CPU beside it"
    )
    lines.append(f"   {'vendor':<22}{'videojobs':>12}{'baseline':>12}{'ratio':>8}  goal   client CPU")
    for row in results.get("status", []):
        if "skipped" in row:
            lines.append(f"   {row['vendor']:<22}{'skipped: ' + row['skipped']}")
            continue
        baseline = row.get("raw_httpx_us", row.get("openai_us"))
        goal = row["ratio"] < 1.0 if "openai_us" in row else row["ratio"] <= 1.05
        cpu = ""
        if "cpu_ratio" in row:
            cpu = f"   {row['videojobs_cpu_us']:.0f}us vs {row['raw_httpx_cpu_us']:.0f}us {row['cpu_ratio']:.2f}x"
        lines.append(
            f"   {row['vendor']:<22}{row['videojobs_us']:>10.0f}us{baseline:>10.0f}us{row['ratio']:>7.2f}x  {_mark(goal)}"
            + cpu
        )
    raw_round_trips = [row["raw_httpx_us"] for row in results.get("status", []) if "raw_httpx_us" in row]
    if raw_round_trips:  # the ratios cannot see a server that stalls both sides alike: this can
        worst = max(raw_round_trips) / 1000
        lines.append(
            f"   served sandbox, one kept-alive poll by raw httpx: {worst:.2f} ms at worst of the vendors"
            f" (sanity: <= {SANE_ROUND_TRIP_MS:g} ms; a {DELAYED_ACK_MS:g} ms one is a delayed-ACK stall)"
            f"  {_mark(worst <= SANE_ROUND_TRIP_MS)}"
        )
    imp = results.get("import") or {"ms": {}, "ratio_vs_httpx": float("nan")}
    lines.append("")
    lines.append(
        f"2. import time, fresh interpreters, {imp.get('environment', 'dev venv')}, median"
        " (goal: import videojobs <= 1.2x import httpx; openai from the dev venv)"
    )
    lines.append(
        "   "
        + "   ".join(f"{m} {ms:.0f} ms" for m, ms in imp["ms"].items())
        + f"   ratio {imp['ratio_vs_httpx']:.2f}x  {_mark(imp['ratio_vs_httpx'] <= 1.2)}"
    )
    lines.append("")
    lines.append(
        "3. polling policy, simulated jobs (goal: progress <= 0.5x requests of FixedPolicy(5) with p95 lag <= 4 s;"
    )
    lines.append("   no progress <= 0.75x with p95 lag <= 25% of the job)")
    lines.append(f"   {'jobs':<15}{'policy':<18}{'req/job':>8}{'vs 5s':>7}{'p95 lag':>9}{'share':>7}  goal")
    for row in results.get("policy", []):
        goal = ""
        if row["policy"] == "AdaptivePolicy()":
            ok = (
                row["vs_fixed5"] <= 0.5 and row["p95_lag_s"] <= 4
                if row["jobs"] == "with progress"
                else row["vs_fixed5"] <= 0.75 and row["p95_lag_share"] <= 0.25
            )
            goal = _mark(ok)
        lines.append(
            f"   {row['jobs']:<15}{row['policy']:<18}{row['requests_per_job']:>8.1f}{row['vs_fixed5']:>6.2f}x"
            f"{row['p95_lag_s']:>8.1f}s{row['p95_lag_share']:>7.0%}  {goal}"
        )
    lines.append("")
    lines.append(
        "4. scale: wait_all on one event loop, defaults (goal: CPU per poll at 10k <= 1.1x of 1k, RSS at 10k"
        " <= 150 MiB; 100k reported)"
    )
    lines.append(
        f"   {'jobs':>7}{'ok':>7}{'wall':>8}{'requests':>10}{'req/s':>8}{'CPU s/1k polls':>16}{'peak RSS':>10}"
    )
    for row in results.get("scale", []):
        lines.append(
            f"   {row['jobs']:>7}{row['ok']:>7}{row['wall_s']:>7.1f}s{row['requests']:>10}{row['requests_per_s']:>8.0f}"
            f"{row['cpu_s_per_1000_polls']:>16.3f}{row['peak_rss_mib']:>8.0f}MiB"
        )
    scale = {row["jobs"]: row for row in results.get("scale", [])}
    if len(scale) >= 2:
        small = scale[min(scale)]
        big = scale.get(10000, scale[sorted(scale)[1]])  # the goal's size (the smoke run's second)
        cpu_growth = big["cpu_s_per_1000_polls"] / small["cpu_s_per_1000_polls"]
        lines.append(
            f"   CPU per poll {small['jobs']}->{big['jobs']}: {cpu_growth:.2f}x ({_mark(cpu_growth <= 1.1)} within 1.1x); "
            f"peak RSS at {big['jobs']}: {big['peak_rss_mib']:.0f} MiB ({_mark(big['peak_rss_mib'] <= 150)})"
        )
    if 100000 in scale:
        top = scale[100000]
        lines.append(
            f"   100,000 jobs: {top['peak_rss_mib']:.0f} MiB peak RSS ({top['peak_rss_mib'] * 1024 / 100000:.1f} KiB a job),"
            f" {top['cpu_s_per_1000_polls']:.3f} ms CPU per poll, {top['errors']} errors (reported, no goal)"
        )
    if results.get("rate"):
        lines.append("")
        lines.append(
            "5. rate control: jobs waiting on a sandbox vendor that throttles, for a fixed window "
            "(goal, with defaults: >= 95% of the allowance used, <= 2% answered 429, every job returned)"
        )
        lines.append(
            f"   {'limit':>7}  {'client':<20}{'jobs':>6}{'served':>8}{'429s':>7}{'allowance':>11}{'429 share':>11}  goal"
        )
        for row in results["rate"]:
            default = row["config"].startswith("default")
            ok = row["allowance_used"] >= 0.95 and row["share_429"] <= 0.02 and row["returned"] == row["jobs"]
            lines.append(
                f"   {row['limit']:>5g}/s  {row['config']:<20}{row['jobs']:>6}{row['served']:>8}{row['throttled']:>7}"
                f"{row['allowance_used']:>10.0%}{row['share_429']:>11.1%}  {_mark(ok) if default else ''}"
            )
    if results.get("cpu"):
        sizes = sorted({row["jobs"] for row in results["cpu"]})
        lines.append("")
        lines.append(
            f"6. client CPU per poll, {' and '.join(f'{n:,}' for n in sizes)} jobs x {CPU_POLLS_PER_JOB} polls at "
            f"concurrency {CPU_CONCURRENCY}, against a bare asyncio server"
            + (", client and server each pinned to a core of its own" if results["cpu"][0].get("pinned") else "")
            + " (goal: default <= 1.2x raw aiohttp at each size, the median of interleaved rounds' ratios; "
            "flat: 10k within 1.1x of 1k)"
        )
        for jobs in sizes:
            rows = {row["client"]: row for row in results["cpu"] if row["jobs"] == jobs}
            raw = rows[CPU_CLIENTS[2]]["cpu_ms_per_poll"]
            for client in CPU_CLIENTS:
                if client not in rows:
                    continue
                row = rows[client]
                ratio = row.get("vs_aiohttp", row["cpu_ms_per_poll"] / raw)
                goal = _mark(ratio <= 1.2) if client == CPU_CLIENTS[0] else ""
                each = row.get("vs_aiohttp_each", [])
                spread = (
                    f"  ({len(each)} rounds: {min(each):.2f}-{max(each):.2f}x)"
                    if client != CPU_CLIENTS[2] and len(each) > 1
                    else ""
                )
                lines.append(
                    f"   {jobs:>7,} {client:<36}{row['cpu_ms_per_poll']:>7.3f} ms{ratio:>7.2f}x"
                    f"{row['polls'] / row['wall_s']:>8.0f} req/s{row.get('peak_rss_mib', 0):>6.0f} MiB  {goal}{spread}"
                )
        ours = {row["jobs"]: row["cpu_ms_per_poll"] for row in results["cpu"] if row["client"] == CPU_CLIENTS[0]}
        if len(ours) >= 2:
            growth = ours[sizes[-1]] / ours[sizes[0]]
            lines.append(f"   CPU per poll {sizes[0]:,}->{sizes[-1]:,}: {growth:.2f}x  {_mark(growth <= 1.1)}")
    if results.get("outage"):
        out = results["outage"]
        down, base = out["outage"], out["baseline"]
        ok = out["ratio"] <= 1.2 and down["succeeded"] == down["jobs"]
        lines.append("")
        lines.append(
            f"7. a vendor down (503) for {OUTAGE_SECONDS:.0f} s while {down['jobs']} jobs wait, every default "
            "(goal: requests during the outage <= 1.2x the policy's alone; every job ends after it)"
        )
        lines.append(
            f"   requests in the window: {down['requests_in_window']} with the outage, {base['requests_in_window']}"
            f" without; ratio {out['ratio']:.2f}x; succeeded {down['succeeded']}/{down['jobs']}  {_mark(ok)}"
        )
    if results.get("download"):
        dl = results["download"]
        lines.append("")
        lines.append(
            f"8. downloads over loopback, defaults (goals: {dl['size_mb']} MB at >= 0.95x `curl -o` on the same file; "
            f"{dl['big_mb']} MB under 100 MiB RSS; a drop at 60% re-fetches <= 1 MiB)"
        )
        if "curl_ratio" in dl:
            each = dl.get("curl_ratio_each")  # absent from a results file of before
            spread = f"; the median of {len(each)} rounds' ratios, {min(each):.2f}-{max(each):.2f}x" if each else ""
            lines.append(
                f"   {dl['size_mb']} MB: videojobs (fsync, SHA-256, checks) {dl['curl_ratio']:.2f}x `curl -o` "
                f"({dl['curl_mb_s']:.0f} MB/s, no fsync{spread})  {_mark(dl['curl_ratio'] >= 0.95)}"
            )
        else:
            lines.append(f"   {dl['size_mb']} MB: `curl -o` row skipped: no curl on this machine  NOT MEASURED")
        lines.append(
            f"   {dl['size_mb']} MB: videojobs {dl['ours_mb_s']:.0f} MB/s, raw httpx.stream() to a file "
            f"{dl['raw_mb_s']:.0f} MB/s (64 KiB reads, no fsync, no checksum): {dl['ratio']:.2f}x"
        )
        if "by_hand_mb_s" in dl:
            lines.append(
                f"   (labelled, not the goal: the same guarantees by hand, `curl URL | tee FILE | openssl dgst "
                f"-sha256` then fsync: {dl['by_hand_mb_s']:.0f} MB/s, so videojobs runs at {dl['by_hand_ratio']:.2f}x)"
            )
        if "sha256_mb_s" in dl and "curl_mb_s" in dl:
            lines.append(
                f"   (SHA-256 alone on this CPU, one core, in memory: {dl['sha256_mb_s']:.0f} MB/s, "
                f"{dl['sha256_mb_s'] / dl['curl_mb_s']:.2f}x `curl -o`'s rate, on a machine of {os.cpu_count()} cores "
                "whose file host, a process of its own, takes one)"
            )
        if "raw_fsync_mb_s" in dl:
            lines.append(
                f"   (labelled, not the goal: raw httpx.stream() with one fsync at the end, the same durability: "
                f"{dl['raw_fsync_mb_s']:.0f} MB/s, so videojobs runs at {dl['ours_mb_s'] / dl['raw_fsync_mb_s']:.2f}x)"
            )
        lines.append(
            f"   {dl['big_mb']} MB: peak RSS {dl['big_peak_rss_mib']:.0f} MiB at {dl['big_mb_s']:.0f} MB/s  "
            f"{_mark(dl['big_peak_rss_mib'] < 100)}"
        )
        lines.append(
            f"   drop at 60%: resumed from byte {dl['resume_resumed_from']}, re-fetched "
            f"{dl['resume_refetched_bytes']} bytes  {_mark(dl['resume_refetched_bytes'] <= 1024 * 1024)}"
        )
    if results.get("celery"):
        from scripts.bench_celery import report as celery_report

        lines.append("")
        lines.extend(celery_report(results["celery"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few iterations, for CI; no figure is checked")
    parser.add_argument("--update-readme", action="store_true", help="put the tables into README.md")
    parser.add_argument("--scale-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--rate-child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--rate-runs", type=int, default=3, help="runs of the default in section 5 (default 3)")
    parser.add_argument("--cpu-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--outage-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--download-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--download-section", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--only", help="comma-separated sections: status,import,policy,scale,rate,cpu,outage,download,celery"
    )
    args = parser.parse_args(argv)
    if args.cpu_child:
        root, jobs, client = args.cpu_child
        print(json.dumps(_cpu_child(root, int(jobs), client)))
        return 0
    if args.download_child:
        root, ref, folder = args.download_child
        print(json.dumps(_download_child(root, ref, folder)))
        return 0
    if args.download_section:
        rounds, size_mb, big_mb = map(int, args.download_section)
        print(json.dumps(bench_download(rounds, size_mb, big_mb)))
        return 0
    if args.outage_child:
        root, jobs, outage = args.outage_child
        print(json.dumps(_outage_child(root, int(jobs), outage == "1")))
        return 0
    if args.rate_child:
        root, vendor, jobs, window, config = args.rate_child
        print(json.dumps(_rate_child(root, vendor, int(jobs), float(window), config)))
        return 0
    if args.scale_child:
        root, jobs, scale = args.scale_child
        print(json.dumps(_scale_child(root, int(jobs), float(scale))))
        return 0
    smoke = args.smoke
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
        "smoke": smoke,
    }
    sections: dict[str, Callable[[], Any]] = {
        "status": lambda: bench_status(calls=20 if smoke else 300, rounds=2 if smoke else 7),
        "import": lambda: bench_import(
            repeats=2 if smoke else 15, python=sys.executable if smoke else minimal_python()
        ),
        "policy": lambda: bench_policy(jobs=100 if smoke else 3000),
        "scale": lambda: bench_scale([50, 100] if smoke else [1000, 10000, 100000], time_scale=20.0),
        "rate": lambda: bench_rate(
            [20.0, 5.0], jobs=40 if smoke else 400, window=3.0 if smoke else 20.0, runs=1 if smoke else args.rate_runs
        ),
        "cpu": lambda: bench_cpu([50] if smoke else [1000, 10000], rounds={50: 1} if smoke else {1000: 15, 10000: 7}),
        "outage": lambda: None if smoke else bench_outage(jobs=1000),  # a real minute: not in CI's smoke run
        "celery": lambda: __import__("scripts.bench_celery", fromlist=["run"]).run(
            Server,
            KEY,
            jobs=20 if smoke else 200,
            window=3.0 if smoke else 15.0,
            processes=[1, 2],
            rounds=1 if smoke else 5,
            raise_scale=0.1 if smoke else 1.0,
        ),
        "download": lambda: bench_download_fresh(
            rounds=1 if smoke else 15, size_mb=8 if smoke else DOWNLOAD_MB, big_mb=16 if smoke else 1024
        ),
    }
    wanted = args.only.split(",") if args.only else list(sections)
    compile_sources()
    if args.only and not smoke and RESULTS.exists():  # a partial run keeps the other sections' last figures
        results = {**json.loads(RESULTS.read_text(encoding="utf-8")), **results}
    for name in wanted:
        results[name] = sections[name]()
    table = report(results)
    print(table)
    if "rate" in wanted and not smoke:
        print(draw_rate_figure(results["rate"]))
    if not smoke:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    if args.update_readme and not smoke:
        update_readme(table, results)
        print("updated the tables in README.md")
    return 0


def update_readme(table: str, results: dict[str, Any]) -> None:
    """Replace what stands between the README's table markers with this run's tables."""
    import re

    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    policy = [
        "| jobs | policy | requests per job | vs FixedPolicy(5) | p95 detection lag | p95 lag / job length |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["policy"]:
        policy.append(
            f"| {row['jobs']} | `{row['policy']}` | {row['requests_per_job']:.1f} | {row['vs_fixed5']:.2f}x "
            f"| {row['p95_lag_s']:.1f} s | {row['p95_lag_share']:.0%} |"
        )
    blocks = {"policy-table": "\n".join(policy), "bench-table": "```\n" + table + "\n```"}
    for name, block in blocks.items():
        pattern = re.compile(rf"<!-- {name} -->.*?(?=\n## |\Z)|<!-- {name} -->", re.S)
        text = pattern.sub(lambda _m, n=name, b=block: f"<!-- {n} -->\n{b}\n", text, count=1)
    readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
