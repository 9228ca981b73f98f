"""Attacks on downloads (surface ``files``), as an attacker would run them: hostile file hosts on
loopback (``tests.hostile_files``), links planted in the folder, full disks, trickles.

Contract (``scripts/attacks.py``): ``ATTACKS`` maps each attack to the seconds it must end
within; ``run(name)`` performs it in this process and returns ``outcome``, ``typed`` (ended in a
result or a ``VideoJobsError``) and ``safe``: no file outside the folder written, no link
followed, nothing clobbered, no spliced file reported as done. ``tests/test_download_attacks.py``
runs the same functions.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import videojobs
from tests import hostile
from tests.hostile_files import FileHost, sha, video
from videojobs import Download, JobStatus, State, VideoJobsError

ROOT = Path(__file__).resolve().parent.parent
SIZE = 64 * 1024
KEY = "sk-attacks-files-0001"
PRECIOUS = b"the victim's own bytes\n"

ATTACKS: dict[str, float] = {
    "symlink-part": 5.0,
    "symlink-meta": 5.0,
    "symlink-final": 5.0,
    "hardlink-part": 5.0,
    "changed-etag": 5.0,
    "wrong-total": 5.0,
    "wrong-start": 5.0,
    "non-ascii-validators": 5.0,
    "name-collision": 5.0,
    "clobber-race": 5.0,
    "trickle": 5.0,
    "trickle-deadline": 5.0,
    "trickle-headers": 5.0,
    "wait-all-trickle": 8.0,
    "full-disk": 8.0,
    "file-size-limit": 8.0,
    "not-a-url": 5.0,
    "unusable-host": 5.0,
    "huge-content-range": 5.0,
    "overwrite-not-a-file": 5.0,
    "cookie-flood": 5.0,
    "query-in-error": 5.0,
    "cookie-gate": 5.0,
}


def _status(url: str, task: str = "t1", vendor: str = "vozo", urls: int = 1) -> JobStatus:
    return JobStatus(vendor=vendor, task_id=task, state=State.SUCCEEDED, video_urls=[url] * urls)


def _client(**kwargs: Any) -> videojobs.Client:
    kwargs.setdefault("max_retries", 1)
    kwargs.setdefault("request_timeout", 2.0)
    return videojobs.Client(api_keys={"vozo": KEY, "duomi": KEY}, **kwargs)


def _attempt(fn: Callable[[], Any]) -> tuple[str, bool, Any]:
    """(outcome, typed, the result or the error)."""
    try:
        got = fn()
    except VideoJobsError as exc:
        return f"{type(exc).__name__}: {exc}"[:200], True, exc
    except Exception as exc:  # an attack's finding: the untyped error is the outcome
        return f"UNTYPED {type(exc).__name__}: {exc}"[:200], False, exc
    if isinstance(got, Download):
        return f"saved {got.path.name} ({got.bytes} bytes, resumed_from={got.resumed_from})", True, got
    return f"result {got!r}"[:200], True, got


def _regular(path: Path, data: bytes) -> bool:
    return path.is_file() and not path.is_symlink() and path.read_bytes() == data


def _plant_meta(folder: Path, name: str, host: FileHost, size: int) -> None:
    """A resume record that matches the host: the library would resume into the planted .part."""
    (folder / f"{name}.part.json").write_text(json.dumps({"etag": host.etag(0), "last_modified": None, "total": size}))


def _link_attack(where: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder, victim = Path(tmp) / "dl", Path(tmp) / "victim.txt"
        folder.mkdir()
        victim.write_bytes(PRECIOUS)
        body = video(1, SIZE)
        host = FileHost([body])
        name = "vozo-t1.mp4"
        if where == "part":
            (folder / f"{name}.part").symlink_to(victim)
            _plant_meta(folder, name, host, SIZE)
        elif where == "meta":
            (folder / f"{name}.part.json").symlink_to(victim)
        elif where == "hardlink":
            os.link(victim, folder / f"{name}.part")
            _plant_meta(folder, name, host, SIZE)
        with hostile.hostile(host) as url, _client() as client:
            outcome, typed, got = _attempt(lambda: client.download(_status(f"{url}/v.mp4"), folder))
        safe = victim.read_bytes() == PRECIOUS and _regular(folder / name, body)
        safe = safe and isinstance(got, Download) and got.sha256 == sha(body) and got.resumed_from == 0
        return {"outcome": outcome, "typed": typed, "safe": safe}


def _symlink_final() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder, victim = Path(tmp) / "dl", Path(tmp) / "victim.txt"
        folder.mkdir()
        victim.write_bytes(PRECIOUS)
        body = video(2, SIZE)
        final = folder / "vozo-t1.mp4"
        final.symlink_to(victim)
        with hostile.hostile(FileHost([body])) as url, _client() as client:
            kept = _attempt(lambda: client.download(_status(f"{url}/v.mp4"), folder))
            safe = kept[1] and final.is_symlink() and victim.read_bytes() == PRECIOUS  # refused, left as is
            replaced = _attempt(lambda: client.download(_status(f"{url}/v.mp4"), folder, overwrite=True))
        safe = safe and victim.read_bytes() == PRECIOUS and _regular(final, body)
        return {"outcome": f"{kept[0]} | overwrite=True: {replaced[0]}", "typed": kept[1] and replaced[1], "safe": safe}


def _resume_attack(host: FileHost, versions: list[bytes]) -> dict[str, Any]:
    """The first GET drops at 60 %; whatever the resume says, a done file is one whole version."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with hostile.hostile(host) as url, _client(max_retries=2) as client:
            outcome, typed, got = _attempt(lambda: client.download(_status(f"{url}/v.mp4"), folder))
        final = folder / "vozo-t1.mp4"
        if isinstance(got, Download):
            whole = final.read_bytes()
            safe = got.sha256 == sha(whole) and any(whole == v for v in versions) and got.resumed_from == 0
        else:
            safe = not final.exists()
        return {"outcome": f"{outcome}; {host.gets} GETs", "typed": typed, "safe": safe}


