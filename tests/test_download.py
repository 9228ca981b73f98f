"""Downloads over real sockets: the sandbox's file host under uvicorn, and hostile servers.

Every fault ends in a complete file whose SHA-256 is the sandbox's own, or in a typed error
with nothing under the final name. Sync and async run the same cases.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import videojobs
from tests import hostile
from tests.servers import serve
from videojobs import Download, DownloadError, JobStatus, LinkExpiredError, NetworkError, State
from videojobs._download import file_name
from videojobs.sandbox import Sandbox
from videojobs.sandbox._files import sha256_of

SCALE = 1000.0  # a 2-second job ends in 2 ms
MODES = pytest.mark.parametrize("mode", ["sync", "async"])


class SteppedClock:
    """The sandbox's clock: real monotonic time, plus whatever a test has stepped it forward by
    (signed links expire by it, so a test can age one without waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def step(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[Sandbox, str]]:
    with serve(time_scale=SCALE, clock=SteppedClock()) as served:
        yield served


def _ended(sb: Sandbox, ref: str) -> JobStatus:
    with videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(sb_root(sb))) as client:
        return client.wait(ref, timeout=60, policy=videojobs.FixedPolicy(0.01))


def sb_root(sb: Sandbox) -> str:
    return sb.file_root.removesuffix("/files")


def download(mode: str, sb: Sandbox, job: JobStatus | str, dest: Path, **kwargs: Any) -> Download:
    """One download by a real client of the sandbox served on its port (key: the sandbox's)."""
    urls = sb.base_urls(sb_root(sb))
    if mode == "sync":
        with videojobs.Client(api_keys=sb.api_keys(), base_urls=urls) as client:
            return client.download(job, dest, **kwargs)

    async def run() -> Download:
        async with videojobs.AsyncClient(api_keys=sb.api_keys(), base_urls=urls) as client:
            return await client.download(job, dest, **kwargs)

    return asyncio.run(run())


def many(mode: str, sb: Sandbox, method: str, *args: Any, **kwargs: Any) -> list[Any]:
    """``wait_all``/``download_all`` by a real client of the served sandbox, on either face."""
    urls = sb.base_urls(sb_root(sb))
    if mode == "sync":
        with videojobs.Client(api_keys=sb.api_keys(), base_urls=urls) as client:
            return list(getattr(client, method)(*args, **kwargs))

    async def run() -> list[Any]:
        async with videojobs.AsyncClient(api_keys=sb.api_keys(), base_urls=urls) as client:
            return [r async for r in getattr(client, method)(*args, **kwargs)]

    return asyncio.run(run())


def _only_final(folder: Path, name: str | None) -> None:
    """Nothing but the final file (or nothing at all) is left, and never a stray .part."""
    left = sorted(p.name for p in folder.iterdir())
    assert left == ([name] if name else []), left


# --- complete files -------------------------------------------------------------------------------