def _name_collision() -> dict[str, Any]:
    """duomi:x's second video and duomi:x-1's first: one name today; here two files, also across calls."""
    bodies = [video(10 + i, SIZE) for i in range(3)]
    hosts = [FileHost([b]) for b in bodies]
    with tempfile.TemporaryDirectory() as tmp, hostile.hostile(hosts[0]) as u0, hostile.hostile(hosts[1]) as u1:
        with hostile.hostile(hosts[2]) as u2:
            one = JobStatus(
                vendor="duomi", task_id="x", state=State.SUCCEEDED, video_urls=[f"{u0}/a.mp4", f"{u1}/b.mp4"]
            )
            two = _status(f"{u2}/c.mp4", task="x-1", vendor="duomi")

            async def together() -> list[Any]:
                async with videojobs.AsyncClient(api_keys={"duomi": KEY}, max_retries=0) as client:
                    return [r async for r in client.download_all([one, two], Path(tmp) / "a", max_downloads=2)]

            results = asyncio.run(together())
            (Path(tmp) / "b").mkdir()
            with _client(max_retries=0) as client:  # across calls: x-1's first, then x's second
                later = [client.download(two, Path(tmp) / "b"), client.download(one, Path(tmp) / "b", index=1)]
        saved = [d for r in results if isinstance(r, JobStatus) for d in r.downloads] + later
        names = {d.path for d in saved}
        safe = len(names) == 5 and all(sha(d.path.read_bytes()) == d.sha256 for d in saved)
        typed = all(isinstance(r, (JobStatus, VideoJobsError)) for r in results)
        outcome = "; ".join(sorted(f"{p.parent.name}/{p.name}" for p in names))
        return {"outcome": outcome, "typed": typed, "safe": safe}


def _clobber_race() -> dict[str, Any]:
    """Someone takes the final name while the video is being saved: it is theirs, not clobbered."""
    with tempfile.TemporaryDirectory() as tmp:
        final = Path(tmp) / "mine.mp4"
        theirs = b"written by someone else meanwhile\n"

        def meanwhile(progress: videojobs.DownloadProgress) -> None:
            if not final.exists():
                final.write_bytes(theirs)

        with hostile.hostile(FileHost([video(3, SIZE)])) as url, _client() as client:
            outcome, typed, got = _attempt(
                lambda: client.download(_status(f"{url}/v.mp4"), final, on_progress=meanwhile)
            )
        safe = final.read_bytes() == theirs and getattr(got, "errno", None) == errno.EEXIST
        safe = safe and sorted(os.listdir(tmp)) == ["mine.mp4"]
        return {"outcome": outcome, "typed": typed, "safe": safe}


def _trickle(deadline: bool) -> dict[str, Any]:
    host = FileHost([video(4, SIZE)], trickle=0.02)  # 50 bytes/s: under LOW_SPEED_LIMIT
    retries = 50 if deadline else 1
    with tempfile.TemporaryDirectory() as tmp, hostile.hostile(host) as url:
        with _client(request_timeout=0.3, max_retries=retries) as client:
            kwargs = {"timeout": 1.0} if deadline else {}
            outcome, typed, got = _attempt(lambda: client.download(_status(f"{url}/v.mp4"), tmp, **kwargs))
        resumed = host.gets == 2 and "range" in host.requests[1]  # a stall keeps the .part: the next attempt resumes
        expected = ("deadline" in str(got)) if deadline else (resumed and "stalled" in str(got))
        safe = isinstance(got, videojobs.NetworkError) and expected and not (Path(tmp) / "vozo-t1.mp4").exists()
        return {"outcome": f"{outcome}; {host.gets} GETs", "typed": typed, "safe": safe}


def _trickle_headers() -> dict[str, Any]:
    outcomes, ok = [], True
    with tempfile.TemporaryDirectory() as tmp, hostile.hostile(hostile.trickle_headers(0.02)) as url:
        with _client(request_timeout=0.3, max_retries=0) as client:
            outcome, typed, got = _attempt(lambda: client.download(_status(f"{url}/v.mp4"), tmp))
        outcomes.append(f"sync {outcome}")
        ok = ok and isinstance(got, videojobs.NetworkError)

        async def one() -> Download:
            async with videojobs.AsyncClient(api_keys={"vozo": KEY}, request_timeout=0.3, max_retries=0) as client:
                return await client.download(_status(f"{url}/v.mp4"), tmp)

        outcome, typed2, got = _attempt(lambda: asyncio.run(one()))
        outcomes.append(f"async {outcome}")
        ok = ok and isinstance(got, videojobs.NetworkError) and not os.listdir(tmp)
    return {"outcome": " | ".join(outcomes), "typed": typed and typed2, "safe": ok}


def _wait_all_trickle() -> dict[str, Any]:
    """wait_all(timeout=3, dest=...) with a trickling file host ends by its deadline. (At 0.5 s the
    vendor's first answer missed the deadline beside make test's other processes: no download
    was tried; the file at 50 bytes/s would take 20 minutes.)"""
    files = FileHost([video(5, SIZE)], trickle=0.02)
    with tempfile.TemporaryDirectory() as tmp, hostile.hostile(files) as file_url:
        done = json.dumps({"task_id": "t1", "status": "done", "video_url": f"{file_url}/v.mp4"}).encode()
        with hostile.hostile(hostile.answer(body=done)) as vendor_url:

            async def run() -> list[Any]:
                async with videojobs.AsyncClient(
                    api_keys={"vozo": KEY}, base_urls={"vozo": vendor_url}, request_timeout=1.0, max_retries=20
                ) as client:
                    return [r async for r in client.wait_all(["vozo:t1"], timeout=3.0, dest=tmp)]

            results = asyncio.run(run())
        got = results[0] if results else None
        outcome = f"{type(got).__name__}: {got}"[:200]
        safe = isinstance(got, videojobs.NetworkError) and "deadline" in str(got) and files.gets < 10
        safe = safe and not (Path(tmp) / "vozo-t1.mp4").exists()
        return {"outcome": f"{outcome}; {files.gets} GETs", "typed": isinstance(got, VideoJobsError), "safe": safe}


def _full_disk() -> dict[str, Any]:
    """A 2 MiB tmpfs and a 3 MiB video, empty, nearly full and full, each way: always
    DownloadError(ENOSPC), no final file."""
    body = video(6, 3 * 1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        disk = Path(tmp) / "disk"
        disk.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, check=False
        )
        if mounted.returncode != 0:
            return {"outcome": "skipped: cannot mount a tmpfs here (needs root)", "typed": True, "safe": True}
        try:
            outcomes: list[str] = []
            typed = safe = True
            with hostile.hostile(FileHost([body])) as url:
                for round_, room in enumerate((None, 4096, 0)):  # empty; room for the .part.json only; full
                    for mode in ("sync", "async"):
                        folder = disk / f"{mode}{round_}"
                        folder.mkdir()
                        if room is not None:
                            _fill(disk / "filler", room)
                        outcome, ok, got = _attempt(lambda f=folder, m=mode: _download(m, f"{url}/v.mp4", f))
                        outcomes.append(outcome)
                        typed = typed and ok
                        safe = safe and isinstance(got, videojobs.DownloadError) and got.errno == errno.ENOSPC
                        safe = safe and not (folder / "vozo-t1.mp4").exists()
                        for leftover in [*folder.glob("*"), disk / "filler"]:
                            leftover.unlink(missing_ok=True)  # the .part kept for a resume: room for the next round
        finally:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)
        return {"outcome": f"{len(outcomes)} runs: {sorted(set(o.split(':')[0] for o in outcomes))} "
                f"{outcomes[0][:120]}", "typed": typed, "safe": safe}  # fmt: skip