@MODES
def test_a_download_is_whole_and_checksummed(mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    ref = f"ezmodel:ok{mode}-q0-d2-sz3m"
    got = download(mode, sb, _ended(sb, ref), tmp_path)
    task = ref.partition(":")[2]
    assert got.path == tmp_path / f"ezmodel-{task}.mp4"
    assert got.bytes == 3 * 1024 * 1024 == got.path.stat().st_size
    assert got.sha256 == sha256_of(task, got.bytes)
    assert got.content_type == "video/mp4"
    assert got.url_host == "127.0.0.1"
    _only_final(tmp_path, got.path.name)


@MODES
def test_a_dropped_connection_resumes_without_refetching(
    mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    sb, _ = sandbox
    ref = f"vozo:drop{mode}-q0-d2-sz4m-fdrop"
    got = download(mode, sb, _ended(sb, ref), tmp_path)
    task = ref.partition(":")[2]
    assert got.sha256 == sha256_of(task, 4 * 1024 * 1024)
    assert got.resumed_from == int(4 * 1024 * 1024 * 0.6)  # it kept every byte it had
    job = sb.job(ref)
    assert job is not None
    assert job.file_gets == 2
    assert job.file_bytes - got.bytes <= 1024 * 1024  # the bound; here 0
    _only_final(tmp_path, got.path.name)


@MODES
def test_without_range_support_a_drop_starts_over(mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    ref = f"vozo:norange{mode}-q0-d2-sz2m-fdrop50-fnorange"
    got = download(mode, sb, _ended(sb, ref), tmp_path)
    assert got.sha256 == sha256_of(ref.partition(":")[2], 2 * 1024 * 1024)
    assert got.resumed_from == 0
    _only_final(tmp_path, got.path.name)


@MODES
def test_a_slow_stream_completes(mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    ref = f"jimmyai:slow{mode}-q0-d2-sz160k-fslow"
    got = download(mode, sb, _ended(sb, ref), tmp_path)
    assert got.sha256 == sha256_of(ref.partition(":")[2], 160 * 1024)


def test_a_part_left_by_a_crash_is_resumed_by_the_next_call(sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    ref = "duomi:crash-q0-d2-sz3m"
    status = _ended(sb, ref)

    def crash(progress: videojobs.DownloadProgress) -> None:
        if progress.done > 1024 * 1024:
            raise KeyboardInterrupt  # Ctrl-C in the middle

    with pytest.raises(KeyboardInterrupt):
        download("sync", sb, status, tmp_path, on_progress=crash)
    final = tmp_path / "duomi-crash-q0-d2-sz3m.mp4"
    assert not final.exists()
    kept = (tmp_path / (final.name + ".part")).stat().st_size
    assert kept > 1024 * 1024
    got = download("sync", sb, status, tmp_path)
    assert got.resumed_from == kept
    assert got.sha256 == sha256_of("crash-q0-d2-sz3m", 3 * 1024 * 1024)
    _only_final(tmp_path, final.name)


@MODES
@pytest.mark.parametrize("error", [ValueError, asyncio.CancelledError])
def test_a_raising_on_progress_ends_the_download_typed_and_keeps_the_part(
    mode: str, error: type[BaseException], sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    """Whatever the caller's on_progress raises (a stray CancelledError too: read from a future
    cancelled elsewhere, it is a BaseException) is a CallbackError; the .part stays to resume."""
    sb, _ = sandbox
    ref = f"vozo:progress{mode}{error.__name__}-q0-d2-sz2m"

    def on_progress(progress: videojobs.DownloadProgress) -> None:
        if progress.done > 512 * 1024:
            raise error("the caller's bug")

    with pytest.raises(videojobs.CallbackError, match=f"on_progress raised {error.__name__}") as info:
        download(mode, sb, _ended(sb, ref), tmp_path, on_progress=on_progress)
    assert isinstance(info.value.__cause__, error)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".part"]


@MODES
def test_an_expired_signed_link_is_refreshed_by_one_status_call(
    mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    sb, _ = sandbox
    ref = f"vozo:ttl{mode}-q0-d2-ttl30"  # links signed for 30 s (real time, as signed URLs go)
    stale = _ended(sb, ref)
    assert isinstance(sb.clock, SteppedClock)
    sb.clock.step(60)  # a minute later: `stale`'s link has expired; vozo says no expires_at, the host says 403
    job = sb.job(ref)
    assert job is not None
    polls = job.polls
    got = download(mode, sb, stale, tmp_path)
    assert got.sha256 == sha256_of(ref.partition(":")[2], 256 * 1024)
    assert job.polls == polls + 1  # exactly one fresh status call


# --- typed errors, nothing under the final name ----------------------------------------------------


@MODES
def test_an_html_page_with_200_is_refused(mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    with pytest.raises(DownloadError, match="text/html, not a video") as caught:
        download(mode, sb, _ended(sb, f"vozo:html{mode}-q0-d2-fhtml"), tmp_path)
    assert caught.value.status_code == 200
    _only_final(tmp_path, None)


@MODES
def test_a_short_body_is_a_typed_error_and_no_file(mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    with pytest.raises(NetworkError):
        download(mode, sb, _ended(sb, f"vozo:badlen{mode}-q0-d2-fbadlen"), tmp_path)
    assert not any(p.suffix == ".mp4" for p in tmp_path.iterdir())  # only a .part, for a later resume


@MODES
def test_a_link_that_stays_expired_is_link_expired(mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    with pytest.raises(LinkExpiredError, match="answered 403: expired or gone") as caught:
        download(mode, sb, _ended(sb, f"vozo:gone{mode}-q0-d2-fexpired"), tmp_path)
    assert caught.value.status_code == 403
    _only_final(tmp_path, None)


def test_an_expires_at_in_the_past_costs_one_status_call_then_says_when(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    sb = Sandbox()
    past = datetime.now(UTC) - timedelta(hours=1)
    # ttl0: every answer the sandbox gives carries a link that has already expired
    stale = JobStatus(vendor="ezmodel", task_id="old-at_completed-ttl0", state=State.SUCCEEDED,
                      video_urls=["https://videos.sandbox.invalid/ezmodel/old.mp4?exp=1"], expires_at=past)  # fmt: skip
    with (
        videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(), transport=sb.sync_transport()) as client,
        pytest.raises(LinkExpiredError, match=r"the video link expired at .* UTC") as caught,
    ):
        client.download(stale, tmp_path)
    assert caught.value.expires_at is not None
    job = sb.job(stale.ref)
    assert job is not None
    assert job.polls == 1
    assert job.file_gets == 0  # an expired link is not even tried
    _only_final(tmp_path, None)


def test_colossyan_says_it_has_only_an_id(sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    with pytest.raises(DownloadError, match=r"returns a video id \(video-[0-9a-f]+\), not a URL"):
        download("sync", sb, _ended(sb, "colossyan:idonly-q0-d2"), tmp_path)


@pytest.mark.parametrize("ref", ["vozo:notyet-at_processing", "vozo:bad-at_failed", "jimmyai:n-at_completed-novideo"])
def test_a_job_without_a_video_url_says_why(ref: str, sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    with pytest.raises(DownloadError, match=r"has not succeeded|without a video"):
        download("sync", sb, ref, tmp_path)


def test_max_bytes_refuses_before_reading(sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    with pytest.raises(DownloadError, match="over max_bytes=1000"):
        download("sync", sb, _ended(sb, "vozo:big-q0-d2-sz2m"), tmp_path, max_bytes=1000)
    _only_final(tmp_path, None)


def test_an_existing_file_is_not_replaced_unless_asked(sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    status = _ended(sb, "vozo:twice-q0-d2")
    first = download("sync", sb, status, tmp_path)
    with pytest.raises(DownloadError, match="exists"):
        download("sync", sb, status, tmp_path)
    again = download("sync", sb, status, tmp_path, overwrite=True)
    assert again.sha256 == first.sha256


# --- the key, redirects, names ------------------------------------------------------------------------


def _status_at(url: str) -> JobStatus:
    return JobStatus(vendor="vozo", task_id="t1", state=State.SUCCEEDED, video_urls=[url])


def test_no_key_travels_to_the_file_host(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []
    body = b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000

    def host(request: hostile.Request, conn: Any) -> None:
        seen.append(request.headers)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    with hostile.hostile(host) as url, videojobs.Client(api_keys={"vozo": "sk-SECRET-1"}) as client:
        got = client.download(_status_at(f"{url}/v.mp4"), tmp_path)
    assert got.bytes == len(body)
    assert "authorization" not in seen[0]
    assert all("sk-SECRET-1" not in value for value in seen[0].values())


@pytest.mark.parametrize(
    ("location", "words"),
    [("https://elsewhere.invalid/v.mp4", None), ("ftp://files.invalid/v.mp4", "ftp: URL, refused"),
     ("http://user:pw@127.0.0.1:9/v.mp4", "credentials, refused"),
     # no host at all: httpx raised its InvalidURL (no httpx.HTTPError) working out the next request
     ("data:video/mp4;base64,AAAA", "redirected to a URL that is not usable"),
     ("mailto:x@example.com", "redirected to a URL that is not usable"),
     ("javascript:alert(1)", "redirected to a URL that is not usable")],
)  # fmt: skip
def test_redirects_are_checked(location: str, words: str | None, tmp_path: Path) -> None:
    def host(request: hostile.Request, conn: Any) -> None:
        hostile.answer(302, b"", {"Location": location})(request, conn)

    with hostile.hostile(host) as url, videojobs.Client(api_keys={"vozo": "k"}, max_retries=0) as client:
        if words is None:  # followed (and then unreachable: a typed network error)
            with pytest.raises(NetworkError):
                client.download(_status_at(f"{url}/v.mp4"), tmp_path)
        else:
            with pytest.raises(DownloadError, match=words):
                client.download(_status_at(f"{url}/v.mp4"), tmp_path)
    _only_final(tmp_path, None)


def test_a_redirect_to_a_data_url_is_a_download_error_on_the_async_face_too(tmp_path: Path) -> None:
    def host(request: hostile.Request, conn: Any) -> None:
        hostile.answer(302, b"", {"Location": "data:video/mp4;base64,AAAA"})(request, conn)

    async def run(url: str) -> None:
        async with videojobs.AsyncClient(api_keys={"vozo": "k"}, max_retries=0) as client:
            await client.download(_status_at(f"{url}/v.mp4"), tmp_path)

    with hostile.hostile(host) as url, pytest.raises(DownloadError, match="redirected to a URL that is not usable"):
        asyncio.run(run(url))
    _only_final(tmp_path, None)


def test_a_redirect_too_long_to_be_a_url_says_so() -> None:
    from videojobs._download import next_hop

    with pytest.raises(DownloadError, match=r"redirected to a location that is 20,020 characters long, more than"):
        next_hop("https://cdn.example/v.mp4", "https://cdn.example/" + "a" * 20_000, "vozo")


def test_https_never_downgrades_to_http() -> None:
    from videojobs._download import next_hop

    with pytest.raises(DownloadError, match="http: URL, refused"):
        next_hop("https://cdn.example/v.mp4", "http://cdn.example/v.mp4", "vozo")
    assert next_hop("https://cdn.example/a/v.mp4", "/b/v.mp4", "vozo") == "https://cdn.example/b/v.mp4"


@pytest.mark.parametrize(
    "task", ["../../etc/passwd", "a/b\\c", "CON", ".hidden", "x" * 300, "vidéo 1", "a:b*c?d", "\x00nul"]
)
def test_file_names_cannot_be_steered(task: str) -> None:
    status = JobStatus(vendor="vozo", task_id=task, state=State.SUCCEEDED, video_urls=["https://h/x/../../v.exe"])
    name = file_name(status, 0, status.video_urls[0])
    assert "/" not in name
    assert "\\" not in name
    assert ":" not in name
    assert "\x00" not in name
    assert name.startswith("vozo-")
    assert name.endswith(".mp4")  # the URL's suffix is not a video's: not used
    assert len(name) <= 140
    other = JobStatus(vendor="vozo", task_id=task + "_", state=State.SUCCEEDED, video_urls=["https://h/v.mp4"])
    assert file_name(other, 0, "https://h/v.mp4") != name or task.endswith("_")


def test_dest_may_be_a_file_path(sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    target = tmp_path / "sub" / "mine.mp4"
    got = download("sync", sb, _ended(sb, "vozo:named-q0-d2"), target)
    assert got.path == target
    assert target.stat().st_size == got.bytes


@MODES
def test_a_download_error_carries_the_jobs_last_status(mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    """download's error keeps the job's status (``last_status``), as download_all's and the CLI's
    do: from a JobStatus given, and from one it asked for itself."""
    sb, _ = sandbox
    done = _ended(sb, "colossyan:carry-q0-d2")  # a video id only: nothing to fetch
    for job in (done, "colossyan:carry-q0-d2"):
        with pytest.raises(DownloadError, match="returns a video id") as caught:
            download(mode, sb, job, tmp_path)
        assert caught.value.last_status is not None
        assert caught.value.last_status.state is State.SUCCEEDED
        assert caught.value.last_status.video_id == done.video_id


# --- many jobs ------------------------------------------------------------------------------------


@MODES
def test_wait_all_downloads_as_jobs_finish(mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    refs = ["duomi:all1-q0-d3", "ezmodel:all2-q0-d5-sz1m", "vozo:all3-fail-d3", "colossyan:all4-q0-d2",
            "jimmyai:all5-q0-d4-fhtml"]  # fmt: skip
    got = many(mode, sb, "wait_all", refs, policy=videojobs.FixedPolicy(0.01), dest=tmp_path / "out")
    results = {r.ref: r for r in got}
    assert len(got) == len(refs)  # each job once
    assert sorted(results) == sorted(refs)
    assert [d.path.name for d in results["duomi:all1-q0-d3"].downloads] == ["duomi-all1-q0-d3.mp4",
                                                                             "duomi-all1-q0-d3-1.mp4"]  # fmt: skip
    assert results["ezmodel:all2-q0-d5-sz1m"].downloads[0].sha256 == sha256_of("all2-q0-d5-sz1m", 1024 * 1024)
    assert results["vozo:all3-fail-d3"].state is State.FAILED  # nothing to save: returned as is
    # an id only: the DownloadError download gives for it (wait --dest's too), the job's status in it
    id_only = results["colossyan:all4-q0-d2"]
    assert isinstance(id_only, DownloadError)
    assert "returns a video id" in str(id_only)
    assert id_only.last_status is not None
    assert id_only.last_status.state is State.SUCCEEDED
    assert id_only.last_status.video_id
    html = results["jimmyai:all5-q0-d4-fhtml"]
    assert isinstance(html, DownloadError)
    assert html.last_status is not None
    assert html.last_status.video_urls  # what --json shows of the job: it succeeded, with this URL
    assert sorted(os.listdir(tmp_path / "out")) == ["duomi-all1-q0-d3-1.mp4", "duomi-all1-q0-d3.mp4",
                                                    "ezmodel-all2-q0-d5-sz1m.mp4"]  # fmt: skip


@MODES
@pytest.mark.parametrize(("there", "overwrite"), [("file", False), ("folder", True)])
def test_a_jobs_other_videos_are_saved_past_a_name_that_exists(
    mode: str, there: str, overwrite: bool, sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    """A job of two videos whose second broke off, saved again: the first's name exists (left as
    it was) and the second was never resumed, every later call stopping at the first file. A
    folder at the name with ``overwrite=True`` (which replaces files only) is the same case."""
    sb, _ = sandbox
    job = _ended(sb, f"duomi:two-{mode}-{there}-q0-d2")
    out = tmp_path / "out"
    out.mkdir()
    first = out / f"duomi-two-{mode}-{there}-q0-d2.mp4"
    if there == "file":
        first.write_bytes(b"saved by an earlier call")
    else:
        first.mkdir()
    (result,) = many(mode, sb, "download_all", [job], out, overwrite=overwrite)
    assert isinstance(result, DownloadError)
    assert result.errno == (errno.EEXIST if there == "file" else errno.EISDIR)
    assert first.is_dir() if there == "folder" else first.read_bytes() == b"saved by an earlier call"  # kept
    assert result.last_status is not None
    (second,) = result.last_status.downloads
    assert second.path == out / f"duomi-two-{mode}-{there}-q0-d2-1.mp4"
    assert second.bytes > 0
    assert second.sha256 == hashlib.sha256(second.path.read_bytes()).hexdigest()  # complete, and checked


@MODES
def test_a_download_error_tells_which_of_the_jobs_videos_were_saved(mode: str, tmp_path: Path) -> None:
    from tests.hostile_files import FileHost, sha, video

    body = video(7, 200_000)
    with (
        hostile.hostile(FileHost([body])) as good,
        hostile.hostile(hostile.answer(200, b"<!DOCTYPE html><html><body>sign in</body></html>")) as bad,
    ):
        job = JobStatus(
            vendor="duomi", task_id="t", state=State.SUCCEEDED, video_urls=[f"{good}/v.mp4", f"{bad}/v.mp4"]
        )
        if mode == "sync":
            with videojobs.Client(api_keys={"duomi": "k" * 20}, environ={}) as client:
                (result,) = list(client.download_all([job], tmp_path))
        else:

            async def run() -> list[Any]:
                async with videojobs.AsyncClient(api_keys={"duomi": "k" * 20}, environ={}) as client:
                    return [r async for r in client.download_all([job], tmp_path)]

            (result,) = asyncio.run(run())
    assert isinstance(result, DownloadError)
    assert result.last_status is not None
    (saved,) = result.last_status.downloads
    assert saved.sha256 == sha(body)
    assert videojobs._status.outcome_dict("duomi:t", result)["downloads"][0]["sha256"] == sha(body)


@MODES
def test_download_all_yields_every_job_once(mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    refs = [f"vozo:many{i}-{mode}-q0-d2" for i in range(12)] + [f"colossyan:many-id-{mode}-q0-d2"]
    statuses = [_ended(sb, ref) for ref in refs]
    results = many(mode, sb, "download_all", statuses, tmp_path, max_downloads=3)
    assert len(results) == len(refs)
    assert sorted(r.ref for r in results) == sorted(refs)
    errors = [r for r in results if isinstance(r, DownloadError)]
    assert [e.ref for e in errors] == [f"colossyan:many-id-{mode}-q0-d2"]
    assert len(list(tmp_path.glob("*.mp4"))) == 12


def test_a_folder_that_cannot_be_made_is_a_download_error(sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    sb, _ = sandbox
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DownloadError, match="could not make the folder"):
        download("sync", sb, _ended(sb, "vozo:nofolder-q0-d2"), blocker / "sub" / "v.mp4")


# --- the command line ----------------------------------------------------------------------------------


def test_the_cli_downloads_and_prints_path_size_and_checksum(tmp_path: Path) -> None:
    import io

    from videojobs._cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["download", "--sandbox", "vozo:c1-at_done", "colossyan:c2-at_finished", "-o", str(tmp_path)], out, err)
    assert code == 1  # colossyan has only an id
    lines = sorted(out.getvalue().splitlines())
    assert lines[0].startswith("colossyan:c2-at_finished  error  DownloadError: ")
    ref, word, path, size, digest = lines[1].split("  ")
    assert (ref, word) == ("vozo:c1-at_done", "saved")
    assert Path(path) == tmp_path / "vozo-c1-at_done.mp4"
    assert size == f"{256 * 1024} bytes"
    assert digest == "sha256:" + sha256_of("c1-at_done", 256 * 1024)
    assert "saving vozo-c1-at_done.mp4" in err.getvalue()


def test_the_cli_waits_and_downloads(tmp_path: Path) -> None:
    import io

    from videojobs._cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["wait", "--sandbox", "--time-scale", "200", "--dest", str(tmp_path), "ezmodel:w1-q1-d20-sz1m"]
    assert main(argv, out, err) == 0
    assert out.getvalue().rstrip().endswith(f"saved {tmp_path / 'ezmodel-w1-q1-d20-sz1m.mp4'}")
    assert (tmp_path / "ezmodel-w1-q1-d20-sz1m.mp4").stat().st_size == 1024 * 1024


# --- resumes prove the same file; deadlines; the disk --------------------------------------------------


def _first() -> Any:
    from videojobs._download import FirstAnswer

    return FirstAnswer(etag='"abc"', last_modified=None, total=1000)


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"etag": '"abc"', "content-range": "bytes 600-999/1000", "content-length": "400"}, None),
        ({"etag": '"new"', "content-range": "bytes 600-999/1000"}, "ETag is not the first answer's"),
        ({"content-range": "bytes 600-999/1000"}, "ETag is not the first answer's"),
        ({"etag": '"abc"', "content-range": "bytes 600-1599/1600"}, "now 1600 bytes, not 1000"),
        ({"etag": '"abc"', "content-range": "bytes 500-999/1000"}, "starts at byte 500, not at 600"),
        ({"etag": '"abc"', "content-range": "bytes 600-899/1000"}, "ends at byte 899"),
        ({"etag": '"abc"', "content-range": "bytes 600-999/*"}, "no usable Content-Range"),
        ({"etag": '"abc"', "content-range": "bytes 600-999/1000", "content-length": "7"}, "Content-Length 7"),
    ],
)  # fmt: skip
def test_a_resume_is_kept_only_when_it_proves_the_same_file(headers: dict[str, str], why: str | None) -> None:
    from videojobs._download import same_file

    found = same_file(_first(), 600, headers)
    assert found is None if why is None else why in (found or "")


LM = "Tue, 01 Dec 2026 10:00:00 GMT"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"etag": 'W/"a"', "last-modified": LM, "content-range": "bytes 600-999/1000"}, None),
        ({"etag": '"a"', "last-modified": LM, "content-range": "bytes 600-999/1000"}, None),  # weak comparison
        # the same date, but the host's own tag says another version: a splice if taken
        ({"etag": 'W/"b"', "last-modified": LM, "content-range": "bytes 600-999/1000"}, "ETag is not the first"),
        ({"last-modified": LM, "content-range": "bytes 600-999/1000"}, "ETag is not the first answer's"),
    ],
)  # fmt: skip
def test_a_weak_etag_is_not_sent_back_but_a_resume_must_keep_it(headers: dict[str, str], why: str | None) -> None:
    """A weak ETag cannot go in If-Range (the Last-Modified date is asked by), but a 206 whose ETag
    differs from it (or has none) is another version: the .part starts over."""
    from videojobs._download import FirstAnswer, same_file

    first = FirstAnswer.of({"etag": 'W/"a"', "last-modified": LM}, 1000)
    assert first is not None
    assert (first.validator, first.weak_etag) == (LM, 'W/"a"')
    assert FirstAnswer.from_json(first.to_json()) == first  # kept across calls in the .part.json
    assert FirstAnswer.from_json(b'{"etag": null, "last_modified": "%s", "total": 1000}' % LM.encode()) == (
        FirstAnswer(None, LM, 1000)  # a record an earlier version kept: read as it was
    )
    found = same_file(first, 600, headers)
    assert found is None if why is None else why in (found or "")


def test_a_stall_is_under_the_speed_limit_for_a_whole_timeout_and_the_deadline_ends_all() -> None:
    from videojobs._download import LOW_SPEED_LIMIT, Pace

    pace = Pace(window=2.0, deadline=100.0, vendor="vozo")
    pace.start(now=10.0, done=0)
    pace.check(11.9, 10)  # within the first window: nothing to judge yet
    pace.check(12.0, 2 * LOW_SPEED_LIMIT)  # kept up: a new window starts
    with pytest.raises(NetworkError, match="stalled"):
        pace.check(14.5, 2 * LOW_SPEED_LIMIT + 100)
    assert pace.head_timeout(99.5) == 0.5  # the head never waits past the deadline
    with pytest.raises(NetworkError, match="deadline"):
        pace.check(100.0, 10**9)


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan"), "5", True, 10**400, 1e308])
def test_a_download_timeout_must_be_a_positive_number(timeout: Any, tmp_path: Path) -> None:
    with videojobs.Client(api_keys={"vozo": "sk-test-download-1"}) as client, pytest.raises(videojobs.UsageError):
        client.download(_status_at("https://h.invalid/v.mp4"), tmp_path, timeout=timeout)


@MODES
def test_a_video_with_no_room_on_the_disk_is_refused_before_a_byte_is_written(mode: str, tmp_path: Path) -> None:
    """A Content-Length past the folder's free space (a host's lie of a terabyte) filled the disk
    and kept the .part for a resume that could never end: now refused at the head, nothing kept."""
    st = os.statvfs(tmp_path)
    announced = st.f_bavail * st.f_frsize * 2 + 10**9

    def host(request: hostile.Request, conn: Any) -> None:
        head = f'HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nETag: "v1"\r\nContent-Length: {announced}\r\n\r\n'
        conn.sendall(head.encode() + b"\x00\x00\x00\x18ftypmp42" * 1000)

    with hostile.hostile(host) as url, pytest.raises(DownloadError, match="more do not fit in the") as info:
        _from_host(mode, url, tmp_path)
    assert info.value.errno == errno.ENOSPC
    assert f"{announced:,} bytes" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@MODES
def test_a_part_that_nothing_could_resume_is_not_left_behind(mode: str, tmp_path: Path) -> None:
    """A host that sends no validator (no ETag, no Last-Modified) and drops the body: the .part could
    never be resumed (no record to ask for the rest by), so it goes with the failure."""
    from tests.hostile_files import video

    body = video(3, 200_000)

    def host(request: hostile.Request, conn: Any) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: %d\r\n\r\n" % len(body))
        conn.sendall(body[:50_000])
        conn.close()

    with hostile.hostile(host) as url, pytest.raises(NetworkError):
        _from_host(mode, url, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_file_name_too_long_for_the_disk_is_a_download_error_with_its_errno(tmp_path: Path) -> None:
    import errno

    with videojobs.Client(api_keys={"vozo": "sk-test-download-1"}) as client, pytest.raises(DownloadError) as caught:
        client.download(_status_at("https://h.invalid/v.mp4"), tmp_path / ("x" * 300 + ".mp4"))
    assert caught.value.errno == errno.ENAMETOOLONG
    assert list(tmp_path.iterdir()) == []


def test_an_existing_name_is_refused_with_its_errno(sandbox: tuple[Sandbox, str], tmp_path: Path) -> None:
    import errno

    sb, _ = sandbox
    status = _ended(sb, "vozo:errno-q0-d2")
    download("sync", sb, status, tmp_path)
    with pytest.raises(DownloadError) as caught:
        download("sync", sb, status, tmp_path)
    assert caught.value.errno == errno.EEXIST


@MODES
@pytest.mark.parametrize(
    "etag", ['"old"', '"v1-\u00e9"']
)  # the second (kept by an earlier version) cannot go in If-Range
def test_a_stale_part_of_another_version_starts_over(
    mode: str, etag: str, sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    import json

    sb, _ = sandbox
    status = _ended(sb, f"vozo:stale{mode}-q0-d2-sz1m")
    name = file_name(status, 0, status.video_urls[0])
    (tmp_path / f"{name}.part").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"old" * 1000)
    (tmp_path / f"{name}.part.json").write_text(json.dumps({"etag": etag, "last_modified": None, "total": 10**6}))
    got = download(mode, sb, status, tmp_path)  # If-Range "old" does not match: the host sends it whole
    assert got.resumed_from == 0
    assert got.sha256 == sha256_of(f"stale{mode}-q0-d2-sz1m", 1024 * 1024)
    _only_final(tmp_path, name)


@MODES
@pytest.mark.parametrize("drop_at", [None, 0.6], ids=["whole", "dropped"])
def test_a_body_of_many_reads_is_saved_to_its_length_exactly(mode: str, drop_at: float | None, tmp_path: Path) -> None:
    """A body of several megabytes (the sync face reads past its first chunk straight off the
    connection: ``_deadline.rest_of_body``), followed on the kept-open connection by bytes that are
    not the file's: the file is the Content-Length's bytes, no more, none lost across a drop."""
    from tests.hostile_files import FileHost, video

    body = video(11, 5 * 1024 * 1024 + 123)
    host = FileHost([body], drop_at=drop_at, tail=b"HTTP/1.1 200 OK\r\n" + b"not the file" * 1000)
    with hostile.hostile(host) as url:
        got = _from_host(mode, url, tmp_path)
    assert got.bytes == len(body)
    assert got.sha256 == hashlib.sha256(body).hexdigest()
    assert (tmp_path / "vozo-t1.mp4").read_bytes() == body
    if drop_at is None:
        assert (got.resumed_from, host.gets) == (0, 1)
    else:  # what came before the reset (the host sent 60 %): asked from there, kept whole
        assert got.resumed_from <= int(len(body) * drop_at)
        assert host.gets == 2
        assert host.requests[1].get("range") == (f"bytes={got.resumed_from}-" if got.resumed_from else None)


@MODES
def test_a_whole_part_left_by_a_failed_naming_asks_for_its_last_byte_only(mode: str, tmp_path: Path) -> None:
    """A ``.part`` holding the whole video, with its record (the disk filled as the final name
    was made, or its fsync failed): it was thrown away and the video fetched again, from byte 0.
    Its last byte is asked for again with If-Range (the host's word that it is the same file),
    and the checksum still covers the whole file."""
    import json

    from tests.hostile_files import FileHost, video

    body = video(7, 300_000)
    host = FileHost([body])
    name = "vozo-t1.mp4"
    (tmp_path / f"{name}.part").write_bytes(body)
    (tmp_path / f"{name}.part.json").write_text(
        json.dumps({"etag": host.etag(0), "last_modified": None, "total": len(body)})
    )
    with hostile.hostile(host) as url:
        got = _from_host(mode, url, tmp_path)
    assert [(r.get("range"), r.get("if-range")) for r in host.requests] == [(f"bytes={len(body) - 1}-", host.etag(0))]
    assert got.resumed_from == len(body) - 1
    assert got.sha256 == hashlib.sha256(body).hexdigest()
    assert (tmp_path / name).read_bytes() == body
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@MODES
def test_a_folder_made_at_the_name_during_the_download_is_not_offered_to_overwrite(
    mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    """A folder appears at the video's name while it is saved: the final link() failed with EEXIST
    and the error said to pass overwrite=True, which then refuses a folder."""
    from videojobs._cli_output import cli_hint

    sb, _ = sandbox
    status = _ended(sb, f"vozo:race-{mode}-q0-d2")
    final = tmp_path / "v.mp4"

    def on_progress(progress: Any) -> None:
        if not final.exists():
            final.mkdir()  # the name taken by a folder mid-transfer

    with pytest.raises(DownloadError) as caught:
        download(mode, sb, status, final, on_progress=on_progress)
    error = caught.value
    assert (error.errno, error.name_taken) == (errno.EISDIR, True)
    assert not any("overwrite=True to replace" in note for note in getattr(error, "__notes__", []))
    assert cli_hint(error, "download") == "it is kept: choose another --dest folder"
    assert final.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]  # the .part went with the refusal


def test_a_storage_refusal_with_the_errno_of_a_taken_name_is_not_a_taken_name() -> None:
    """ENOTSUP is also what a file system without hard links says to link() (s3fs): such an error
    stopped nothing (the job's other videos were fetched whole, each to fail the same way) and the
    CLI said "it is kept". What decides is ``name_taken``, set where the name was found taken."""
    from videojobs._cli_output import cli_hint
    from videojobs._download import SavingAll

    job = JobStatus(
        vendor="duomi", task_id="t", state=State.SUCCEEDED, video_urls=["https://h/1.mp4", "https://h/2.mp4"]
    )
    storage = DownloadError("could not name the video: Operation not supported", vendor="duomi", errno=errno.ENOTSUP)
    with pytest.raises(DownloadError) as caught:
        SavingAll(job).failed(storage)
    assert caught.value is storage
    assert cli_hint(storage, "download") == ""
    taken = DownloadError("x.mp4 is a device, a FIFO or a socket, not a file", errno=errno.ENOTSUP, name_taken=True)
    saving = SavingAll(job)
    saving.failed(taken)  # the other videos go on
    assert cli_hint(taken, "download") == "it is kept: choose another --dest folder"
    assert taken.to_dict()["name_taken"] is True


@MODES
def test_a_part_whose_bytes_are_in_doubt_is_not_kept_for_a_resume(mode: str, tmp_path: Path) -> None:
    """The ``.part`` is cut behind the transfer's back as its last bytes are written (read back for
    the checksum, it is short; if the checksum had read it all, its length no longer matches: a
    failed write-back says EIO the same way): the error was typed and the ``.part`` kept with its
    record, for the next call to resume, or now to finish from its last byte, trusting bytes
    that are not the host's. Nothing is kept."""
    from tests.hostile_files import FileHost, video

    body = video(8, 2 * 1024 * 1024 + 1000)
    part = tmp_path / "vozo-t1.mp4.part"
    truncated: list[int] = []

    def on_progress(progress: Any) -> None:
        if progress.done == len(body):  # its last bytes written: cut it, whatever the checksum has read
            os.truncate(part, 1024)
            truncated.append(progress.done)

    with hostile.hostile(FileHost([body])) as url, pytest.raises(DownloadError) as caught:
        _from_host(mode, url, tmp_path, on_progress=on_progress)
    assert truncated
    assert caught.value.errno == errno.EIO
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no .part, no record: the next call starts over


def test_threads_that_failed_say_so_when_stopped(tmp_path: Path) -> None:
    """A read-back that failed (the .part shorter than what was written to it) was swallowed when the
    transfer paused (a dropped connection, a callback that raised): the .part was kept, and the
    retry in the same call resumed it. ``stop`` says so, and ``pause`` then keeps nothing."""
    from videojobs._files import HASH_READ, _Behind

    part = tmp_path / "v.mp4.part"
    part.write_bytes(b"\x00" * 16)
    fd = os.open(part, os.O_RDWR)
    try:
        behind = _Behind(fd, 0)
        os.truncate(part, 0)  # before the checksum thread reads: the bytes said written are not there
        behind.wrote(HASH_READ + 1)  # wakes it: it reads back from byte 0 and finds the file short
        behind._thread.join(10)  # its error noted, it has ended
        assert behind.stop() is True
        healthy = _Behind(fd, 0)
        assert healthy.stop() is False
    finally:
        os.close(fd)


def _from_host(mode: str, url: str, dest: Path, **kwargs: Any) -> Download:
    """Job ``vozo:t1``'s video, at ``url``/v.mp4 (a ``FileHost``), saved into ``dest`` on either face."""
    job = JobStatus(vendor="vozo", task_id="t1", state=State.SUCCEEDED, video_urls=[f"{url}/v.mp4"])
    if mode == "sync":
        with videojobs.Client(api_keys={"vozo": "sk-test-file-host"}) as client:
            return client.download(job, dest, **kwargs)

    async def run() -> Download:
        async with videojobs.AsyncClient(api_keys={"vozo": "sk-test-file-host"}) as client:
            return await client.download(job, dest, **kwargs)

    return asyncio.run(run())


# --- what the body's beginning says ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "whole", "page"),
    [
        (b"<!DOCTYPE html>", False, True),
        (b"\n  <html>", False, True),
        (b'{"error": "expired"}', False, True),
        (b"\x00\x00\x00\x18ftypmp42", False, False),
        (b"", False, None),  # nothing yet
        (b"  \n", False, None),  # whitespace so far
        (b"<", False, None),  # the start of a page, or not
        (b"<!doc", False, None),
        (b"<!doc", True, False),  # five bytes in all: no page, and no video either (kept as sent)
        (b"  \n", True, True),  # a body of whitespace is no video
        (b" " * 4096, False, True),  # whitespace that long first is no video
        # a byte-order mark before the page (a Windows server's error page; a UTF-16 one)
        (b"\xef\xbb\xbf<!DOCTYPE html>", False, True),
        (b'\xef\xbb\xbf{"error": 1}', False, True),
        ("\ufeff<html><body>denied".encode("utf-16-le"), False, True),
        ("\ufeff<?xml version='1.0'?>".encode("utf-16-be"), False, True),
        (b"\xef\xbb\xbf", False, None),  # the mark alone: not yet
        (b"\xef", False, None),  # its first byte alone (sent apart): not yet
        (b"\xef\xbb", False, None),
        (b"\xff", False, None),
        (b"\xff\xfe\x00\x00\x00\x18ftyp", False, False),  # those bytes, then no text: judged as they are
        # a page that begins with a comment, or without its <html>
        (b"<!-- a padding to disable MSIE's friendly error page --><html>", False, True),
        (b"<body><h1>502 Bad Gateway</h1>", False, True),
        (b"<head><title>403</title>", False, True),
    ],
)
def test_a_body_is_judged_on_enough_of_its_beginning(head: bytes, whole: bool, page: bool | None) -> None:
    from videojobs._download import looks_like_a_page

    assert looks_like_a_page(head, whole=whole) is page


@pytest.mark.parametrize("pieces", [[b"<", b"!DOCTYPE html><html>sign in</html>"], [b"\n", b"  ", b'{"e": 1}']])
def test_a_page_split_across_chunks_is_refused(pieces: list[bytes], tmp_path: Path) -> None:
    """The host sends the page's first byte alone: the judgement waits for enough of it."""
    from videojobs._files import Transfer

    transfer = Transfer(tmp_path / "v.mp4", "vozo:t1", overwrite=False, max_bytes=None, on_progress=None)
    try:
        transfer.begin(200, {"content-type": "application/octet-stream"}, "cdn.example")

        def send() -> None:
            for piece in pieces:
                transfer.write(piece)
            transfer.finish()

        with pytest.raises(DownloadError, match="sent a page or a document, not a video"):
            send()
    finally:
        transfer.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("length", "error"), [("0", DownloadError), (None, NetworkError)])
def test_an_empty_body_is_no_video(length: str | None, error: type[Exception], tmp_path: Path) -> None:
    """Content-Length: 0 is an empty file, refused; a body that ends before its first byte is a
    broken transfer (tried again). Neither leaves a file."""
    from videojobs._files import Transfer

    transfer = Transfer(tmp_path / "v.mp4", "vozo:t1", overwrite=False, max_bytes=None, on_progress=None)
    headers = {"content-type": "video/mp4"} | ({"content-length": length} if length is not None else {})
    try:
        transfer.begin(200, headers, "cdn.example")
        with pytest.raises(error):
            transfer.finish()
    finally:
        transfer.close()
    assert list(tmp_path.iterdir()) == []


# --- one name, one transfer ----------------------------------------------------------------------------------


def test_a_second_transfer_to_the_same_name_is_refused_while_the_first_holds_it(tmp_path: Path) -> None:
    import errno

    from videojobs._files import Transfer

    def transfer() -> Transfer:
        return Transfer(tmp_path / "v.mp4", "vozo:t1", overwrite=True, max_bytes=None, on_progress=None)

    first = transfer()
    with pytest.raises(DownloadError, match="is being saved by another download now") as caught:
        transfer()
    assert caught.value.errno == errno.EBUSY
    first.close()
    assert list(tmp_path.iterdir()) == []  # the lock's name goes with it
    transfer().close()  # and the name is free again


def test_a_link_planted_at_the_lock_is_never_followed(tmp_path: Path) -> None:
    from videojobs._files import Transfer

    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (tmp_path / "v.mp4.part.lock").symlink_to(victim)
    with pytest.raises(DownloadError, match="could not lock"):
        Transfer(tmp_path / "v.mp4", "vozo:t1", overwrite=False, max_bytes=None, on_progress=None)
    assert victim.read_bytes() == b"precious"


@MODES
def test_the_same_job_twice_in_one_batch_saves_one_whole_file(
    mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    """Two saves to one name at once: one saves the whole file; the other is refused, typed (EBUSY
    while the first holds the name, EEXIST after it); never half a file, never none."""
    import errno

    sb, _ = sandbox
    ref = f"vozo:twice{mode}-q0-d2-sz2m"
    status = _ended(sb, ref)
    results = many(mode, sb, "download_all", [status, status], tmp_path, max_downloads=2)
    saved = [r for r in results if isinstance(r, JobStatus)]
    refused = [r for r in results if isinstance(r, DownloadError)]
    assert (len(saved), len(refused)) == (1, 1), results
    assert refused[0].errno in (errno.EBUSY, errno.EEXIST)
    (download,) = saved[0].downloads
    assert download.sha256 == sha256_of(ref.partition(":")[2], 2 * 1024 * 1024)
    _only_final(tmp_path, download.path.name)


def test_a_page_cut_after_its_first_byte_is_refused_when_resumed(tmp_path: Path) -> None:
    """The first answer sends '<' and drops; the resume sends the rest of an HTML page: the
    kept bytes count in the judgement, so the page is not saved as a video."""
    from videojobs._files import Transfer

    page = b"<!DOCTYPE html><html>sign in</html>"
    first = {"content-type": "video/mp4", "content-length": str(len(page)), "etag": '"e1"'}
    transfer = Transfer(tmp_path / "v.mp4", "vozo:t1", overwrite=False, max_bytes=None, on_progress=None)
    try:
        transfer.begin(200, first, "cdn.example")
        transfer.write(page[:1])
        transfer.pause()  # the connection dropped: the .part (one byte) is kept
        assert transfer.request_headers()["Range"] == "bytes=1-"
        rest = {**first, "content-length": str(len(page) - 1), "content-range": f"bytes 1-{len(page) - 1}/{len(page)}"}
        transfer.begin(206, rest, "cdn.example")
        with pytest.raises(DownloadError, match="sent a page or a document, not a video"):
            transfer.write(page[1:])
    finally:
        transfer.close()
    assert list(tmp_path.iterdir()) == []


def test_leaving_a_blocking_download_all_early_stops_the_saves_under_way(
    sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    """Threads cannot be cancelled: each save looks, at every chunk, whether its batch was left.
    Two files at the slow host's 320 KiB/s would take 12 s each; the batch is left after the
    first result (a small file) and ends at once, their .part kept to resume, no lock left."""
    sb, _ = sandbox
    slow = [_ended(sb, f"vozo:leave{i}-q0-d2-sz4m-fslow") for i in range(2)]
    small = _ended(sb, "vozo:leavefast-q0-d2-sz64k")
    with videojobs.Client(api_keys=sb.api_keys(), base_urls=sb.base_urls(sb_root(sb))) as client:
        start = time.monotonic()
        results = client.download_all([small, *slow], tmp_path, max_downloads=3)
        first = next(results)
        results.close()  # as a loop left with break does, at once
        elapsed = time.monotonic() - start
    assert isinstance(first, JobStatus)
    assert first.ref == small.ref
    assert elapsed < 6  # real time: the two slow files alone need 24 s
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not [name for name in left if name.endswith(".lock")], left
    assert sum(name.endswith(".part") for name in left) == 2, left  # kept, to resume


@MODES
def test_a_new_name_without_a_suffix_is_a_folder_and_a_file_where_the_folder_goes_is_said_so(
    mode: str, sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    """download(job, "videos") saved a file named videos (the CLI's -o videos and every batch read
    it as a folder), and a second job then met "videos exists: pass overwrite=True", which would
    have replaced the first video. A file where the folder goes said 'File exists', and the CLI
    offered --overwrite, which cannot help."""
    sb, _ = sandbox
    first = download(mode, sb, "vozo:nosuffix1-at_done", tmp_path / "videos")
    second = download(mode, sb, "vozo:nosuffix2-at_done", tmp_path / "videos")
    assert first.path.parent == second.path.parent == tmp_path / "videos"
    assert first.path.name == "vozo-nosuffix1-at_done.mp4"
    (tmp_path / "afile").write_text("precious")
    with pytest.raises(videojobs.DownloadError, match="afile is not a folder") as info:
        download(mode, sb, "vozo:nosuffix3-at_done", tmp_path / "afile" / "clip.mp4")
    assert info.value.errno == errno.ENOTDIR
    assert (tmp_path / "afile").read_text() == "precious"


def test_a_download_cancelled_while_it_is_made_durable_lets_its_files_go_after(tmp_path: Path) -> None:
    """The task is cancelled while ``finish`` (checksum, fsync, the name) runs in its thread: the
    thread cannot be stopped, so the task waits for it before closing the ``.part``, the folder
    and the name's lock (closed at once, another download could take the name, or the
    descriptors' numbers, under the thread), then raises the cancellation: the video is whole
    under its name, nothing else is left."""
    import threading

    import httpx

    from tests.hostile_files import FileHost, sha, video
    from videojobs._download import Pace
    from videojobs._fetch import afetch, file_client
    from videojobs._files import Transfer

    events: list[str] = []
    entered, release = threading.Event(), threading.Event()

    class Watched(Transfer):
        def finish(self) -> Download:
            entered.set()
            release.wait(30)
            events.append("finished")
            return super().finish()

        def close(self) -> None:
            events.append("closed")
            super().close()

    body = video(30, 256 * 1024)

    async def run(url: str) -> None:
        http = file_client(None, 5.0, True, asynchronous=True)
        assert isinstance(http, httpx.AsyncClient)
        transfer = Watched(tmp_path / "v.mp4", "vozo:t1", overwrite=False, max_bytes=None, on_progress=None)
        async with http:
            fetching = afetch(http, f"{url}/v.mp4", transfer, 1, Pace(5.0, None, "vozo"), asyncio.sleep)
            task = asyncio.ensure_future(fetching)
            await asyncio.to_thread(entered.wait, 30)  # finish runs in its thread now
            task.cancel()
            for _ in range(200):  # loop turns, no clock: the cancellation unwinds and closes meanwhile
                await asyncio.sleep(0)
            events.append("released")
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await task

    with hostile.hostile(FileHost([body])) as url:
        asyncio.run(run(url))
    assert events == ["released", "finished", "closed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
    assert sha((tmp_path / "v.mp4").read_bytes()) == sha(body)


@pytest.mark.parametrize("retries", [0, 2])
def test_a_client_closed_while_it_downloads_ends_the_download_saying_so(retries: int, tmp_path: Path) -> None:
    """The host drops the first transfer half-way; the client was closed meanwhile (here from
    on_progress): the retry raised httpx's bare RuntimeError ("Cannot send a request, as the
    client has been closed"), and a last attempt blamed the host ("Bad file descriptor"). A
    UsageError now, the .part kept."""
    from tests.hostile_files import FileHost, video

    host = FileHost([video(31, 256 * 1024)], drop_at=0.5)
    with hostile.hostile(host) as url:
        status = JobStatus(vendor="vozo", task_id="t1", state=State.SUCCEEDED, video_urls=[f"{url}/v.mp4"])
        client = videojobs.Client(api_keys={"vozo": "k" * 20}, max_retries=retries)
        with pytest.raises(videojobs.UsageError, match="closed while the download was under way"):
            client.download(status, tmp_path, on_progress=lambda progress: client.close())
    assert (tmp_path / "vozo-t1.mp4.part").exists()
    assert not (tmp_path / "vozo-t1.mp4").exists()


def test_an_async_client_downloads_under_a_second_asyncio_run_and_closes_there(tmp_path: Path) -> None:
    """Its vendors' connections were made anew on a new loop, its file client was not: a bare
    RuntimeError("Event loop is closed") on the second loop's download, and at aclose()."""
    from tests.hostile_files import FileHost, video

    with hostile.hostile(FileHost([video(32, 64 * 1024)])) as url:
        client = videojobs.AsyncClient(api_keys={"vozo": "k" * 20})

        async def save(task: str) -> Download:
            status = JobStatus(vendor="vozo", task_id=task, state=State.SUCCEEDED, video_urls=[f"{url}/v.mp4"])
            return await client.download(status, tmp_path)

        assert asyncio.run(save("first")).bytes == 64 * 1024
        assert asyncio.run(save("second")).bytes == 64 * 1024
        for n in range(10):  # each loop's file client goes with its loop (kept, each held a socket)
            asyncio.run(save(f"more{n}"))
        gc.collect()
        if os.path.isdir("/proc/self/fd"):  # the client's own sockets to the host (the host's side of
            # each connection is in this process too, and closes when its thread sees the client's go)
            assert _sockets_to(int(url.rsplit(":", 1)[1])) <= 1
        asyncio.run(client.aclose())


def _sockets_to(port: int) -> int:
    """This process's sockets connected to 127.0.0.1:``port`` from another port."""
    import socket

    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:  # closed meanwhile (listdir's own fd, a thread's)
            continue
        with sock:
            try:
                count += sock.getpeername()[1] == port and sock.getsockname()[1] != port
            except (OSError, TypeError, IndexError):  # not connected, or not an internet socket
                continue
    return count


def test_ctrl_c_in_a_sync_download_all_reaches_the_caller_without_waiting_for_status_calls() -> None:
    """A job given by reference is asked about first; Ctrl-C while those status calls wait on a
    vendor that never answers reached the caller once every one had timed out (58 s here at a
    20 s request_timeout); wait_all had been mended, download_all had not."""
    import signal
    import threading

    arrived, released = threading.Event(), threading.Event()

    def vendor(request: hostile.Request, conn: Any) -> None:
        arrived.set()
        # then the connection closes: the status calls under way end (no thread outlives the test)
        if not released.wait(60):
            released.set()  # held a minute already: the test has failed, the retries close at once
        conn.shutdown(socket.SHUT_RDWR)

    def saving() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("videojobs-save")]

    main = threading.main_thread().ident
    assert main is not None
    with hostile.hostile(vendor) as url:
        # a request_timeout longer than the test: only the vendor's release ends a status call
        client = videojobs.Client(api_keys={"vozo": "k" * 20}, base_urls={"vozo": url}, request_timeout=600)
        interrupt = threading.Thread(target=lambda: arrived.wait(60) and signal.pthread_kill(main, signal.SIGINT))
        interrupt.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                list(client.download_all(["vozo:h1", "vozo:h2"], "."))
            still_asking = saving()  # the status calls are under way yet: the caller did not wait for them
        finally:
            interrupt.join(60)
            released.set()
            client.close()
    assert still_asking
    for thread in still_asking:
        thread.join(60)
        assert not thread.is_alive()


def test_a_download_on_a_transport_of_the_callers_stops_at_aclose(tmp_path: Path) -> None:
    """``aclose()`` from another task mid-download: on the default transport the closed client's
    sockets end the transfer; on a transport the caller passed in (the embedded sandbox's) the
    bytes kept coming and the download ran to its end after the client was closed."""
    sb = Sandbox()

    async def run() -> Any:
        client = videojobs.AsyncClient(**sb.client_kwargs(asynchronous=True))
        closing: list[asyncio.Task[None]] = []

        def progress(update: videojobs.DownloadProgress) -> None:
            if not closing:  # at the first chunk: the client is closed by another task
                closing.append(asyncio.get_running_loop().create_task(client.aclose()))

        try:
            return await client.download("vozo:closing-at_done-fslow-sz3m", tmp_path, on_progress=progress)
        except videojobs.VideoJobsError as exc:
            return exc
        finally:
            await asyncio.gather(*closing)

    result = asyncio.run(run())
    assert isinstance(result, videojobs.UsageError), result
    assert "closed while the download was under way" in str(result)
    assert (tmp_path / "vozo-closing-at_done-fslow-sz3m.mp4.part").exists()  # kept for the next
    assert not (tmp_path / "vozo-closing-at_done-fslow-sz3m.mp4").exists()


def test_a_download_from_the_embedded_sandbox_is_cancelled_at_its_next_piece(tmp_path: Path) -> None:
    """SIGTERM (or Ctrl-C) on ``videojobs download --sandbox`` stopped the command only once the
    whole file was written, under its final name (a 3 GB one 6 s after the signal): the embedded
    sandbox's file stream never gave the loop a turn, so a cancellation could not land. It lands
    a piece later now, and the ``.part`` stays for the next run."""
    sb = Sandbox()
    ref, name = "vozo:cancel-at_done-sz64m", "vozo-cancel-at_done-sz64m.mp4"
    seen: list[int] = []

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None

        def progress(update: videojobs.DownloadProgress) -> None:
            seen.append(update.done)
            if len(seen) == 1:  # at the first piece: the command is stopped
                task.cancel()

        async with videojobs.AsyncClient(**sb.client_kwargs(asynchronous=True)) as client:
            await client.download(ref, tmp_path, on_progress=progress)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())
    assert not (tmp_path / name).exists()
    part = tmp_path / f"{name}.part"
    assert part.exists()  # kept for the next run
    assert part.stat().st_size < 64 * 1024 * 1024 // 2  # far from the whole file


class _Pieces(httpx.SyncByteStream):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __iter__(self) -> Any:
        for chunk in self.inner:
            yield from (chunk[i : i + 16384] for i in range(0, len(chunk), 16384))

    def close(self) -> None:
        self.inner.close()


class _APieces(httpx.AsyncByteStream):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __aiter__(self) -> Any:
        async for chunk in self.inner:
            for i in range(0, len(chunk), 16384):
                yield chunk[i : i + 16384]

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Rechunking(httpx.HTTPTransport):
    """A caller's transport that hands the body over in 16 KiB pieces, passing httpcore's
    extensions (its ``network_stream`` too) on, as a logging or progress wrapper may."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_Pieces(response.stream), extensions=response.extensions)  # fmt: skip


class _ARechunking(httpx.AsyncHTTPTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_APieces(response.stream), extensions=response.extensions)  # fmt: skip


@MODES
def test_a_transport_of_the_callers_that_hands_the_body_over_in_pieces_saves_it_whole(
    mode: str, tmp_path: Path
) -> None:
    """The rest of a body is read straight off the connection only on videojobs' own transport:
    past a caller's, whose first piece was not all h11 held, the read skipped the bytes between
    and the saved file spliced two stretches of the video under a checksum of the wrong bytes."""
    from tests.hostile_files import FileHost, video

    body = video(5, 3 * 1024 * 1024 + 7)
    with hostile.hostile(FileHost([body])) as url:
        job = JobStatus(vendor="vozo", task_id="t1", state=State.SUCCEEDED, video_urls=[f"{url}/v.mp4"])
        if mode == "sync":
            with videojobs.Client(api_keys={"vozo": "sk-test-file-host"}, transport=_Rechunking()) as client:
                got = client.download(job, tmp_path)
        else:

            async def run() -> Download:
                kwargs: dict[str, Any] = {"api_keys": {"vozo": "sk-test-file-host"}, "transport": _ARechunking()}
                async with videojobs.AsyncClient(**kwargs) as client:
                    return await client.download(job, tmp_path)

            got = asyncio.run(run())
    assert got.sha256 == hashlib.sha256(body).hexdigest()
    assert (tmp_path / "vozo-t1.mp4").read_bytes() == body


def test_a_call_that_ends_before_its_request_keeps_the_part_an_earlier_one_left(tmp_path: Path) -> None:
    """A .part and its record kept by a dropped download, then a call whose time is already up:
    it ends before asking the host anything, and the .part it says is kept for a later call is
    (it was removed, taken for one nothing could resume: its record had not been read yet)."""
    from tests.hostile_files import video

    body = video(3, 400_000)

    def host(request: hostile.Request, conn: socket.socket) -> None:
        conn.sendall(
            b'HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nETag: "v1"\r\nContent-Length: %d\r\n\r\n' % len(body)
        )
        conn.sendall(body[:200_000])  # dropped half-way
        conn.close()

    with hostile.hostile(host) as url:
        job = JobStatus(vendor="vozo", task_id="t1", state=State.SUCCEEDED, video_urls=[f"{url}/v.mp4"])
        with videojobs.Client(api_keys={"vozo": "sk-test-file-host"}, max_retries=0) as client:
            with pytest.raises(NetworkError):
                client.download(job, tmp_path)
            kept = sorted(p.name for p in tmp_path.iterdir())
            with pytest.raises(NetworkError, match=r"the \.part is kept"):
                client.download(job, tmp_path, timeout=1e-9)
    assert kept == ["vozo-t1.mp4.part", "vozo-t1.mp4.part.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == kept
    assert (tmp_path / "vozo-t1.mp4.part").read_bytes() == body[: (tmp_path / "vozo-t1.mp4.part").stat().st_size]


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("face", ["sync", "async"])
def test_an_interrupt_out_of_on_progress_reaches_the_caller_of_download_all(
    face: str, raised: type[BaseException], tmp_path: Path
) -> None:
    """Raised in a job's task, asyncio lets KeyboardInterrupt and SystemExit out of the event loop
    itself: the async caller's await saw a CancelledError and asyncio.run the interrupt. Both
    faces now raise it to the caller, as wait_all does, and the loop ends normally."""
    sb = Sandbox()

    def interrupted(progress: videojobs.DownloadProgress) -> None:
        raise raised("from on_progress")

    seen: list[type[BaseException]] = []
    refs = ["vozo:i1-at_done", "vozo:i2-at_done"]
    if face == "sync":
        with videojobs.Client(**sb.client_kwargs()) as client:
            try:
                list(client.download_all(refs, tmp_path, on_progress=interrupted))
            except BaseException as exc:  # what the caller's own code sees
                seen.append(type(exc))
        assert seen == [raised]
        return

    async def caller() -> None:
        client = videojobs.AsyncClient(**sb.client_kwargs(asynchronous=True))
        try:
            [result async for result in client.download_all(refs, tmp_path, on_progress=interrupted)]
        except BaseException as exc:  # what the caller's own code sees
            seen.append(type(exc))
        finally:
            await client.aclose()

    try:
        asyncio.run(caller())
    except BaseException as exc:  # out of the loop itself: the failure this test guards against
        seen.append(type(exc))
    assert seen == [raised]


def test_a_body_ending_with_its_connection_cut_by_the_close_is_not_saved_as_whole(tmp_path: Path) -> None:
    """A file host may end a body by closing the connection (no Content-Length): the close's
    shutdown of the socket read as that end, and downloads cut at 90 KB of 400 KB were saved
    under their final names and returned as Downloads (5 of 6 here, 21 of 24 in a helper's
    runs). The cut is the close's: a UsageError each, no file saved."""
    import functools
    import threading

    from tests.hostile_files import video

    body = video(7, 400_000)
    sent, release = threading.Semaphore(0), threading.Event()

    def host(request: hostile.Request, conn: socket.socket) -> None:  # a part of the body, then holds
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nConnection: close\r\n\r\n")
        conn.sendall(body[:90_000])
        sent.release()
        release.wait(6 * hostile.CLOSE_GUARD)

    with hostile.hostile(host) as url:
        client = videojobs.Client(api_keys={"vozo": "k" * 20}, request_timeout=600, max_retries=0)
        jobs = [
            JobStatus(vendor="vozo", task_id=f"t{n}", state=State.SUCCEEDED, video_urls=[f"{url}/v{n}.mp4"])
            for n in range(6)
        ]
        try:
            ended = hostile.closed_mid_calls(
                client, [functools.partial(client.download, job, tmp_path) for job in jobs], sent
            )
        finally:
            release.set()
    for outcome in ended:
        assert isinstance(outcome, videojobs.UsageError), outcome
        assert "closed while the download was under way" in str(outcome)
    assert not [path.name for path in tmp_path.iterdir() if path.suffix == ".mp4"]  # nothing saved as whole


@pytest.mark.anyio
@pytest.mark.parametrize("what", ["status", "download"])
@pytest.mark.parametrize("face", ["sync", "async"])
async def test_a_body_a_transport_of_the_callers_ends_after_the_close_is_not_taken_whole(
    face: str, what: str, tmp_path: Path
) -> None:
    """On a transport of the caller's, a body without Content-Length whose stream ends once the
    client is closed (here the close comes from within it, standing for another thread's or
    task's): the async download saved the cut file under its final name, and a status answer
    cut so was read as a malformed one. The close is said; nothing is saved."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"x" * 9000
    part = head if what == "download" else hostile.OK_BODY[:20]
    kind = "video/mp4" if what == "download" else "application/json"
    holder: list[Any] = []
    job = JobStatus(vendor="vozo", task_id="t1", state=State.SUCCEEDED, video_urls=["http://files.example/v.mp4"])

    class Body(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield part
            holder[0].close()

    class AsyncBody(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield part
            await holder[0].aclose()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": kind}, stream=Body() if face == "sync" else AsyncBody())

    kwargs: dict[str, Any] = {"api_keys": {"vozo": "k" * 20}, "max_retries": 0}
    if face == "sync":
        client = videojobs.Client(transport=httpx.MockTransport(answer), **kwargs)
        holder.append(client)
        with pytest.raises(videojobs.UsageError, match="was closed while the"):
            client.download(job, tmp_path) if what == "download" else client.status("vozo:t1")
    else:
        aclient = videojobs.AsyncClient(transport=httpx.MockTransport(answer), **kwargs)
        holder.append(aclient)
        with pytest.raises(videojobs.UsageError, match="was closed while the"):
            await (aclient.download(job, tmp_path) if what == "download" else aclient.status("vozo:t1"))
    assert not (tmp_path / "vozo-t1.mp4").exists()