def _fill(path: Path, room: int) -> None:
    """Fill the disk but ``room`` bytes (about: a tmpfs counts in pages)."""
    free = os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize
    with path.open("wb") as filler:
        filler.write(b"\0" * max(0, free - room))


def _download(mode: str, url: str, folder: Path, **kwargs: Any) -> Download:
    if mode == "sync":
        with _client(max_retries=0) as client:
            return client.download(_status(url), folder, **kwargs)

    async def run() -> Download:
        async with videojobs.AsyncClient(api_keys={"vozo": KEY}, max_retries=0) as client:
            return await client.download(_status(url), folder, **kwargs)

    return asyncio.run(run())


FSIZE_CHILD = """
import json, resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))
from tests.attacks_files import _attempt, _download
import videojobs
out = []
for mode in ("sync", "async"):
    outcome, typed, got = _attempt(lambda: _download(mode, sys.argv[1], sys.argv[2] + "/" + mode + "/"))
    out.append([outcome, typed, getattr(got, "errno", None), (Path(sys.argv[2]) / mode / "vozo-t1.mp4").exists()])
print(json.dumps(out))
"""


def _file_size_limit() -> dict[str, Any]:
    """RLIMIT_FSIZE of 1 MiB in a child process and a 2 MiB video: DownloadError(EFBIG), sync and async."""
    with tempfile.TemporaryDirectory() as tmp, hostile.hostile(FileHost([video(7, 2 * 1024 * 1024)])) as url:
        child = subprocess.run(
            [sys.executable, "-c", FSIZE_CHILD, f"{url}/v.mp4", tmp],
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    try:
        runs = json.loads(child.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"outcome": f"the child failed: {child.stderr[-300:]}", "typed": False, "safe": False}
    typed = all(r[1] for r in runs)
    safe = all(r[2] == errno.EFBIG and not r[3] for r in runs)
    return {"outcome": " | ".join(r[0][:90] for r in runs), "typed": typed, "safe": safe}


NOT_URLS = ("", "nisi eu", "ftp://files.example/v.mp4", "/videos/v.mp4", "http://", "https:///v.mp4")


def _not_a_url() -> dict[str, Any]:
    """Strings a vendor calls a video URL: a DownloadError naming the job, sync, async, any transport."""
    from videojobs.sandbox import Sandbox

    sb = Sandbox()
    outcomes: list[str] = []
    typed = safe = True

    async def on_asyncio(status: JobStatus, folder: str) -> Download:
        async with videojobs.AsyncClient(api_keys={"vozo": KEY}) as client:
            return await client.download(status, folder)

    with (
        tempfile.TemporaryDirectory() as tmp,
        _client() as plain,
        videojobs.Client(api_keys=sb.api_keys(), transport=sb.sync_transport()) as custom,
    ):
        for text in NOT_URLS:
            status = _status(text, task="odd1")
            for fn in (plain.download, custom.download, lambda s, f: asyncio.run(on_asyncio(s, f))):
                outcome, ok, got = _attempt(lambda fn=fn, status=status: fn(status, tmp))
                typed = typed and ok
                safe = safe and type(got) is videojobs.DownloadError and "odd1" in str(got)
            outcomes.append(outcome.split(":", 1)[0] + f" for {text!r}")
        safe = safe and not os.listdir(tmp)
    return {"outcome": "; ".join(outcomes), "typed": typed, "safe": safe}


UNUSABLE_HOSTS = ("http://xn--ls8h.la/v.mp4", "http://xn--/v.mp4")
"""Host names that pass as URLs but that IDNA refuses (a real emoji domain, an empty punycode
label): refused as the request is built, before any lookup."""


def _unusable_host() -> dict[str, Any]:
    """Such a host as the video URL, and in a redirect's Location (httpx works out the next request
    as the answer comes); on the sync face also ``a..com`` (the resolver's IDNA codec refuses it,
    before any lookup): typed, sync and async, nothing saved."""
    outcomes: list[str] = []
    typed = safe = True

    def redirect(target: str) -> hostile.Scenario:
        def scenario(request: hostile.Request, conn: socket.socket) -> None:
            conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode())

        return scenario

    async def on_asyncio(status: JobStatus, folder: str) -> Download:
        async with videojobs.AsyncClient(api_keys={"vozo": KEY}, max_retries=0, request_timeout=2.0) as client:
            return await client.download(status, folder)

    with tempfile.TemporaryDirectory() as tmp, _client(max_retries=0) as client:
        for target in (*UNUSABLE_HOSTS, "redirect"):
            with hostile.hostile(redirect(UNUSABLE_HOSTS[0])) as url:
                status = _status(f"{url}/v.mp4" if target == "redirect" else target)
                faces = [client.download, lambda s, f: asyncio.run(on_asyncio(s, f))]
                for fn in faces:
                    outcome, ok, got = _attempt(lambda fn=fn, status=status: fn(status, tmp))
                    typed = typed and ok
                    safe = safe and isinstance(got, (videojobs.DownloadError, videojobs.NetworkError))
                outcomes.append(f"{target}: {outcome.split(':', 1)[0]}")
        outcome, ok, got = _attempt(lambda: client.download(_status("http://a..com/v.mp4"), tmp))
        typed, safe = typed and ok, safe and isinstance(got, videojobs.NetworkError)
        outcomes.append(f"a..com: {outcome.split(':', 1)[0]}")
        safe = safe and not os.listdir(tmp)
    return {"outcome": "; ".join(outcomes), "typed": typed, "safe": safe}


def _overwrite_not_a_file() -> dict[str, Any]:
    """A FIFO has the final name (as ``/dev/null`` has for ``curl -o /dev/null``): ``overwrite=True``
    replaces files, never a device, a FIFO or a socket; sync and async, refused before any GET."""
    outcomes: list[str] = []
    typed = safe = True
    host = FileHost([video(8, SIZE)])
    with tempfile.TemporaryDirectory() as tmp, hostile.hostile(host) as url:
        final = Path(tmp) / "vozo-t1.mp4"
        os.mkfifo(final)
        for mode in ("sync", "async"):
            outcome, ok, got = _attempt(lambda m=mode: _download(m, f"{url}/v.mp4", Path(tmp), overwrite=True))
            outcomes.append(f"{mode} {outcome}")
            typed = typed and ok
            safe = safe and isinstance(got, videojobs.DownloadError) and "not a file" in str(got)
        safe = safe and stat.S_ISFIFO(os.lstat(final).st_mode) and os.listdir(tmp) == [final.name]
    return {"outcome": f"{' | '.join(outcomes)}; {host.gets} GETs", "typed": typed, "safe": safe and host.gets == 0}


def _cookie_flood() -> dict[str, Any]:
    """A file host sets 15 cookies of 3 KB, new names each answer: none is kept or sent back (the
    Cookie header would grow by 45 KB a download), sync and async, one client each for 3 downloads."""
    host = FileHost([video(9, SIZE)], cookies=15)
    outcomes: list[str] = []
    typed = True
    with tempfile.TemporaryDirectory() as tmp, hostile.hostile(host) as url:
        with _client() as client:
            for i in range(3):
                outcome, ok, _ = _attempt(lambda i=i: client.download(_status(f"{url}/v.mp4", f"s{i}"), tmp))
                outcomes.append(outcome)
                typed = typed and ok

        async def three() -> list[Download]:
            async with videojobs.AsyncClient(api_keys={"vozo": KEY}) as client:
                return [await client.download(_status(f"{url}/v.mp4", f"a{i}"), tmp) for i in range(3)]

        outcome, ok, _ = _attempt(lambda: asyncio.run(three()))
        outcomes.append(outcome)
        typed = typed and ok
        saved = len(os.listdir(tmp)) == 6
    sent = [r.get("cookie", "") for r in host.requests]
    safe = saved and host.gets == 6 and not any(sent)
    return {"outcome": f"{host.gets} GETs, Cookie headers sent: {[len(c) for c in sent]}", "typed": typed, "safe": safe}


def _cookie_gate() -> dict[str, Any]:
    """A host that sets a cookie on its redirect and wants it on the next hop (a "confirm
    download" page, a CDN's signed cookie): the chain keeps it, sync and async; the next
    download starts without it (it is asked again, and the host counts the gates)."""
    body = video(12, SIZE)
    gates: list[str] = []

    def host(request: hostile.Request, conn: socket.socket) -> None:
        if "/start" in request.line:
            gates.append(request.headers.get("cookie", ""))
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nLocation: /v.mp4\r\nSet-Cookie: gate=ok; Path=/\r\nContent-Length: 0\r\n\r\n"
            )
        elif request.headers.get("cookie") == "gate=ok":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        else:
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    outcomes: list[str] = []
    typed = safe = True
    with tempfile.TemporaryDirectory() as tmp, hostile.hostile(host) as url:
        for mode in ("sync", "async", "sync"):
            outcome, ok, got = _attempt(lambda m=mode: _download(m, f"{url}/start", Path(tmp), overwrite=True))
            outcomes.append(f"{mode} {outcome}")
            typed = typed and ok
            safe = safe and isinstance(got, Download) and got.sha256 == sha(body)
    safe = safe and gates == ["", "", ""]  # no download brought the last one's cookie
    return {"outcome": " | ".join(outcomes), "typed": typed, "safe": safe}


SIGNATURE = "sig-attacks-files-7f3a"


def _query_in_error() -> dict[str, Any]:
    """The file host's answer is its request line echoed (h11 quotes it in its error): the URL's
    query, a signature that lets anyone fetch the video, is not in the error, sync and async."""

    def echo(request: hostile.Request, conn: socket.socket) -> None:
        conn.sendall(f"{request.line}\r\nContent-Length: 0\r\n\r\n".encode())

    outcomes: list[str] = []
    typed = safe = True
    with tempfile.TemporaryDirectory() as tmp, hostile.hostile(echo) as url:
        for mode in ("sync", "async"):
            outcome, ok, got = _attempt(lambda m=mode: _download(m, f"{url}/v.mp4?sig={SIGNATURE}", Path(tmp)))
            outcomes.append(f"{mode} {outcome}")
            typed = typed and ok
            safe = safe and isinstance(got, videojobs.NetworkError) and SIGNATURE not in str(got)
            safe = safe and "v.mp4?..." in str(got)  # the error still says what the host sent
    return {"outcome": " | ".join(outcomes), "typed": typed, "safe": safe}


def run(name: str) -> dict[str, Any]:
    """Perform one attack in this process (see the module docstring)."""
    v1, v2 = video(20, SIZE), video(21, SIZE)
    scenarios: dict[str, Callable[[], dict[str, Any]]] = {
        "symlink-part": lambda: _link_attack("part"),
        "symlink-meta": lambda: _link_attack("meta"),
        "symlink-final": _symlink_final,
        "hardlink-part": lambda: _link_attack("hardlink"),
        "changed-etag": lambda: _resume_attack(FileHost([v1, v2], drop_at=0.6, ignore_if_range=True), [v1, v2]),
        "wrong-total": lambda: _resume_attack(FileHost([v1], drop_at=0.6, total_delta=1000), [v1]),
        "wrong-start": lambda: _resume_attack(FileHost([v1], drop_at=0.6, start_delta=-100), [v1]),
        # an ETag and a Last-Modified that If-Range cannot carry back: no resume, the whole file again
        "non-ascii-validators": lambda: _resume_attack(FileHost([v1], drop_at=0.6, odd_validators="\u00e9"), [v1]),
        "name-collision": _name_collision,
        "clobber-race": _clobber_race,
        "trickle": lambda: _trickle(deadline=False),
        "trickle-deadline": lambda: _trickle(deadline=True),
        "trickle-headers": _trickle_headers,
        "wait-all-trickle": _wait_all_trickle,
        "full-disk": _full_disk,
        "file-size-limit": _file_size_limit,
        "not-a-url": _not_a_url,
        "unusable-host": _unusable_host,
        # a 206 whose range has 5,000 digits (int() refuses over 4,300): no usable range, the whole file again
        "huge-content-range": lambda: _resume_attack(
            FileHost([v1], drop_at=0.6, content_range=f"bytes {'9' * 5000}-1/2"), [v1]
        ),
        "overwrite-not-a-file": _overwrite_not_a_file,
        "cookie-flood": _cookie_flood,
        "query-in-error": _query_in_error,
        "cookie-gate": _cookie_gate,
    }
    return scenarios[name]()


if __name__ == "__main__":  # python -m tests.attacks_files [name ...]
    for attack in sys.argv[1:] or ATTACKS:
        print(attack, run(attack))
